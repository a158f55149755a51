/**
 * Token rotation without an outage (issue 13), with the agent CLI as users run it (dist/) and its default budget and
 * refresh interval (60 s): a rewritten token file is used at once (fs.watch on its directory; the sync it triggers
 * is not held back by the polling budget), and a workload reading through the agent sees no failed request across a
 * rotation whose old token is revoked with a grace period (`?grace_seconds=`, docs/identity.md).
 */
import { existsSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/ports';
import { startTestServer, type TestServer } from '../support/server';
import {
  agentGet,
  agentStatus,
  auditedReads,
  CLI,
  clientTokenOf,
  logLines,
  provision,
  spawnCli,
  until,
  type CliProcess,
  type Provisioned,
} from './helpers';

let srv: TestServer;
const running: CliProcess[] = [];

beforeAll(async () => {
  expect(existsSync(CLI)).toBe(true); // build first: npx tsc -p tsconfig.build.json (npm test does)
  srv = await startTestServer();
});

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await srv?.close();
});

/** An agent on a token file holding the account's initial token, with the default refresh (60 s) and budget. */
async function agentOnTokenFile(p: Provisioned): Promise<{
  proc: CliProcess;
  tokenFile: string;
  get(path: string): ReturnType<typeof agentGet>;
  status(): Promise<any>;
}> {
  const dataDir = mkdtempSync(join(tmpdir(), 'agent-rotation-'));
  const tokenFile = join(dataDir, 'token');
  writeFileSync(tokenFile, `${p.token}\n`, { mode: 0o600 });
  const port = await freePort();
  const proc = spawnCli(
    [
      'agent',
      '--host',
      srv.url,
      '--app',
      p.appName,
      '--env',
      'Production',
      '--token-file',
      tokenFile,
      '--port',
      String(port),
      '--data-dir',
      dataDir,
      '--log-level',
      'debug',
    ],
    {},
  );
  running.push(proc);
  const clientToken = await clientTokenOf(dataDir);
  return {
    proc,
    tokenFile,
    get: (path) => agentGet(port, clientToken, path),
    status: () => agentStatus(port, clientToken),
  };
}

/** Milliseconds until the server has seen a read with the token (the agent's sync after the rotation). */
async function msUntilUsed(tokenId: string, since: number): Promise<number> {
  await until(async () => (await auditedReads(srv, tokenId)) > 0, 30_000, 20);
  return Date.now() - since;
}

test('a workload reading through the agent sees zero failed requests across a rotation with grace', async () => {
  const p = await provision(srv.url, srv.ownerToken, {
    Production: [{ key: 'DB_URL', value: 'postgres://a' }],
  });
  const a = await agentOnTokenFile(p);
  await until(async () => (await a.get('/v1/secrets/DB_URL')).body === 'postgres://a', 15_000);
  expect(await auditedReads(srv, p.tokenId)).toBeGreaterThan(0); // token A is the one in use

  let stop = false;
  let reads = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (!stop) {
      const r = await a.get('/v1/secrets/DB_URL');
      reads++;
      if (r.status !== 200 || r.body !== 'postgres://a') failures.push(`${r.status} ${r.body.slice(0, 200)}`);
    }
  })();

  // Create token B, rewrite the file with it (the kubelet's way: write aside, rename over), revoke A with grace.
  const b = await p.owner.createServiceAccountToken(p.saId, { name: 'B' });
  const rotatedAt = Date.now();
  writeFileSync(`${a.tokenFile}.new`, `${b.token}\n`, { mode: 0o600 });
  renameSync(`${a.tokenFile}.new`, a.tokenFile);
  await p.owner.deleteServiceAccountToken(p.saId, p.tokenId, { graceSeconds: 30 });
  // The agent switches at once, not at its 60 s refresh.
  expect(await msUntilUsed(b.id, rotatedAt)).toBeLessThan(2000);
  const readsWithA = await auditedReads(srv, p.tokenId);
  await new Promise((r) => setTimeout(r, 3000)); // keep reading a few seconds
  stop = true;
  await loop;

  expect(failures).toEqual([]);
  expect(reads).toBeGreaterThan(100);
  // B is the token in use: nothing more was read with A after the switch, and the scope is healthy.
  expect(await auditedReads(srv, p.tokenId)).toBe(readsWithA);
  expect(await auditedReads(srv, b.id)).toBeGreaterThan(0);
  const st = await a.status();
  expect(st.scopes[0]).toMatchObject({ serving: true, failClosed: null, lastError: null });
  expect(st.auth).toMatchObject({ method: 'token-file', state: 'ok' });
  expect(logLines(a.proc).filter((l) => l.msg === 'token file changed; using the new token')).toHaveLength(1);
});

test('a rewritten token file is used within 2 s, also twice within a minute (the polling budget used to hold the second back ~60 s)', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'K', value: 'v' }] });
  const a = await agentOnTokenFile(p);
  await until(async () => (await a.get('/v1/secrets/K')).body === 'v', 15_000);
  // Rewritten in place (truncate, write), as `echo "$TOKEN" > file` or an editor does.
  const b = await p.owner.createServiceAccountToken(p.saId, { name: 'B' });
  let t0 = Date.now();
  writeFileSync(a.tokenFile, b.token);
  expect(await msUntilUsed(b.id, t0)).toBeLessThan(2000);
  // Start-up and the first rotation spent the polling burst (4 calls): the second rotation must not wait for it.
  const c = await p.owner.createServiceAccountToken(p.saId, { name: 'C' });
  t0 = Date.now();
  writeFileSync(`${a.tokenFile}.new`, c.token, { mode: 0o600 });
  renameSync(`${a.tokenFile}.new`, a.tokenFile);
  expect(await msUntilUsed(c.id, t0)).toBeLessThan(2000);
  const d = await p.owner.createServiceAccountToken(p.saId, { name: 'D' });
  t0 = Date.now();
  writeFileSync(a.tokenFile, d.token);
  expect(await msUntilUsed(d.id, t0)).toBeLessThan(2000);
  const st = await a.status();
  expect(st.upstream.refreshIntervalSeconds).toBe(60);
  expect(st.scopes[0]).toMatchObject({ serving: true, lastError: null });
  expect(logLines(a.proc).some((l) => l.msg === 'refresh deferred by the call budget')).toBe(false);
});
