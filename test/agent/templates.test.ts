/**
 * Templates (issue 14): several Handlebars templates per agent, strict mode (a missing key is an error, the last good
 * file stays, `/v1/status` says why), helpers for the export formats and for quoting, atomic writes with the mode
 * asked for, `--exec-on-change` debounced and without a shell, the on-disk trust rules, and the configuration
 * (flags and the config file). Real server, real agent.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load as parseYaml } from 'js-yaml';
import { parseDotenv } from '../../core/export';
import { startAgent, type AgentHandle } from '../../agent/agent';
import { splitCommand } from '../../agent/argv';
import { configFromOptions } from '../../agent/cli';
import { buildConfig, parseTemplateFlag } from '../../agent/config';
import { AgentConfigError, AgentPathError } from '../../agent/errors';
import { startTestServer } from '../support/server';
import { call, provision, silent, testConfig, until } from './helpers';

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

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'agent-tpl-'));
}

function tpl(d: string, name: string, text: string): string {
  const f = join(d, name);
  writeFileSync(f, text, { mode: 0o600 });
  return f;
}

async function agentFor(values: Record<string, unknown>): Promise<AgentHandle> {
  const a = await startAgent(testConfig({ host: srv.url, ...values }), { logger: silent });
  agents.push(a);
  await a.engine.firstSync;
  return a;
}

const read = (f: string): string => (existsSync(f) ? readFileSync(f, 'utf8') : '');

async function templateStatus(a: AgentHandle): Promise<Array<Record<string, unknown>>> {
  return JSON.parse((await call(a, '/v1/status')).body).templates;
}

test('several templates: values, quoting helpers, whole-scope formats, scopes, modes; atomic and only on change', async () => {
  const p = await provision(srv.url, srv.ownerToken, {
    Production: [
      { key: 'DB_USER', value: 'app' },
      { key: 'DB_PASS', value: `p'a"ss $HOME\\` },
      { key: 'MULTI', value: 'line one\nline "two"' },
    ],
    Staging: [{ key: 'ONLY_STAGING', value: 'st' }],
  });
  const d = dir();
  const out = join(d, 'out');
  const conf = tpl(
    d,
    'app.conf.hbs',
    [
      'user={{DB_USER}}',
      'pass={{shellQuote DB_PASS}}',
      'json={{json MULTI}}',
      'quoted={{jsonQuote DB_USER}}',
      'b64={{base64 DB_PASS}}',
      'env={{env "DB_USER"}}',
      'other={{env "ONLY_STAGING" scope="stg"}}',
      '{{#if (has "NOPE")}}never{{else}}no NOPE{{/if}}',
      '{{#each this}}[{{@key}}]{{/each}}',
      '',
    ].join('\n'),
  );
  const env = tpl(d, 'env.hbs', '{{dotenv}}');
  const yaml = tpl(d, 'yaml.hbs', '{{yaml}}');
  const json = tpl(d, 'json.hbs', '{{json}}');
  const a = await agentFor({
    token: p.token,
    scopes: [
      { app: p.appName, env: 'Production', name: 'prod' },
      { app: p.appName, env: 'Staging', name: 'stg' },
    ],
    templates: [
      { src: conf, dest: join(out, 'app.conf'), mode: '0640', scope: 'prod' },
      { src: env, dest: join(out, 'app.env'), scope: 'prod' },
      { src: yaml, dest: join(out, 'app.yaml'), scope: 'prod' },
      { src: json, dest: join(out, 'all.json') },
    ],
  });
  await a.templates!.flush();
  const text = read(join(out, 'app.conf'));
  const lines = text.split('\n');
  expect(lines[0]).toBe('user=app');
  // shellQuote: what a POSIX shell reads back is the value, nothing expanded.
  expect(execFileSync('sh', ['-c', `printf %s ${lines[1].slice(5)}`]).toString()).toBe(`p'a"ss $HOME\\`);
  expect(JSON.parse(lines[2].slice(5))).toBe('line one\nline "two"');
  expect(lines[3]).toBe('quoted="app"');
  expect(Buffer.from(lines[4].slice(4), 'base64').toString()).toBe(`p'a"ss $HOME\\`);
  expect(lines[5]).toBe('env=app');
  expect(lines[6]).toBe('other=st');
  expect(lines[7]).toBe('no NOPE');
  expect(lines[8]).toBe('[DB_PASS][DB_USER][MULTI]');
  expect(statSync(join(out, 'app.conf')).mode & 0o777).toBe(0o640);
  expect(statSync(join(out, 'app.env')).mode & 0o777).toBe(0o600);
  expect(Object.fromEntries(parseDotenv(read(join(out, 'app.env'))).map((e) => [e.key, e.value]))).toEqual({
    DB_USER: 'app',
    DB_PASS: `p'a"ss $HOME\\`,
    MULTI: 'line one\nline "two"',
  });
  expect(parseYaml(read(join(out, 'app.yaml')))).toMatchObject({
    DB_USER: 'app',
    MULTI: 'line one\nline "two"',
  });
  expect(JSON.parse(read(join(out, 'all.json')))).toMatchObject({ DB_USER: 'app', ONLY_STAGING: 'st' });
  const st = await templateStatus(a);
  expect(st).toHaveLength(4);
  expect(st[0]).toMatchObject({
    src: conf,
    dest: join(out, 'app.conf'),
    mode: '0640',
    state: 'rendered',
    error: null,
  });
  expect(st.every((t) => t.state === 'rendered' && t.writes === 1)).toBe(true);
  // A change re-renders what depends on it; an identical result is not rewritten.
  await p.owner.createSecrets({ appId: p.appId, env: 'Staging' }, [{ key: 'MORE', value: 'm' }]);
  await until(() => read(join(out, 'all.json')).includes('MORE'));
  await a.templates!.flush();
  const after = await templateStatus(a);
  expect(after[3].writes).toBe(2);
  expect(after[0].writes).toBe(1); // the prod-scoped files did not change
  // No temporary files are left behind.
  expect(readdirSync(out).sort()).toEqual(['all.json', 'app.conf', 'app.env', 'app.yaml']);
  // Values never reach the log-facing status.
  expect(JSON.stringify(after)).not.toContain('app"');
});

test('strict mode: a missing key keeps the last good file and says why in /v1/status; it recovers', async () => {
  const p = await provision(srv.url, srv.ownerToken, {
    Production: [
      { key: 'HOST', value: 'db.internal' },
      { key: 'PORT', value: '5432' },
    ],
  });
  const d = dir();
  const dest = join(d, 'out', 'db.url');
  const missing = join(d, 'out', 'never');
  const a = await agentFor({
    token: p.token,
    scopes: [{ app: p.appName, env: 'Production' }],
    templates: [
      { src: tpl(d, 'db.hbs', 'postgres://{{HOST}}:{{PORT}}/app'), dest },
      { src: tpl(d, 'bad.hbs', '{{env "NO_SUCH_KEY"}}'), dest: missing },
    ],
  });
  await a.templates!.flush();
  expect(read(dest)).toBe('postgres://db.internal:5432/app');
  let st = await templateStatus(a);
  expect(st[1]).toMatchObject({ state: 'failed', error: expect.stringMatching(/NO_SUCH_KEY/) });
  expect(existsSync(missing)).toBe(false);

  const [port] = (await p.owner.listSecrets({ appId: p.appId, env: 'Production' })).filter(
    (s) => s.key === 'PORT',
  );
  await p.owner.deleteSecrets({ appId: p.appId, env: 'Production' }, [port.id]);
  await until(async () => (await templateStatus(a))[0].state === 'failed');
  st = await templateStatus(a);
  expect(st[0].error).toMatch(/"PORT" not defined/);
  expect(String(st[0].error)).not.toContain('db.internal');
  expect(read(dest)).toBe('postgres://db.internal:5432/app'); // the last good file

  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'PORT', value: '6543' }]);
  await until(() => read(dest) === 'postgres://db.internal:6543/app');
  expect((await templateStatus(a))[0]).toMatchObject({ state: 'rendered', error: null });
});

test('--exec-on-change runs after changes, debounced, without a shell and without the service token', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'V', value: '1' }] });
  const d = dir();
  const log = join(d, 'exec.log');
  const script = join(d, 'hook.js');
  writeFileSync(
    script,
    `require('fs').appendFileSync(${JSON.stringify(log)}, JSON.stringify({ argv: process.argv.slice(2), token: process.env.PHASE_SERVICE_TOKEN ?? null }) + '\\n');`,
  );
  process.env.PHASE_SERVICE_TOKEN = p.token; // as if the agent had it from its environment
  let a: AgentHandle;
  try {
    a = await agentFor({
      token: p.token,
      scopes: [{ app: p.appName, env: 'Production' }],
      templates: [{ src: tpl(d, 'v.hbs', 'v={{V}}'), dest: join(d, 'out', 'v') }],
      execOnChange: `${process.execPath} ${script} "two words" '$(touch ${join(d, 'pwned')})'`,
      execDebounce: '300ms',
    });
    await until(() => read(log).split('\n').filter(Boolean).length === 1);
  } finally {
    delete process.env.PHASE_SERVICE_TOKEN;
  }
  const first = JSON.parse(read(log).split('\n')[0]);
  expect(first.argv).toEqual(['two words', `$(touch ${join(d, 'pwned')})`]);
  expect(first.token).toBeNull();
  expect(existsSync(join(d, 'pwned'))).toBe(false);
  // Two changes within the debounce window: one more run.
  const [v] = await p.owner.listSecrets({ appId: p.appId, env: 'Production' });
  await p.owner.updateSecrets({ appId: p.appId, env: 'Production' }, [{ id: v.id, value: '2' }]);
  await until(() => read(join(d, 'out', 'v')) === 'v=2');
  await p.owner.updateSecrets({ appId: p.appId, env: 'Production' }, [{ id: v.id, value: '3' }]);
  await until(() => read(join(d, 'out', 'v')) === 'v=3');
  await until(() => read(log).split('\n').filter(Boolean).length >= 2);
  await new Promise((r) => setTimeout(r, 800));
  expect(read(log).split('\n').filter(Boolean).length).toBe(2);
  const st = JSON.parse((await call(a, '/v1/status')).body);
  expect(st.execOnChange).toMatchObject({ runs: 2, last: { code: 0 } });
  // A secret change that leaves the file as it was runs nothing.
  await p.owner.createSecrets({ appId: p.appId, env: 'Production' }, [{ key: 'UNUSED', value: 'u' }]);
  await until(async () => (await call(a, '/v1/secrets/UNUSED')).status === 200);
  await new Promise((r) => setTimeout(r, 600));
  expect(read(log).split('\n').filter(Boolean).length).toBe(2);
});

test('fail closed: a revoked token removes the rendered templates', async () => {
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'S', value: 's' }] });
  const d = dir();
  const dest = join(d, 'out', 's');
  const a = await agentFor({
    token: p.token,
    scopes: [{ app: p.appName, env: 'Production' }],
    push: false,
    templates: [{ src: tpl(d, 's.hbs', '{{S}}'), dest }],
  });
  await until(() => read(dest) === 's');
  await p.owner.deleteServiceAccountToken(p.saId, p.tokenId);
  await until(() => !existsSync(dest));
  expect((await templateStatus(a))[0]).toMatchObject({ state: 'removed' });
});

test('configuration: flags, the config file, and what is refused at start', async () => {
  expect(parseTemplateFlag('a.hbs:/run/app/a.conf')).toEqual({ src: 'a.hbs', dest: '/run/app/a.conf' });
  expect(parseTemplateFlag('a.hbs:/run/app/a.conf:0640')).toEqual({
    src: 'a.hbs',
    dest: '/run/app/a.conf',
    mode: '0640',
  });
  expect(parseTemplateFlag('a.hbs:/x:y')).toEqual({ src: 'a.hbs', dest: '/x:y' });
  expect(splitCommand(`nginx -s reload`)).toEqual(['nginx', '-s', 'reload']);
  expect(splitCommand(`a "b c" 'd "e"' f\\ g "h\\"i"`)).toEqual(['a', 'b c', 'd "e"', 'f g', 'h"i']);
  expect(() => splitCommand(`a "b`)).toThrow(/unterminated/);

  const base = {
    PHASE_SERVICE_TOKEN:
      'pss_service:v2:' + 'a'.repeat(64) + ':' + 'b'.repeat(64) + ':' + 'c'.repeat(64) + ':' + 'd'.repeat(64),
    PHASE_APP: 'x',
    PHASE_ENV: 'y',
  };
  const cfg = configFromOptions(
    { template: ['t1.hbs:/tmp/o1', 't2.hbs:/tmp/o2:0644'], execOnChange: 'kill -HUP 1', execDebounce: '2s' },
    base,
  );
  expect(cfg.templates.map((t) => [t.dest, t.mode])).toEqual([
    ['/tmp/o1', 0o600],
    ['/tmp/o2', 0o644],
  ]);
  expect(cfg.execOnChange).toEqual(['kill', '-HUP', '1']);
  expect(cfg.execDebounce).toBe(2000);

  const bad = (values: Record<string, unknown>): string => {
    try {
      buildConfig([
        {
          values: { token: base.PHASE_SERVICE_TOKEN, scopes: [{ app: 'x', env: 'y' }], ...values },
          source: {},
        },
      ]);
    } catch (err) {
      expect(err).toBeInstanceOf(AgentConfigError);
      return (err as Error).message;
    }
    return 'accepted';
  };
  expect(bad({ templates: [{ src: 'a', dest: 'b', mode: '0666' }] })).toMatch(/group or others write/);
  expect(bad({ templates: [{ src: 'a', dest: 'b', mode: 'rw' }] })).toMatch(/octal/);
  expect(bad({ templates: [{ src: 'a', dest: 'b', scope: 'nope' }] })).toMatch(/no scope named nope/);
  expect(
    bad({
      templates: [
        { src: 'a', dest: '/o' },
        { src: 'b', dest: '/o' },
      ],
    }),
  ).toMatch(/written twice/);
  expect(bad({ execOnChange: 'x' })).toMatch(/add --template/);
  expect(bad({ templates: [{ src: 'a', dest: 'b', mode: 640 }] })).toBe('accepted');

  // At start: a syntax error is a configuration error; a template others can write is refused.
  const p = await provision(srv.url, srv.ownerToken, { Production: [{ key: 'A', value: 'a' }] });
  const d = dir();
  const start = (src: string) =>
    startAgent(
      testConfig({
        host: srv.url,
        token: p.token,
        scopes: [{ app: p.appName, env: 'Production' }],
        templates: [{ src, dest: join(d, 'out', 'x') }],
      }),
      { logger: silent },
    ).then((a) => {
      agents.push(a);
      return a;
    });
  await expect(start(tpl(d, 'syntax.hbs', 'hello {{ oops'))).rejects.toThrow(/not a valid template/);
  await expect(start(join(d, 'absent.hbs'))).rejects.toThrow(/no such file/);
  const loose = tpl(d, 'loose.hbs', '{{A}}');
  chmodSync(loose, 0o666);
  if (process.getuid?.() !== undefined) await expect(start(loose)).rejects.toBeInstanceOf(AgentPathError);
});
