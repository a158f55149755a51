/**
 * Local secrets work without a sidecar, as `phase` and `doppler` users expect: `login`, `logout`, `whoami` and
 * `secrets list | get | set | delete | import | export`. Everything goes through core's PhaseClient on Phase's own
 * `/v1/secrets/` API (same paths, headers and casing), so it works against Phase Cloud as against our server.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { PhaseClient } from '../core/client';
import { EXPORT_FORMATS, parseDotenv, render, type ExportFormat } from '../core/export';
import { parseCredential } from '../core/token';
import type { SseSecret } from '../core/schemas';
import { currentLogin, loginFile, removeLogin, saveLogin, type Login } from '../core/login';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText(
    'after',
    `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`,
  );
}

/** Reads all of stdin (piped), or asks for a line without echo (a terminal). */
async function readSecretInput(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          reject(new Error('interrupted'));
          return;
        }
        value = ch === '\u007f' ? value.slice(0, -1) : value + ch;
      }
    };
    stdin.on('data', onData);
  });
}

function requireLogin(): Login {
  const login = currentLogin();
  if (!login) {
    throw new Error(
      'not logged in: run `phase-bridge login --host <url>`, or set PHASE_HOST and PHASE_TOKEN',
    );
  }
  return login;
}

function clientFor(login: Login): PhaseClient {
  return new PhaseClient({ host: login.host, token: login.token, retries: 1 });
}

interface Scope {
  client: PhaseClient;
  appId: string;
  env: string;
}

/** `--app` by id or name (among the apps the token can reach) and `--env` by name. */
async function scopeOf(o: { app: string; env: string }): Promise<Scope> {
  const client = clientFor(requireLogin());
  if (UUID.test(o.app)) return { client, appId: o.app, env: o.env };
  const { apps } = await client.bootstrap();
  const app = apps.find((a) => a.name.toLowerCase() === o.app.toLowerCase());
  if (!app) {
    const names = apps.map((a) => a.name).sort();
    throw new Error(
      `unknown app '${o.app}'; this token can reach ${names.length ? names.join(', ') : 'no apps'} (use a name or an id)`,
    );
  }
  return { client, appId: app.id, env: o.env };
}

const scoped = (cmd: Command): Command =>
  cmd
    .requiredOption('--app <name|id>', 'app name or id')
    .requiredOption('--env <name>', 'environment name, e.g. Development')
    .option('--path <path>', 'secret path (default /)');

const tagsOf = (s?: string): string[] | undefined =>
  s === undefined
    ? undefined
    : s
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);

async function find(scope: Scope, key: string, path: string | undefined): Promise<SseSecret | undefined> {
  const list = await scope.client.listSecrets({ appId: scope.appId, env: scope.env, key, path: path ?? '/' });
  return list.find((s) => s.key === key);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function register(program: Command): void {
  example(
    program
      .command('login')
      .description(
        'save a host and token for the secrets commands, `run` and `agent` (token read from stdin)',
      )
      .option(
        '--host <url>',
        'Phase host (env PHASE_HOST)',
        process.env.PHASE_HOST ?? 'https://console.phase.dev',
      )
      .option('--token-file <file>', 'read the token from this file instead of stdin'),
    'phase-bridge login --host http://127.0.0.1:8080 < .phase-bridge/owner-token',
  ).action(async (o: { host: string; tokenFile?: string }) => {
    const token = (o.tokenFile ? readFileSync(o.tokenFile, 'utf8') : await readSecretInput('Token: ')).trim();
    parseCredential(token);
    const client = new PhaseClient({ host: o.host, token, retries: 1 });
    const me = await client.bootstrap();
    const file = saveLogin(o.host, token);
    process.stdout.write(
      `Logged in to ${o.host} (organisation ${me.organisation.name}); saved to ${file} (mode 0600)\n`,
    );
  });

  example(program.command('logout').description('forget the saved login'), 'phase-bridge logout').action(
    () => {
      const had = removeLogin();
      process.stdout.write(had ? `Removed ${loginFile()}\n` : 'Not logged in.\n');
    },
  );

  example(
    program.command('whoami').description('show which host, organisation and account the login uses'),
    'phase-bridge whoami',
  ).action(async () => {
    const login = requireLogin();
    const cred = parseCredential(login.token);
    const me = await clientFor(login).bootstrap();
    const account = me.account_id
      ? `service account ${me.account_id}`
      : me.user_id
        ? `member ${me.user_id}`
        : 'service token';
    process.stdout.write(
      `host: ${login.host}\norganisation: ${me.organisation.name}\naccount: ${account} (${cred.authType} token)\n` +
        `apps: ${me.apps.map((a) => `${a.name} (${a.environment_keys.map((k) => k.environment.name).join(', ')})`).join('; ') || 'none'}\n` +
        `login from: ${login.source}\n`,
    );
  });

  const secrets = example(
    program.command('secrets').description('read and write secrets of an app environment'),
    'phase-bridge secrets list --app shop --env Development',
  );

  example(
    scoped(secrets.command('list').description('list secrets; values masked unless --show'))
      .option('--tags <tags>', 'only secrets with these tags (comma-separated)')
      .option('--show', 'print values'),
    'phase-bridge secrets list --app shop --env Development --show',
  ).action(async (o: { app: string; env: string; path?: string; tags?: string; show?: boolean }) => {
    const scope = await scopeOf(o);
    const list = await scope.client.listSecrets({
      appId: scope.appId,
      env: scope.env,
      path: o.path,
      tags: tagsOf(o.tags),
    });
    const rows = [['KEY', 'PATH', 'VALUE', 'TAGS', 'COMMENT']];
    for (const s of list) {
      rows.push([
        s.key,
        s.path,
        o.show ? s.value : '********',
        s.tags.join(','),
        s.comment.replace(/\n/g, ' '),
      ]);
    }
    process.stdout.write(`${table(rows)}\n`);
  });

  example(
    scoped(secrets.command('get <key>').description('print one value')),
    'phase-bridge secrets get DB_URL --app shop --env Production',
  ).action(async (key: string, o: { app: string; env: string; path?: string }) => {
    const scope = await scopeOf(o);
    const s = await find(scope, key, o.path);
    if (!s) throw new Error(`no secret '${key}' at ${o.path ?? '/'} in ${o.app}/${o.env}`);
    process.stdout.write(`${s.value}\n`);
  });

  example(
    scoped(
      secrets
        .command('set <key> [value]')
        .description('create or update a secret; the value comes from stdin when not given'),
    )
      .option('--comment <text>', 'comment')
      .option('--tags <tags>', 'tag names (comma-separated)'),
    'printf %s "$DB_URL" | phase-bridge secrets set DB_URL --app shop --env Production',
  ).action(
    async (
      key: string,
      value: string | undefined,
      o: { app: string; env: string; path?: string; comment?: string; tags?: string },
    ) => {
      const scope = await scopeOf(o);
      const v = value ?? (await readSecretInput(`Value for ${key}: `));
      const existing = await find(scope, key, o.path);
      const target = { appId: scope.appId, env: scope.env };
      if (existing) {
        await scope.client.updateSecrets(target, [
          { id: existing.id, value: v, comment: o.comment, tags: tagsOf(o.tags) },
        ]);
        process.stdout.write(`Updated ${key}\n`);
      } else {
        await scope.client.createSecrets(target, [
          { key, value: v, path: o.path, comment: o.comment, tags: tagsOf(o.tags) },
        ]);
        process.stdout.write(`Created ${key}\n`);
      }
    },
  );

  example(
    scoped(secrets.command('delete <keys...>').description('delete secrets by key')),
    'phase-bridge secrets delete OLD_KEY --app shop --env Development',
  ).action(async (keys: string[], o: { app: string; env: string; path?: string }) => {
    const scope = await scopeOf(o);
    const ids: string[] = [];
    for (const key of keys) {
      const s = await find(scope, key, o.path);
      if (!s)
        throw new Error(`no secret '${key}' at ${o.path ?? '/'} in ${o.app}/${o.env}; nothing was deleted`);
      ids.push(s.id);
    }
    await scope.client.deleteSecrets({ appId: scope.appId, env: scope.env }, ids);
    process.stdout.write(`Deleted ${keys.join(', ')}\n`);
  });

  example(
    scoped(secrets.command('import <file>').description('create or update secrets from a dotenv file')),
    'phase-bridge secrets import .env --app shop --env Development',
  ).action(async (file: string, o: { app: string; env: string; path?: string }) => {
    const scope = await scopeOf(o);
    const entries = parseDotenv(readFileSync(file, 'utf8'));
    const existing = await scope.client.listSecrets({
      appId: scope.appId,
      env: scope.env,
      path: o.path ?? '/',
    });
    const byKey = new Map(existing.filter((s) => s.path === (o.path ?? '/')).map((s) => [s.key, s]));
    const create = entries
      .filter((e) => !byKey.has(e.key))
      .map((e) => ({ key: e.key, value: e.value, path: o.path }));
    const update = entries
      .filter((e) => byKey.has(e.key))
      .map((e) => ({ id: byKey.get(e.key)!.id, value: e.value }));
    const target = { appId: scope.appId, env: scope.env };
    if (create.length) await scope.client.createSecrets(target, create);
    if (update.length) await scope.client.updateSecrets(target, update);
    process.stdout.write(
      `Imported ${entries.length} secrets (${create.length} created, ${update.length} updated)\n`,
    );
  });

  example(
    scoped(secrets.command('export').description('print secrets in an export format'))
      .addOption(
        new Option('--format <format>', 'output format').choices([...EXPORT_FORMATS]).default('dotenv'),
      )
      .option('--tags <tags>', 'only secrets with these tags (comma-separated)')
      .option('--out <file>', 'write to this file (mode 0600) instead of stdout'),
    'phase-bridge secrets export --app shop --env Development --format json',
    'phase-bridge secrets export --app shop --env Development --out .env',
  ).action(
    async (o: {
      app: string;
      env: string;
      path?: string;
      format: ExportFormat;
      tags?: string;
      out?: string;
    }) => {
      const scope = await scopeOf(o);
      const list = await scope.client.listSecrets({
        appId: scope.appId,
        env: scope.env,
        path: o.path,
        tags: tagsOf(o.tags),
      });
      const text = render(
        o.format,
        list.map((s) => ({ key: s.key, value: s.value, comment: s.comment, path: s.path })),
      );
      if (o.out) {
        writeFileSync(o.out, text, { mode: 0o600 });
        chmodSync(o.out, 0o600);
      } else process.stdout.write(text);
    },
  );
}
