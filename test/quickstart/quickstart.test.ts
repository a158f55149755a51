/**
 * `npm start` end to end: the built CLI's quickstart in a fresh directory serves the server, deploys the CDKTF
 * example with the real terraform binary and provider, and the agent then serves the declared secrets. A second
 * run on the same directory reuses the organisation and state. SIGTERM stops it cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/ports';
import { requireTerraform } from '../provider/terraform-harness';

jest.setTimeout(240_000);

const CLI = join(__dirname, '..', '..', 'bin', 'phase-bridge.js');
let dir: string;

beforeAll(() => {
  requireTerraform();
  dir = mkdtempSync(join(tmpdir(), 'pb-quickstart-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function runQuickstart(): Promise<{ child: ChildProcess; out: () => string; agentPort: number }> {
  const [port, agentPort] = [await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [CLI, 'quickstart', '--port', String(port), '--agent-port', String(agentPort)],
    {
      cwd: dir,
      env: { ...process.env, CHECKPOINT_DISABLE: '1' },
    },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (out.includes('Ctrl-C stops')) {
        clearInterval(t);
        resolve();
      }
    }, 100);
    child.once('exit', (code) => {
      clearInterval(t);
      reject(new Error(`quickstart exited ${code}:\n${out}`));
    });
  });
  return { child, out: () => out, agentPort };
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

test('declare, deploy and serve on the embedded server, twice', async () => {
  for (const round of [1, 2]) {
    const { child, out, agentPort } = await runQuickstart();
    try {
      expect(out()).toContain(round === 1 ? 'New organisation' : 'Owner token:');
      const clientToken = readFileSync(join(dir, '.phase-bridge', 'agent', 'client-token'), 'utf8').trim();
      const res = await fetch(`http://127.0.0.1:${agentPort}/v1/secrets/GREETING`, {
        headers: { 'X-Phase-Agent-Token': clientToken },
      });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('hello from phase-bridge (db: postgres://app:dev@127.0.0.1:5432/app)');
      for (const f of ['owner-token', 'agent-token', 'server.key']) {
        expect(statSync(join(dir, '.phase-bridge', f)).mode & 0o777).toBe(0o600);
      }
      // Tokens never reach the console.
      const owner = readFileSync(join(dir, '.phase-bridge', 'owner-token'), 'utf8').trim();
      expect(out()).not.toContain(owner.split(':')[2]);
    } finally {
      expect(await stop(child)).toBe(0);
    }
  }
});
