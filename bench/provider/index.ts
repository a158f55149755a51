/**
 * Provider benchmarks: launch-to-handshake time of the plugin process (Terraform starts it several times per
 * command, so this is the cost every command pays) and `terraform plan` with 100 unchanged resources against a
 * phase-bridge server on loopback. Run: `npm run bench -- provider` (needs terraform on PATH or TERRAFORM_BIN).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCert } from '../../provider/plugin/cert';
import { installProvider, repoRoot } from '../../provider/install';
import { runStandalone, type BenchResult } from '../report';

const COOKIE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';
const TERRAFORM = process.env.TERRAFORM_BIN || 'terraform';

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

const round = (n: number): number => Math.round(n * 10) / 10;

/** Milliseconds from spawning `args` to the first line on stdout (the handshake line for the provider). */
function launchOnce(args: string[], clientCertPem: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, {
      env: {
        ...process.env,
        TF_PLUGIN_MAGIC_COOKIE: COOKIE,
        PLUGIN_PROTOCOL_VERSIONS: '5,6',
        PLUGIN_CLIENT_CERT: clientCertPem,
      },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        child.kill('SIGTERM');
        resolve(ms);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!out.includes('\n')) reject(new Error(`provider exited ${code} before the handshake`));
    });
  });
}

export async function launchToHandshake(runs = 15): Promise<BenchResult[]> {
  const entry = join(repoRoot(), 'dist', 'provider', 'main.js');
  const cert = generateCert(1).certPem;
  await launchOnce([entry], cert); // warm the file-system cache
  const times: number[] = [];
  const bare: number[] = [];
  // Interleaved with a bare `node` that prints one line: the machine's own process start-up, for context.
  for (let i = 0; i < runs; i++) {
    times.push(await launchOnce([entry], cert));
    bare.push(await launchOnce(['-e', 'process.stdout.write("x\\n")'], cert));
  }
  return [
    {
      name: 'provider launch → handshake, median',
      value: round(percentile(times, 50)),
      unit: 'ms',
      note: `${runs} launches, target < 400 ms`,
    },
    { name: 'provider launch → handshake, p95', value: round(percentile(times, 95)), unit: 'ms' },
    {
      name: 'bare node start → first line, median (baseline)',
      value: round(percentile(bare, 50)),
      unit: 'ms',
    },
  ];
}

function tf(dir: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(TERRAFORM, args, { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new Error(`cannot run ${TERRAFORM}: ${e.message}`)));
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`terraform ${args[0]} exited ${code}: ${err.slice(0, 500)}`)),
    );
  });
}

export async function planHundred(resources = 100, runs = 3): Promise<BenchResult[]> {
  const { createServer } = require('../../server/app') as typeof import('../../server/app');
  const { initOrganisation } = require('../../server/org') as typeof import('../../server/org');
  const { PhaseClient } = require('../../core/client') as typeof import('../../core/client');
  const root = mkdtempSync(join(tmpdir(), 'pb-bench-provider-'));
  const serverSecret = randomBytes(32).toString('hex');
  const server = await createServer({
    database: `sqlite:${join(root, 'phase.db')}`,
    serverSecret,
    logLevel: 'silent',
  });
  try {
    const { ownerToken } = await initOrganisation(server.store, serverSecret, {
      orgName: 'bench',
      ownerEmail: 'bench@example.com',
    });
    const { url } = await server.listen(0, '127.0.0.1');
    const appId = (await new PhaseClient({ host: url, token: ownerToken }).createApp({ name: 'bench' })).id;
    const home = join(root, 'home');
    mkdirSync(home);
    installProvider({ home });
    const rc = join(root, 'terraformrc');
    writeFileSync(rc, '');
    const dir = join(root, 'work');
    mkdirSync(dir);
    const blocks = Array.from(
      { length: resources },
      (_, i) =>
        `resource "phase_secret" "s${i}" {\n  app_id = "${appId}"\n  env    = "Development"\n  key    = "KEY_${i}"\n  value  = "value-${i}"\n}\n`,
    );
    writeFileSync(
      join(dir, 'main.tf'),
      `terraform {\n  required_providers {\n    phase = { source = "phase-bridge/phase" }\n  }\n}\nprovider "phase" {}\n${blocks.join('')}`,
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      CHECKPOINT_DISABLE: '1',
      TF_CLI_CONFIG_FILE: rc,
      TF_IN_AUTOMATION: '1',
      PHASE_HOST: url,
      PHASE_TOKEN: ownerToken,
    };
    await tf(dir, ['init', '-input=false'], env);
    await tf(dir, ['apply', '-input=false', '-auto-approve'], env);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = Date.now();
      await tf(dir, ['plan', '-input=false', '-detailed-exitcode', '-lock=false'], env);
      times.push(Date.now() - t0);
    }
    return [
      {
        name: `terraform plan, ${resources} unchanged phase_secret, median`,
        value: percentile(times, 50),
        unit: 'ms',
        note: `${runs} runs, refresh included, SQLite server on loopback`,
      },
    ];
  } finally {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchResult[]> {
  return [...(await launchToHandshake()), ...(await planHundred())];
}

if (require.main === module) runStandalone('provider', run);
