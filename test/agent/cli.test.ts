/**
 * The agent as users run it: the compiled CLI in its own process (`npm test` builds dist/ first; set
 * PHASE_BRIDGE_DIST to test another build). Configuration errors, readiness through `agent-probe`, SIGTERM with a
 * watch stream open (exit 0), JSON logs without values or tokens, and `run` propagating
 * signals and exit codes.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer } from '../support/server';
import { provision, until, CLI, spawnCli as cli } from './helpers';

type TestServer = Awaited<ReturnType<typeof startTestServer>>;
let srv: TestServer;

beforeAll(async () => {
  expect(existsSync(CLI)).toBe(true); // build first: npm run build (npm test does)
  srv = await startTestServer();
});

afterAll(async () => {
  await srv?.close();
});

test('a bad configuration exits 2 with one line per bad setting and never echoes the token', async () => {
  const token = 'pss_service:v2:deadbeef';
  const p = cli(['agent', '--port', '70000', '--refresh', 'often', '--jitter', '9'], {
    PHASE_SERVICE_TOKEN: token,
  });
  const { code } = await p.exit;
  expect(code).toBe(2);
  const lines = p
    .err()
    .split('\n')
    .filter((l) => l.startsWith('  - '));
  expect(lines.map((l) => l.split(' ')[3])).toEqual(
    expect.arrayContaining(['scopes', 'token', 'port', 'refreshInterval', 'jitter']),
  );
  expect(p.err()).toMatch(/port \(--port\): must be 0-65535/);
  expect(p.err()).toMatch(/token \(PHASE_SERVICE_TOKEN\)/);
  expect(p.err()).not.toContain('deadbeef');
});

test('agent: probe reports readiness; SIGTERM ends watch streams and exits 0; logs are JSON without secrets', async () => {
  const value = 'cli-secret-value-123';
  const prov = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'CLI_KEY', value }] });
  const dataDir = mkdtempSync(join(tmpdir(), 'agent-cli-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env = {
    PHASE_SERVICE_TOKEN: prov.token,
    PHASE_HOST: srv.url,
    PHASE_APP: prov.appName,
    PHASE_ENV: 'prod',
  };
  const agent = cli(
    ['agent', '--port', String(port), '--data-dir', dataDir, '--refresh', '200ms', '--log-level', 'debug'],
    env,
  );
  try {
    const probe = async (path: string): Promise<number | null> =>
      (
        await cli(['agent-probe', '--url', `http://127.0.0.1:${port}`, '--path', path, '--data-dir', dataDir])
          .exit
      ).code;
    await until(async () => (await probe('/readyz')) === 0, 15_000, 200);
    expect(await probe('/healthz')).toBe(0);
    expect(await probe('/v1/secrets/NOPE')).toBe(1);
    const clientToken = readFileSync(join(dataDir, 'client-token'), 'utf8').trim();
    // Open a watch stream and keep it open across SIGTERM.
    const watch = new Promise<string>((resolveWatch) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/v1/watch', headers: { 'x-phase-agent-token': clientToken } },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolveWatch(body));
          res.on('error', () => resolveWatch(body));
        },
      );
      req.on('error', () => resolveWatch(''));
      req.end();
    });
    await new Promise((r) => setTimeout(r, 300));
    const secret = await new Promise<string>((resolveGet, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/v1/secrets/CLI_KEY',
          headers: { 'x-phase-agent-token': clientToken },
        },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolveGet(body));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(secret).toBe(value);
    agent.child.kill('SIGTERM');
    const { code } = await agent.exit;
    expect(code).toBe(0);
    expect(await watch).toMatch(/event: hello/); // the stream was ended cleanly, not left hanging
    const logs = agent.err().trim().split('\n');
    expect(logs.length).toBeGreaterThanOrEqual(3);
    for (const line of logs) {
      const rec = JSON.parse(line); // every line is JSON
      expect(typeof rec.level).toBe('number');
    }
    const all = agent.err();
    expect(all).toContain('agent listening');
    expect(all).toContain('scope synced');
    expect(all).toContain('agent stopped');
    expect(all).not.toContain(value);
    for (const part of prov.token.split(':').slice(2)) expect(all).not.toContain(part);
    expect(all).not.toContain(clientToken);
  } finally {
    if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
  }
});

test('run: the child gets the secrets, SIGTERM to the runner reaches the child, its exit code comes back', async () => {
  const prov = await provision(srv.url, srv.ownerToken, {
    Development: [{ key: 'RUN_VALUE', value: 'hello-run' }],
  });
  const dir = mkdtempSync(join(tmpdir(), 'agent-cli-run-'));
  const out = join(dir, 'out');
  const script = `
    const fs = require('fs');
    fs.writeFileSync(${JSON.stringify(out)}, 'value=' + process.env.RUN_VALUE + '\\n');
    process.on('SIGTERM', () => { fs.appendFileSync(${JSON.stringify(out)}, 'got SIGTERM\\n'); process.exit(42); });
    setInterval(() => {}, 1000);`;
  const r = cli(
    [
      'run',
      '--app',
      prov.appName,
      '--env',
      'Development',
      '--data-dir',
      dir,
      '--',
      process.execPath,
      '-e',
      script,
    ],
    {
      PHASE_SERVICE_TOKEN: prov.token,
      PHASE_HOST: srv.url,
    },
  );
  try {
    await until(() => existsSync(out) && readFileSync(out, 'utf8').includes('value='), 15_000, 100);
    expect(readFileSync(out, 'utf8')).toBe('value=hello-run\n');
    r.child.kill('SIGTERM');
    const { code } = await r.exit;
    expect(code).toBe(42);
    expect(readFileSync(out, 'utf8')).toContain('got SIGTERM');
    expect(r.err()).toMatch(/injected 1 secrets/);
    expect(r.err()).not.toContain('hello-run');
  } finally {
    if (r.child.exitCode === null) r.child.kill('SIGKILL');
  }
});
