/**
 * `phase-bridge server init | start | add-member`. Tokens are printed once or written to a file with mode 0600;
 * they never go to the log.
 */
import { existsSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { createServer } from './app';
import {
  ensureKeyFile,
  loadServerSecret,
  parseRateLimit,
  parseSize,
  parseTrustedProxies,
  SERVER_SECRET_ENV,
} from './config';
import { openStore } from './db/store';
import { createMemberWithToken, findOrganisation, initOrganisation, mintMemberToken } from './org';

export const DEFAULT_DATA_DIR = './.phase-bridge';

interface CommonOpts {
  database?: string;
  dataDir?: string;
  keyFile?: string;
}

/** Resolves `--database` / `--data-dir` / `--key-file` to concrete values. */
export function resolvePaths(o: CommonOpts): { database: string; keyFile: string; dataDir: string } {
  const dataDir = o.dataDir ?? DEFAULT_DATA_DIR;
  return {
    dataDir,
    database: o.database ?? `sqlite:${join(dataDir, 'phase.db')}`,
    keyFile: o.keyFile ?? join(dataDir, 'server.key'),
  };
}

/** The server secret: env var, else the key file (created with mode 0600 when `create` is set). */
function secretFor(keyFile: string, create: boolean): string {
  if (process.env[SERVER_SECRET_ENV]) return loadServerSecret(keyFile);
  return create ? ensureKeyFile(keyFile) : loadServerSecret(keyFile);
}

/** Writes a token to a file only the owner can read (refuses to overwrite). */
export function writeTokenFile(file: string, token: string): void {
  mkdirSync(dirname(resolve(file)), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
}

export interface InitResult {
  created: boolean;
  database: string;
  keyFile: string;
  tokenFile?: string;
  ownerToken?: string;
}

/**
 * Initialises the organisation when the database has none (used by `server init` and the quickstart).
 * With `tokenFile`, the owner PAT is written there (0600) instead of being returned.
 */
export async function initIfNeeded(
  o: CommonOpts & { ownerEmail?: string; orgName?: string; tokenFile?: string },
): Promise<InitResult> {
  const { database, keyFile } = resolvePaths(o);
  if (o.tokenFile && existsSync(o.tokenFile)) {
    const store = await openStore(database);
    try {
      if (!(await findOrganisation(store.db))) {
        throw new Error(`token file ${o.tokenFile} already exists; remove it or pick another --token-file`);
      }
    } finally {
      await store.close();
    }
  }
  const secret = secretFor(keyFile, true);
  const store = await openStore(database);
  try {
    if (await findOrganisation(store.db)) return { created: false, database, keyFile };
    const res = await initOrganisation(store, secret, { ownerEmail: o.ownerEmail, orgName: o.orgName });
    if (o.tokenFile) {
      writeTokenFile(o.tokenFile, res.ownerToken);
      return { created: true, database, keyFile, tokenFile: o.tokenFile };
    }
    return { created: true, database, keyFile, ownerToken: res.ownerToken };
  } finally {
    await store.close();
  }
}

export const TRUST_PROXY_REPLACED =
  '--trust-proxy was removed: it believed X-Forwarded-For / X-Real-IP from any client. Name the proxies instead, ' +
  'e.g. --trusted-proxy 127.0.0.1 for an nginx on the same host (repeatable; addresses or CIDR ranges)';

/** `--trusted-proxy` is repeatable; a comma-separated list in one flag works too. */
function collectTrustedProxy(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((v) => v.trim())];
}

export function register(program: Command): void {
  const server = program
    .command('server')
    .description('the Phase-compatible control plane (SQLite or PostgreSQL)');

  server
    .command('init')
    .description('create the organisation and its owner; prints the owner personal access token once')
    .option('--database <url>', 'sqlite:PATH or postgres://... (default sqlite:<data-dir>/phase.db)')
    .option('--data-dir <dir>', 'directory for the default database and key file', DEFAULT_DATA_DIR)
    .option('--key-file <file>', `server key file, created with mode 0600 unless ${SERVER_SECRET_ENV} is set`)
    .option('--owner-email <email>', 'the owner account email', 'owner@localhost')
    .option('--org-name <name>', 'the organisation name', 'phase-bridge')
    .option('--token-file <file>', 'write the owner token to this file (mode 0600) instead of printing it')
    .action(async (o: CommonOpts & { ownerEmail: string; orgName: string; tokenFile?: string }) => {
      const res = await initIfNeeded(o);
      if (!res.created) {
        process.stderr.write(`already initialised (${res.database}); nothing to do\n`);
        process.exitCode = 1;
        return;
      }
      if (res.tokenFile) {
        process.stderr.write(`organisation created; owner token written to ${res.tokenFile} (mode 0600)\n`);
      } else {
        process.stderr.write('organisation created; the owner token is shown once:\n');
        process.stdout.write(`${res.ownerToken}\n`);
      }
    });

  server
    .command('start')
    .description('serve the Phase API (/v1, /service/public/v1, /service/secrets) on 127.0.0.1 by default')
    .option('--database <url>', 'sqlite:PATH or postgres://... (default sqlite:<data-dir>/phase.db)')
    .option('--data-dir <dir>', 'directory for the default database and key file', DEFAULT_DATA_DIR)
    .option('--key-file <file>', `server key file (mode 0600) unless ${SERVER_SECRET_ENV} is set`)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '8080')
    .option('--rate-limit <rate>', 'per-token limit like 600/m (default: off)')
    .option(
      '--trusted-proxy <ip|cidr>',
      'a reverse proxy whose X-Forwarded-For / X-Real-IP are believed for the client IP (repeatable; default: none)',
      collectTrustedProxy,
      [] as string[],
    )
    // Replaced by --trusted-proxy; kept hidden so that old command lines fail with the replacement named.
    .addOption(new Option('--trust-proxy').hideHelp())
    .option('--body-limit <size>', 'maximum request body', '1mb')
    .option(
      '--request-timeout <ms>',
      'answer 503 to a request still running after this long (0: no limit)',
      '30000',
    )
    .option(
      '--allow-loopback-identity-endpoints',
      'tests and local stand-ins only: identity logins may call OIDC issuers and AWS STS on loopback over http',
    )
    .option('--log-level <level>', 'pino log level', 'info')
    .action(
      async (
        o: CommonOpts & {
          host: string;
          port: string;
          rateLimit?: string;
          trustedProxy: string[];
          trustProxy?: boolean;
          bodyLimit: string;
          requestTimeout: string;
          allowLoopbackIdentityEndpoints?: boolean;
          logLevel: string;
        },
      ) => {
        const { database, keyFile } = resolvePaths(o);
        if (o.trustProxy) throw new Error(TRUST_PROXY_REPLACED);
        const trustedProxies = parseTrustedProxies(o.trustedProxy);
        if (o.rateLimit) parseRateLimit(o.rateLimit);
        parseSize(o.bodyLimit);
        const requestTimeout = Number(o.requestTimeout);
        if (!/^\d+$/.test(o.requestTimeout.trim()))
          throw new Error(
            `--request-timeout must be a number of milliseconds (0: no limit), got ${o.requestTimeout}`,
          );
        const port = Number(o.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535)
          throw new Error(`--port must be 0-65535, got ${o.port}`);
        const srv = await createServer({
          database,
          serverSecret: secretFor(keyFile, false),
          rateLimit: o.rateLimit,
          trustedProxies,
          bodyLimit: o.bodyLimit,
          requestTimeout,
          allowLoopbackIdentityEndpoints: o.allowLoopbackIdentityEndpoints === true,
          logLevel: o.logLevel,
        });
        if (!(await findOrganisation(srv.store.db))) {
          srv.context.log.warn('no organisation yet: run `phase-bridge server init` to create one');
        }
        const { url } = await srv.listen(port, o.host);
        srv.context.log.info({ url, store: srv.store.kind }, 'phase-bridge server listening');
        const stop = (signal: string) => {
          srv.context.log.info({ signal }, 'shutting down');
          srv.close().then(
            () => process.exit(0),
            () => process.exit(1),
          );
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      },
    );

  server
    .command('add-member')
    .description('add an organisation member with a personal access token (printed once)')
    .requiredOption('--role <role>', 'role name or id: Admin, Manager, Developer, Service or a custom role')
    .requiredOption('--email <email>', 'member email')
    .option('--database <url>', 'sqlite:PATH or postgres://... (default sqlite:<data-dir>/phase.db)')
    .option('--data-dir <dir>', 'directory for the default database and key file', DEFAULT_DATA_DIR)
    .option('--key-file <file>', `server key file unless ${SERVER_SECRET_ENV} is set`)
    .option('--token-file <file>', 'write the token to this file (mode 0600) instead of printing it')
    .action(async (o: CommonOpts & { role: string; email: string; tokenFile?: string }) => {
      const { database, keyFile } = resolvePaths(o);
      const secret = secretFor(keyFile, false);
      const store = await openStore(database);
      try {
        const m = await createMemberWithToken(store, secret, { role: o.role, email: o.email });
        if (o.tokenFile) {
          writeTokenFile(o.tokenFile, m.token);
          process.stderr.write(`member ${m.id} created; token written to ${o.tokenFile} (mode 0600)\n`);
        } else {
          process.stderr.write(`member ${m.id} created; the token is shown once:\n`);
          process.stdout.write(`${m.token}\n`);
        }
      } finally {
        await store.close();
      }
    });

  server
    .command('mint-token')
    .description(
      'mint another personal access token for an existing member (e.g. a lost owner token); printed once',
    )
    .requiredOption('--email <email>', 'the member email')
    .option('--name <name>', 'token name', 'cli')
    .option('--expires-in <seconds>', 'lifetime in seconds (default: never expires)')
    .option('--database <url>', 'sqlite:PATH or postgres://... (default sqlite:<data-dir>/phase.db)')
    .option('--data-dir <dir>', 'directory for the default database and key file', DEFAULT_DATA_DIR)
    .option('--key-file <file>', `server key file unless ${SERVER_SECRET_ENV} is set`)
    .option('--token-file <file>', 'write the token to this file (mode 0600) instead of printing it')
    .action(
      async (o: CommonOpts & { email: string; name: string; expiresIn?: string; tokenFile?: string }) => {
        const { database, keyFile } = resolvePaths(o);
        let expiresAt: string | null = null;
        if (o.expiresIn !== undefined) {
          if (!/^\d+$/.test(o.expiresIn) || Number(o.expiresIn) <= 0) {
            throw new Error('--expires-in must be a positive number of seconds');
          }
          expiresAt = new Date(Date.now() + Number(o.expiresIn) * 1000).toISOString();
        }
        const secret = secretFor(keyFile, false);
        const store = await openStore(database);
        try {
          const member = await store.db
            .selectFrom('members')
            .select('id')
            .where('email', '=', o.email.trim().toLowerCase())
            .where('deleted_at', 'is', null)
            .executeTakeFirst();
          if (!member) throw new Error(`no member with email ${o.email}`);
          const t = await mintMemberToken(store, secret, member.id, { name: o.name, expiresAt });
          if (o.tokenFile) {
            writeTokenFile(o.tokenFile, t.token);
            process.stderr.write(`token ${t.id} written to ${o.tokenFile} (mode 0600)\n`);
          } else {
            process.stderr.write(`token ${t.id} minted; it is shown once:\n`);
            process.stdout.write(`${t.token}\n`);
          }
        } finally {
          await store.close();
        }
      },
    );
}
