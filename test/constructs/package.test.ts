/**
 * phase-bridge as a package other projects install: `npm pack` of the repository (the build output `npm test`
 * made first), installed offline into a fresh project with its own package.json and tsconfig.json next to cdktf and
 * constructs, a stack written against the public API only (`phase-bridge/constructs`) compiled with tsc, synthesised,
 * and applied with the real terraform binary through the packed provider (`phase-bridge provider install`) against a
 * real server. The packed agent, started with the stack's token, serves exactly the declared secrets; a changed value
 * reaches it after a second apply; destroy leaves the server without apps or service accounts.
 *
 * The install is `npm ci --offline --ignore-scripts` from a lock file derived from the repository's: the versions
 * are those `npm ci` already put in the npm cache, so nothing is downloaded; install scripts are skipped because the
 * only native addon (better-sqlite3, the server's SQLite store) is not used by a stack, the provider or the agent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { initCrypto } from '../../core/crypto';
import { PhaseSession } from '../../core/session';
import { startTestServer, type TestServer } from '../support/server';
import { freePort } from '../support/ports';
import { TERRAFORM, requireTerraform } from '../provider/terraform-harness';

jest.setTimeout(420_000);

const REPO = join(__dirname, '..', '..');
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** Build outputs the package must ship; `npm test` builds before jest runs. */
const BUILT = [
  'dist/constructs/index.js',
  'dist/constructs/index.d.ts',
  'dist/constructs/provider/index.js',
  'dist/constructs/provider/index.d.ts',
  'dist/provider/main.js',
  'dist/bin/cli.js',
];

interface Run {
  code: number;
  out: string;
}

/** Runs a command asynchronously (the server under test answers from this process meanwhile). */
function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; ok?: number[]; timeoutMs?: number },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if ((opts.ok ?? [0]).includes(code ?? -1)) resolve({ code: code ?? -1, out });
      else reject(new Error(`${cmd} ${args.join(' ')} (in ${opts.cwd}) exited ${code}\n${out}`));
    });
  });
}

interface PackResult {
  filename: string;
  integrity: string;
  files: Array<{ path: string }>;
}

type LockEntry = {
  version?: string;
  inBundle?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [k: string]: unknown;
};

/**
 * The consumer's package-lock.json: the tarball, plus every package it (and the consumer's direct dependencies)
 * needs, at the locations and versions of the repository's own lock file, i.e. what `npm ci` already cached.
 */
function consumerLock(
  rootDeps: Record<string, string>,
  tarball: string,
  integrity: string,
  registry: string,
  aliases: Record<string, string> = {},
): Record<string, unknown> {
  const repoLock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  // An npm alias (`"cdktf": "npm:cdktn@..."`): the real package installed under the alias' name.
  for (const [alias, real] of Object.entries(aliases)) {
    const from = `node_modules/${real}`;
    const to = `node_modules/${alias}`;
    for (const k of Object.keys(repoLock.packages))
      if (k === to || k.startsWith(`${to}/`)) delete repoLock.packages[k];
    for (const [k, e] of Object.entries(repoLock.packages))
      if (k === from || k.startsWith(`${from}/`))
        repoLock.packages[to + k.slice(from.length)] = k === from ? { ...e, name: real } : e;
  }
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    version: string;
    license: string;
    dependencies: Record<string, string>;
    peerDependencies: Record<string, string>;
    bin: Record<string, string>;
    engines: Record<string, string>;
  };
  const P = repoLock.packages;
  const out: Record<string, LockEntry> = {
    '': { name: 'pack-consumer', version: '1.0.0', dependencies: rootDeps },
    'node_modules/phase-bridge': {
      version: pkg.version,
      resolved: tarball,
      integrity,
      license: pkg.license,
      dependencies: pkg.dependencies,
      peerDependencies: pkg.peerDependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  // Node's resolution: the nearest node_modules/<name> from `from` upwards.
  const find = (from: string, name: string): string | undefined => {
    let base = from;
    for (;;) {
      const candidate = `${base ? `${base}/` : ''}node_modules/${name}`;
      if (P[candidate]) return candidate;
      if (!base) return undefined;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const queue: Array<{ from: string; deps: Record<string, string>; optional: Record<string, string> }> = [];
  const add = (loc: string): void => {
    if (out[loc]) return;
    const e: LockEntry = { ...P[loc] };
    delete e.dev;
    delete e.devOptional;
    delete e.peer;
    // The tarball's address, which the repository's lock omits (omit-lockfile-registry-resolved): npm then takes
    // the tarball from its cache by integrity, and needs no package metadata, cached or not.
    if (!e.inBundle && !e.resolved && typeof e.version === 'string') {
      const name = typeof e.name === 'string' ? e.name : loc.slice(loc.lastIndexOf('node_modules/') + 13);
      e.resolved = `${registry}${name}/-/${name.split('/').pop()}-${e.version}.tgz`;
    }
    out[loc] = e;
    for (const k of Object.keys(P)) if (k.startsWith(`${loc}/node_modules/`) && P[k].inBundle) add(k);
    const deps: Record<string, string> = { ...e.dependencies, ...e.optionalDependencies };
    for (const [n, r] of Object.entries(e.peerDependencies ?? {}))
      if (!e.peerDependenciesMeta?.[n]?.optional) deps[n] = r;
    queue.push({ from: loc, deps, optional: e.optionalDependencies ?? {} });
  };
  const { ['phase-bridge']: _self, ...direct } = rootDeps;
  queue.push({ from: '', deps: direct, optional: {} });
  queue.push({
    from: 'node_modules/phase-bridge',
    deps: { ...pkg.dependencies, ...pkg.peerDependencies },
    optional: {},
  });
  while (queue.length) {
    const { from, deps, optional } = queue.shift()!;
    for (const [name, range] of Object.entries(deps)) {
      const loc = find(from, name);
      if (loc) add(loc);
      else if (!(name in optional))
        throw new Error(
          `${from || 'the consumer'} needs ${name}@${range}, which the repository's lock file lacks`,
        );
    }
  }
  const keys = Object.keys(out).sort((a, b) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b)));
  return {
    name: 'pack-consumer',
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: Object.fromEntries(keys.map((k) => [k, out[k]])),
  };
}

/** The consumer's stack: the public API only. `dbPassword` changes between the two applies. */
function mainTs(dbPassword: string): string {
  return `import { App, TerraformStack, TerraformOutput } from 'cdktf';
import { PhaseProvider, PhaseApp, PhaseServiceAccount } from 'phase-bridge/constructs';

const outdir = process.argv[2] ?? 'cdktf.out';
const app = new App({ outdir });
const stack = new TerraformStack(app, 'pack');
new PhaseProvider(stack, 'phase'); // host/token from PHASE_HOST / PHASE_TOKEN env
const payments = new PhaseApp(stack, 'app', { name: 'pack-test', environments: ['Development', 'Production'] });
payments.addSecrets('Development', { API_URL: 'https://api.example', FEATURE: 'on' });
payments.addSecret('Development', 'DB_PASSWORD', { value: ${JSON.stringify(dbPassword)}, path: '/' });
const sa = new PhaseServiceAccount(stack, 'sa', { name: 'pack-agent', role: 'Developer' });
sa.grant(payments, ['Development']);
const token = sa.addToken('agent', { name: 'agent' });
new TerraformOutput(stack, 'token', { value: token.token, sensitive: true });
app.synth();
`;
}

let root: string;
let consumer: string;
let server: TestServer;
let tfEnv: NodeJS.ProcessEnv;
let agent: ChildProcess | undefined;
let agentLog = '';
let pack: PackResult;

beforeAll(async () => {
  const missing = BUILT.filter((f) => !existsSync(join(REPO, f)));
  if (missing.length)
    throw new Error(
      `the package test packs the build output; run \`npm run build\` first (npm test does). Missing: ${missing.join(', ')}`,
    );
  requireTerraform();
  await initCrypto();
  root = mkdtempSync(join(tmpdir(), 'pb-pack-'));
  consumer = join(root, 'consumer');
  mkdirSync(consumer);
  server = await startTestServer({ store: 'sqlite' });
});

afterAll(async () => {
  if (agent && agent.exitCode === null) {
    const exited = new Promise((r) => agent!.once('exit', r));
    agent.kill('SIGTERM');
    await exited;
  }
  await server?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('npm pack ships the build output, declarations and the provider descriptor, and no sources or tests', async () => {
  const { out } = await run(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', root], {
    cwd: REPO,
  });
  pack = (JSON.parse(out.slice(out.indexOf('['))) as PackResult[])[0];
  const files = pack.files.map((f) => f.path);
  for (const f of [
    ...BUILT,
    'bin/phase-bridge.js',
    'provider/proto/descriptor.json',
    'package.json',
    'README.md',
  ])
    expect(files).toContain(f);
  expect(files.filter((f) => /(^|\/)(test|node_modules)\//.test(f) || f.startsWith('dist/bench/'))).toEqual(
    [],
  );
  expect(files.filter((f) => f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts')))).toEqual([]);
  const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    peerDependencies: Record<string, string>;
  };
  // One copy of cdktf and constructs in a user's project: theirs.
  expect(Object.keys(manifest.peerDependencies).sort()).toEqual(['cdktf', 'constructs']);
  expect(manifest.dependencies).not.toHaveProperty('cdktf');
  expect(manifest.dependencies).not.toHaveProperty('constructs');
});

/**
 * A fresh project in `dir`: package.json and lock file (the tarball, `cdktf` as `cdktfSpec`, constructs and
 * @types/node), `npm ci` offline, tsconfig.json as `cdktf init` writes it (CommonJS, classic node resolution,
 * which reads `typesVersions`) without skipLibCheck so that the shipped declarations are checked too, once more with
 * node16 resolution (which reads `exports`), and the stack compiled to main.js.
 */
async function installConsumer(
  dir: string,
  cdktfSpec: string,
  aliases: Record<string, string> = {},
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const repoLock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version: string }>;
  };
  const version = (name: string): string => repoLock.packages[`node_modules/${name}`].version;
  const tarball = `file:../${pack.filename}`;
  // No npm_* variables from an enclosing `npm test`: they would point this npm at the repository.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  const registry = (await run(NPM, ['config', 'get', 'registry'], { cwd: dir, env })).out
    .trim()
    .replace(/\/?$/, '/');
  const deps = {
    'phase-bridge': tarball,
    cdktf: cdktfSpec,
    constructs: version('constructs'),
    '@types/node': version('@types/node'),
  };
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'pack-consumer', version: '1.0.0', private: true, dependencies: deps }, null, 2),
  );
  writeFileSync(
    join(dir, 'package-lock.json'),
    JSON.stringify(consumerLock(deps, tarball, pack.integrity, registry, aliases), null, 2),
  );
  await run(NPM, ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, env });

  const compilerOptions = {
    target: 'ES2020',
    module: 'CommonJS',
    lib: ['es2020'],
    strict: true,
    declaration: true,
    noImplicitAny: true,
    types: ['node'],
  };
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions, include: ['main.ts'] }, null, 2),
  );
  writeFileSync(
    join(dir, 'tsconfig.node16.json'),
    JSON.stringify(
      {
        compilerOptions: { ...compilerOptions, module: 'Node16', moduleResolution: 'Node16', noEmit: true },
        include: ['main.ts'],
      },
      null,
      2,
    ),
  );
  writeFileSync(join(dir, 'main.ts'), mainTs('pw-1'));
  await run(process.execPath, [TSC, '-p', 'tsconfig.node16.json'], { cwd: dir });
  await run(process.execPath, [TSC, '-p', '.'], { cwd: dir });
  expect(existsSync(join(dir, 'main.js'))).toBe(true);
}

/** The synthesised stack without cdktf's metadata (`//` keys, which name the library and its version). */
function synthesised(outdir: string): unknown {
  const strip = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(strip)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([k]) => k !== '//')
              .map(([k, x]) => [k, strip(x)]),
          )
        : v;
  return strip(JSON.parse(readFileSync(join(outdir, 'stacks', 'pack', 'cdk.tf.json'), 'utf8')));
}

test('a fresh project installs the tarball offline and compiles a stack against the public API', async () => {
  expect(pack).toBeDefined();
  const repoLock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version: string }>;
  };
  await installConsumer(consumer, repoLock.packages['node_modules/cdktf'].version);

  // One cdktf and one constructs in the tree (the peers), none nested under phase-bridge.
  const nm = join(consumer, 'node_modules');
  expect(existsSync(join(nm, 'phase-bridge', 'node_modules', 'cdktf'))).toBe(false);
  expect(existsSync(join(nm, 'phase-bridge', 'node_modules', 'constructs'))).toBe(false);
  expect(existsSync(join(nm, 'cdktf', 'node_modules', 'constructs'))).toBe(false);

  // The exports map, from the consumer's point of view.
  const resolveIn = (spec: string): Promise<Run> =>
    run(process.execPath, ['-p', `require.resolve(${JSON.stringify(spec)})`], { cwd: consumer });
  expect((await resolveIn('phase-bridge/constructs')).out.trim()).toBe(
    join(nm, 'phase-bridge', 'dist', 'constructs', 'index.js'),
  );
  expect((await resolveIn('phase-bridge/constructs/provider')).out.trim()).toBe(
    join(nm, 'phase-bridge', 'dist', 'constructs', 'provider', 'index.js'),
  );
  expect((await resolveIn('phase-bridge/package.json')).out.trim()).toBe(
    join(nm, 'phase-bridge', 'package.json'),
  );
  expect((await resolveIn('phase-bridge/dist/server')).out.trim()).toBe(
    join(nm, 'phase-bridge', 'dist', 'server', 'index.js'),
  );
  const l1 = await run(
    process.execPath,
    ['-p', "Object.keys(require('phase-bridge/constructs/provider')).includes('secret')"],
    { cwd: consumer },
  );
  expect(l1.out.trim()).toBe('true');
});

test('with cdktn in place of cdktf (an npm alias, cdktf@npm:cdktn) the same stack synthesises the same JSON', async () => {
  expect(existsSync(join(consumer, 'main.js'))).toBe(true);
  const repoLock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version: string }>;
  };
  const aliased = join(root, 'consumer-cdktn');
  await installConsumer(aliased, `npm:cdktn@${repoLock.packages['node_modules/cdktn'].version}`, {
    cdktf: 'cdktn',
  });
  const lib = JSON.parse(readFileSync(join(aliased, 'node_modules', 'cdktf', 'package.json'), 'utf8')) as {
    name: string;
  };
  expect(lib.name).toBe('cdktn');
  // From one working directory: the local backend's state path is relative to it.
  await run(process.execPath, [join(aliased, 'main.js'), join(aliased, 'out')], { cwd: root });
  await run(process.execPath, [join(consumer, 'main.js'), join(consumer, 'out-cdktf')], { cwd: root });
  expect(synthesised(join(aliased, 'out'))).toEqual(synthesised(join(consumer, 'out-cdktf')));
});

test('synth, terraform apply through the packed provider, the packed agent serves the stack, update, destroy', async () => {
  expect(existsSync(join(consumer, 'main.js'))).toBe(true);
  const cli = join(consumer, 'node_modules', '.bin', 'phase-bridge');

  // `phase-bridge provider install` into a private HOME; an empty CLI config file, so terraform uses the
  // implied local mirror there and never reads the real user's ~/.terraformrc or ~/.terraform.d.
  const home = join(root, 'home');
  mkdirSync(home);
  const rc = join(root, 'terraformrc');
  writeFileSync(rc, '');
  tfEnv = {
    ...process.env,
    HOME: home,
    CHECKPOINT_DISABLE: '1',
    TF_CLI_CONFIG_FILE: rc,
    TF_IN_AUTOMATION: '1',
  };
  for (const k of ['PHASE_SERVICE_TOKEN', 'PHASE_PAT_TOKEN', 'TF_LOG', 'TF_PLUGIN_CACHE_DIR'])
    delete tfEnv[k];
  Object.assign(tfEnv, { PHASE_HOST: server.url, PHASE_TOKEN: server.ownerToken });
  const installed = await run(cli, ['provider', 'install'], { cwd: consumer, env: tfEnv });
  const launcher = installed.out.match(/at (\S+terraform-provider-phase\S*)/)?.[1];
  expect(launcher).toBeDefined();
  // The launcher runs the packed provider, not the repository's.
  expect(readFileSync(launcher!, 'utf8')).toContain(
    join(consumer, 'node_modules', 'phase-bridge', 'dist', 'provider', 'main.js'),
  );

  const outdir = join(consumer, 'cdktf.out');
  const stackDir = join(outdir, 'stacks', 'pack');
  const synth = async (): Promise<void> => {
    await run(process.execPath, ['main.js', outdir], { cwd: consumer });
  };
  const tf = (args: string[], ok?: number[]): Promise<Run> =>
    run(TERRAFORM, [...args, '-no-color'], { cwd: stackDir, env: tfEnv, ok });

  await synth();
  await tf(['init', '-input=false']);
  await tf(['apply', '-auto-approve', '-input=false']);
  const outputs = JSON.parse((await tf(['output', '-json'])).out) as {
    token: { value: string; sensitive: boolean };
  };
  expect(outputs.token.sensitive).toBe(true);
  const token = outputs.token.value;
  expect(token).toMatch(/^pss_service:v2:/);

  // The grant is Development only.
  const session = await new PhaseSession({ host: server.url, token }).init();
  await expect(session.get({ appName: 'pack-test', env: 'Production' })).rejects.toThrow();

  // The packed agent, as a user runs it.
  const tokenFile = join(root, 'agent-token');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  const dataDir = join(root, 'agent');
  const port = await freePort();
  agent = spawn(
    cli,
    [
      'agent',
      ...['--host', server.url, '--token-file', tokenFile, '--app', 'pack-test', '--env', 'Development'],
      ...['--port', String(port), '--data-dir', dataDir, '--no-snapshot', '--log-level', 'warn'],
      ...['--refresh', '200ms', '--jitter', '0', '--budget-per-minute', '600', '--budget-burst', '20'],
    ],
    { cwd: consumer, env: { ...process.env, HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  agent.stdout!.on('data', (d: Buffer) => (agentLog += d.toString()));
  agent.stderr!.on('data', (d: Buffer) => (agentLog += d.toString()));
  const secrets = async (): Promise<Record<string, string> | undefined> => {
    if (agent!.exitCode !== null) throw new Error(`the agent exited ${agent!.exitCode}:\n${agentLog}`);
    const clientTokenFile = join(dataDir, 'client-token');
    if (!existsSync(clientTokenFile)) return undefined;
    const res = await fetch(`http://127.0.0.1:${port}/v1/secrets`, {
      headers: { 'X-Phase-Agent-Token': readFileSync(clientTokenFile, 'utf8').trim() },
    }).catch(() => undefined);
    return res?.ok ? ((await res.json()) as Record<string, string>) : undefined;
  };
  const until = async (
    pred: (s: Record<string, string>) => boolean,
    what: string,
  ): Promise<Record<string, string>> => {
    const end = Date.now() + 20_000;
    let last: Record<string, string> | undefined;
    while (Date.now() < end) {
      last = await secrets();
      if (last && pred(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `the agent did not serve ${what} within 20 s; last answer ${JSON.stringify(last)}\n${agentLog}`,
    );
  };
  expect(await until(() => true, 'the secrets')).toEqual({
    API_URL: 'https://api.example',
    FEATURE: 'on',
    DB_PASSWORD: 'pw-1',
  });

  // A changed value in the stack: rewrite, recompile, synth, apply; the running agent picks it up.
  writeFileSync(join(consumer, 'main.ts'), mainTs('pw-2'));
  await run(process.execPath, [TSC, '-p', '.'], { cwd: consumer });
  await synth();
  const plan = await tf(['plan', '-input=false', '-detailed-exitcode'], [2]);
  expect(plan.out).toMatch(/0 to add, 1 to change, 0 to destroy/);
  await tf(['apply', '-auto-approve', '-input=false']);
  expect(await until((s) => s.DB_PASSWORD === 'pw-2', 'the new DB_PASSWORD')).toEqual({
    API_URL: 'https://api.example',
    FEATURE: 'on',
    DB_PASSWORD: 'pw-2',
  });

  await tf(['destroy', '-auto-approve', '-input=false']);
  for (const path of ['/v1/apps/', '/v1/service-accounts/']) {
    const res = await fetch(`${server.url}${path}`, {
      headers: { Authorization: `Bearer User ${server.ownerToken.split(':')[2]}` },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data?: unknown[] } | unknown[];
    expect(Array.isArray(body) ? body : body.data).toEqual([]);
  }
  expect(dirname(launcher!)).toContain(home);
});
