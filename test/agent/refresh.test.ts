/**
 * Refresh on request (issue 14): `POST /v1/refresh` (guarded like every endpoint: client token, loopback Host, no
 * Origin) syncs now and answers when the sync is done; the budget still applies (a spent budget answers 503 with
 * Retry-After). The compiled CLI: SIGHUP makes a running agent sync now and log it (it used to kill the agent), and
 * `phase-bridge agent refresh` reaches the agent over its unix socket or loopback TCP with the client token. The
 * agents here do not push (`--no-push`) and refresh once a minute, so a value that arrives came through the request.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type AgentHandle } from '../../agent/agent';
import { startTestServer } from '../support/server';
import { call, provision, silent, testConfig, until, CLI, spawnCli as cli } from './helpers';

type TestServer = Awaited<ReturnType<typeof startTestServer>>;
let srv: TestServer;
const agents: AgentHandle[] = [];

beforeAll(async () => {
  srv = await startTestServer();
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await srv?.close();
});

async function agentFor(values: Record<string, unknown>): Promise<AgentHandle> {
  const a = await startAgent(testConfig({ host: srv.url, refreshInterval: '60s', push: false, ...values }), {
    logger: silent,
  });
  agents.push(a);
  await a.engine.firstSync;
  return a;
}

test('POST /v1/refresh syncs now and answers when done; the value is served right after', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'A', value: 'a1' }] });
  const a = await agentFor({ token: p.token, scopes: [{ app: p.appName, env: 'Production' }] });
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'NEW', value: 'n' }]);
  expect((await call(a, '/v1/secrets/NEW')).status).toBe(404);
  const r = await call(a, '/v1/refresh', {}, 'POST');
  expect(r.status).toBe(200);
  const body = JSON.parse(r.body);
  expect(body).toMatchObject({ status: 'synced', scopes: [{ serving: true, error: null }] });
  expect(typeof body.ms).toBe('number');
  expect(r.body).not.toContain('"n"');
  expect((await call(a, '/v1/secrets/NEW')).body).toBe('n');
  expect(a.engine.kinds.forced).toBe(1);
});

test('/v1/refresh is guarded like the rest: client token, POST only, no Origin, no query', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'A', value: 'a' }] });
  const a = await agentFor({ token: p.token, scopes: [{ app: p.appName, env: 'Production' }] });
  const before = a.engine.kinds.forced;
  expect((await call(a, '/v1/refresh', { 'X-Phase-Agent-Token': undefined }, 'POST')).status).toBe(403);
  expect((await call(a, '/v1/refresh', { 'X-Phase-Agent-Token': 'x'.repeat(64) }, 'POST')).status).toBe(403);
  expect((await call(a, '/v1/refresh', { Origin: 'https://evil.example' }, 'POST')).status).toBe(403);
  expect((await call(a, '/v1/refresh', { Host: 'evil.example' }, 'POST')).status).toBe(403);
  const get = await call(a, '/v1/refresh');
  expect(get.status).toBe(405);
  expect(get.headers.allow).toBe('POST');
  expect((await call(a, '/v1/refresh?now=1', {}, 'POST')).status).toBe(400);
  // Everything else stays GET-only.
  const post = await call(a, '/v1/secrets', {}, 'POST');
  expect(post.status).toBe(405);
  expect(post.headers.allow).toBe('GET');
  expect(a.engine.kinds.forced).toBe(before);
});

test('a spent budget: the refresh is deferred (503, Retry-After) and says so', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'A', value: 'a' }] });
  // The first sync spends both calls of the burst; no push bucket; one call a minute.
  const a = await agentFor({
    token: p.token,
    scopes: [{ app: p.appName, env: 'Production' }],
    budgetPerMinute: 1,
    budgetBurst: 2,
    budgetPushBurst: 0,
  });
  const r = await call(a, '/v1/refresh', {}, 'POST');
  expect(r.status).toBe(503);
  expect(JSON.parse(r.body)).toMatchObject({ status: 'deferred' });
  expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
  // Serving is unaffected.
  expect((await call(a, '/v1/secrets/A')).body).toBe('a');
});

function get(port: number, path: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolveGet, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { 'x-phase-agent-token': token } },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('CLI: SIGHUP syncs now and logs it; `phase-bridge agent refresh` over the unix socket and over loopback', async () => {
  expect(existsSync(CLI)).toBe(true); // build first: npm run build (npm test does)
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'K', value: 'v0' }] });
  const dataDir = mkdtempSync(join(tmpdir(), 'agent-refresh-'));
  const socket = join(dataDir, 'agent.sock');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env = {
    PHASE_SERVICE_TOKEN: p.token,
    PHASE_HOST: srv.url,
    PHASE_APP: p.appName,
    PHASE_ENV: 'Production',
  };
  const agent = cli(
    [
      'agent',
      '--port',
      String(port),
      '--socket',
      socket,
      '--data-dir',
      dataDir,
      '--refresh',
      '60s',
      '--no-push',
    ],
    env,
  );
  try {
    const tokenFile = join(dataDir, 'client-token');
    await until(() => existsSync(tokenFile) && agent.err().includes('scope synced'), 15_000, 100);
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect((await get(port, '/v1/secrets/K', token)).body).toBe('v0');

    // SIGHUP: a sync now, logged; the agent keeps running.
    await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'HUP', value: 'h' }]);
    agent.child.kill('SIGHUP');
    await until(async () => (await get(port, '/v1/secrets/HUP', token)).body === 'h', 10_000);
    expect(agent.child.exitCode).toBeNull();
    const hupLine = agent
      .err()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((r) => r.reason === 'SIGHUP' && r.msg === 'sync requested: syncing now');
    expect(hupLine).toMatchObject({ reason: 'SIGHUP', msg: 'sync requested: syncing now' });
    await until(() => agent.err().includes('requested sync done'));

    // Over the unix socket.
    await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'SOCK', value: 's' }]);
    const viaSocket = cli(['agent', 'refresh', '--socket', socket, '--data-dir', dataDir]);
    expect((await viaSocket.exit).code).toBe(0);
    expect(viaSocket.out()).toMatch(/synced in \d+ ms/);
    expect((await get(port, '/v1/secrets/SOCK', token)).body).toBe('s');

    // Over loopback TCP.
    await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'TCP', value: 't' }]);
    const viaTcp = cli(['agent', 'refresh', '--url', `http://127.0.0.1:${port}`, '--data-dir', dataDir]);
    expect((await viaTcp.exit).code).toBe(0);
    expect((await get(port, '/v1/secrets/TCP', token)).body).toBe('t');

    // A wrong client token: refused, exit 1, the token never printed.
    const wrong = cli(['agent', 'refresh', '--socket', socket], { PHASE_AGENT_CLIENT_TOKEN: 'z'.repeat(40) });
    expect((await wrong.exit).code).toBe(1);
    expect(wrong.err()).toMatch(/403/);
    expect(wrong.err()).not.toContain('z'.repeat(40));

    // No agent there: exit 1 with the reason.
    const none = cli(['agent', 'refresh', '--socket', join(dataDir, 'nope.sock'), '--data-dir', dataDir]);
    expect((await none.exit).code).toBe(1);
    expect(none.err()).toMatch(/cannot reach the agent.*ENOENT/);

    // agent-probe asks over the same socket (also through PHASE_AGENT_SOCKET), with the same client token rules.
    const probe = cli(['agent-probe', '--socket', socket, '--path', '/readyz', '--data-dir', dataDir]);
    expect((await probe.exit).code).toBe(0);
    const probeEnv = cli(['agent-probe', '--path', '/v1/secrets/SOCK', '--data-dir', dataDir], {
      PHASE_AGENT_SOCKET: socket,
    });
    expect((await probeEnv.exit).code).toBe(0);
    const probeMissing = cli([
      'agent-probe',
      '--socket',
      socket,
      '--path',
      '/v1/secrets/NOPE',
      '--data-dir',
      dataDir,
    ]);
    expect((await probeMissing.exit).code).toBe(1);
    expect(probeMissing.err()).toMatch(/\/v1\/secrets\/NOPE answered 404/);
    const probeWrong = cli(['agent-probe', '--socket', socket, '--path', '/readyz'], {
      PHASE_AGENT_CLIENT_TOKEN: 'z'.repeat(40),
    });
    expect((await probeWrong.exit).code).toBe(1);
    expect(probeWrong.err()).toMatch(/answered 403/);
    expect(probeWrong.err()).not.toContain('z'.repeat(40));
    const probeNone = cli(['agent-probe', '--socket', join(dataDir, 'nope.sock'), '--data-dir', dataDir]);
    expect((await probeNone.exit).code).toBe(1);
    expect(probeNone.err()).toMatch(/cannot reach the agent at .*nope\.sock: .*ENOENT/);

    agent.child.kill('SIGTERM');
    expect((await agent.exit).code).toBe(0);
    expect(agent.err()).not.toContain(token);
  } finally {
    if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
  }
});
