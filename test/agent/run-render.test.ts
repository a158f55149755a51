/**
 * `phase-bridge run` (injection, no shell interpretation, restart and signal on change, signal forwarding, exit
 * code) and `--render` (mode 0600 from the first write, atomic replacement under concurrent readers).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDotenv } from '../../core/export';
import { startAgent } from '../../agent/agent';
import { runCommand } from '../../agent/run';
import { startTestServer } from '../support/server';
import { provision, silent, testConfig, until } from './helpers';

type TestServer = Awaited<ReturnType<typeof startTestServer>>;

let srv: TestServer;

beforeAll(async () => {
  srv = await startTestServer();
});

afterAll(async () => {
  await srv?.close();
});

const node = process.execPath;

test('run: secrets injected (overriding inherited variables), shell syntax in values stays literal, exit code propagated', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-'));
  const pwned = join(dir, 'pwned');
  const p = await provision(srv.url, srv.ownerToken, {
    Development: [
      { key: 'GREETING', value: 'hello' },
      { key: 'EVIL', value: `$(touch ${pwned}); \`touch ${pwned}\` && touch ${pwned}` },
      { key: 'HOME_OVERRIDE', value: 'from-phase' },
    ],
  });
  process.env.HOME_OVERRIDE = 'inherited';
  const out = join(dir, 'env.json');
  const lines: string[] = [];
  const code = await runCommand(
    testConfig({ host: srv.url, token: p.token, scopes: [{ app: p.appName, env: 'Development' }] }),
    [
      node,
      '-e',
      `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env)); process.exit(7)`,
    ],
    {
      onChange: 'none',
      signal: 'SIGHUP',
      debounceMs: 50,
      killGraceMs: 1000,
      shell: false,
      out: (l) => lines.push(l),
    },
    { logger: silent },
  );
  delete process.env.HOME_OVERRIDE;
  expect(code).toBe(7);
  const env = JSON.parse(readFileSync(out, 'utf8'));
  expect(env.GREETING).toBe('hello');
  expect(env.HOME_OVERRIDE).toBe('from-phase');
  expect(env.EVIL).toContain('$(touch');
  expect(env.PATH).toBe(process.env.PATH);
  expect(existsSync(pwned)).toBe(false);
  expect(lines.join('\n')).toMatch(/injected 3 secrets/);
  expect(lines.join('\n')).not.toContain('hello');
});

test('run: a failed first fetch does not start the command', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-'));
  const marker = join(dir, 'started');
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'A', value: 'a' }] });
  await expect(
    runCommand(
      testConfig({ host: srv.url, token: p.token, scopes: [{ app: p.appName, env: 'NoSuchEnv' }] }),
      [node, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`],
      {
        onChange: 'none',
        signal: 'SIGHUP',
        debounceMs: 50,
        killGraceMs: 1000,
        shell: false,
        out: () => undefined,
      },
      { logger: silent },
    ),
  ).rejects.toThrow(/could not fetch the secrets.*NoSuchEnv/);
  expect(existsSync(marker)).toBe(false);
});

test('run: restart on change (debounced), signals forwarded, signal mode', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-'));
  const log = join(dir, 'log');
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'V', value: 'v1' }] });
  // The child appends "start <V>" on start and "<signal>" on each signal it gets; it exits 0 on SIGTERM.
  const script = `
    const fs = require('fs'); const log = ${JSON.stringify(log)};
    fs.appendFileSync(log, 'start ' + process.env.V + '\\n');
    process.on('SIGHUP', () => fs.appendFileSync(log, 'SIGHUP\\n'));
    process.on('SIGUSR2', () => { fs.appendFileSync(log, 'SIGUSR2\\n'); process.exit(3); });
    process.on('SIGTERM', () => { fs.appendFileSync(log, 'SIGTERM\\n'); process.exit(0); });
    setInterval(() => {}, 1000);`;
  const cfg = testConfig({
    host: srv.url,
    token: p.token,
    scopes: [{ app: p.appName, env: 'Development' }],
    refreshInterval: '100ms',
  });
  const running = runCommand(
    cfg,
    [node, '-e', script],
    {
      onChange: 'restart',
      signal: 'SIGHUP',
      debounceMs: 300,
      killGraceMs: 2000,
      shell: false,
      out: () => undefined,
    },
    { logger: silent },
  );
  const read = (): string => (existsSync(log) ? readFileSync(log, 'utf8') : '');
  await until(() => read().includes('start v1'));
  // Two quick changes inside the debounce window: one restart.
  const [secret] = await p.owner.listSecrets({ appId: p.appId, env: 'Development' });
  await p.owner.updateSecrets({ appId: p.appId, env: 'Development' }, [{ id: secret.id, value: 'v2' }]);
  await new Promise((r) => setTimeout(r, 120));
  await p.owner.updateSecrets({ appId: p.appId, env: 'Development' }, [{ id: secret.id, value: 'v3' }]);
  await until(() => read().includes('start v3'), 10_000);
  await new Promise((r) => setTimeout(r, 600));
  const starts = read()
    .split('\n')
    .filter((l) => l.startsWith('start'));
  expect(starts[0]).toBe('start v1');
  expect(starts[starts.length - 1]).toBe('start v3');
  expect(starts.length).toBeLessThanOrEqual(3); // v2 may or may not be seen alone, never more restarts
  expect(read()).toContain('SIGTERM'); // the old child was stopped gracefully
  // Forwarding: a signal to the runner reaches the child (emitted on our process without killing jest).
  process.emit('SIGHUP', 'SIGHUP');
  await until(() => read().split('\n').includes('SIGHUP'));
  process.emit('SIGUSR2', 'SIGUSR2');
  expect(await running).toBe(3);
});

test('run: --on-change signal sends the signal instead of restarting', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-'));
  const log = join(dir, 'log');
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'V', value: 'a' }] });
  const script = `
    const fs = require('fs'); const log = ${JSON.stringify(log)};
    fs.appendFileSync(log, 'start\\n');
    process.on('SIGUSR2', () => { fs.appendFileSync(log, 'reload\\n'); });
    process.on('SIGTERM', () => process.exit(0));
    setInterval(() => {}, 1000);`;
  const cfg = testConfig({
    host: srv.url,
    token: p.token,
    scopes: [{ app: p.appName, env: 'Development' }],
    refreshInterval: '100ms',
  });
  const running = runCommand(
    cfg,
    [node, '-e', script],
    {
      onChange: 'signal',
      signal: 'SIGUSR2',
      debounceMs: 50,
      killGraceMs: 2000,
      shell: false,
      out: () => undefined,
    },
    { logger: silent },
  );
  const read = (): string => (existsSync(log) ? readFileSync(log, 'utf8') : '');
  await until(() => read().includes('start'));
  const [secret] = await p.owner.listSecrets({ appId: p.appId, env: 'Development' });
  await p.owner.updateSecrets({ appId: p.appId, env: 'Development' }, [{ id: secret.id, value: 'b' }]);
  await until(() => read().includes('reload'));
  expect(
    read()
      .split('\n')
      .filter((l) => l === 'start'),
  ).toHaveLength(1);
  process.emit('SIGTERM', 'SIGTERM');
  expect(await running).toBe(0);
});

test('render: mode 0600 from the first write, atomic replacement under concurrent readers, no temp files left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-render-'));
  const file = join(dir, 'out', 'app.env');
  const initial = Array.from({ length: 50 }, (_, i) => ({
    key: `K${i}`,
    value: `value-${i}-${'x'.repeat(200)}`,
  }));
  const p = await provision(srv.url, srv.ownerToken, { Development: initial });
  const old = process.umask(0o000); // even a permissive umask must not widen the file
  const a = await startAgent(
    testConfig({
      host: srv.url,
      token: p.token,
      scopes: [{ app: p.appName, env: 'Development' }],
      refreshInterval: '50ms',
      render: { file, format: 'dotenv' },
    }),
    { logger: silent },
  );
  try {
    await until(() => existsSync(file));
    process.umask(old);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const list = await p.owner.listSecrets({ appId: p.appId, env: 'Development' });
    let stop = false;
    let reads = 0;
    const bad: string[] = [];
    const reader = (async () => {
      while (!stop) {
        const text = readFileSync(file, 'utf8');
        const st = statSync(file);
        reads++;
        if ((st.mode & 0o777) !== 0o600) bad.push(`mode ${(st.mode & 0o777).toString(8)}`);
        const entries = parseDotenv(text);
        if (entries.length !== 50) bad.push(`torn read: ${entries.length} entries`);
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let round = 1; round <= 4; round++) {
      await p.owner.updateSecrets(
        { appId: p.appId, env: 'Development' },
        list.slice(0, 10).map((s) => ({ id: s.id, value: `round-${round}-${'y'.repeat(300)}` })),
      );
      await until(() => readFileSync(file, 'utf8').includes(`round-${round}-`));
    }
    stop = true;
    await reader;
    expect(reads).toBeGreaterThan(10);
    expect(bad).toEqual([]);
    expect(a.renderer?.writes).toBeGreaterThanOrEqual(5);
    expect(readdirSync(join(dir, 'out'))).toEqual(['app.env']);
  } finally {
    process.umask(old);
    await a.close();
  }
});

test('--once style: the first sync renders, then the agent can stop', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-render-'));
  const file = join(dir, 'vars.json');
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'ONE', value: '1' }] });
  const a = await startAgent(
    testConfig({
      host: srv.url,
      token: p.token,
      scopes: [{ app: p.appName, env: 'Production' }],
      render: { file, format: 'json' },
      once: true,
    }),
    { logger: silent },
  );
  await a.engine.firstSync;
  await a.renderer?.flush();
  await a.close();
  expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ ONE: '1' });
  expect(a.url).toBeUndefined(); // once mode does not listen
});

test('render: when the token is revoked the rendered file is removed (fail closed)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-render-'));
  const file = join(dir, 'app.env');
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'GONE', value: 'soon' }] });
  const a = await startAgent(
    testConfig({
      host: srv.url,
      token: p.token,
      scopes: [{ app: p.appName, env: 'Development' }],
      refreshInterval: '100ms',
      render: { file, format: 'dotenv' },
    }),
    { logger: silent },
  );
  try {
    await until(() => existsSync(file));
    await p.owner.deleteServiceAccountToken(p.saId, p.tokenId);
    await until(() => !existsSync(file), 5000);
  } finally {
    await a.close();
  }
});
