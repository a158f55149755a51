/**
 * Test helpers: provision an app, a service account and secrets on the real server through the /v1 client, build
 * agent configs with short intervals, and make raw HTTP requests to an agent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PhaseClient } from '../../core/client';
import { fetchTransport, type Transport } from '../../core/http';
import { buildConfig, type AgentConfig } from '../../agent/config';
import { createLogger } from '../../agent/logger';
import type { ClientFactory } from '../../agent/sync';
import { CLIENT_TOKEN_HEADER } from '../../agent/security';
import type { AgentHandle } from '../../agent/agent';
import type { TestServer } from '../support/server';

export const silent = createLogger('silent');

export interface Provisioned {
  owner: PhaseClient;
  appId: string;
  appName: string;
  envIds: Record<string, string>;
  saId: string;
  token: string;
  tokenId: string;
}

let counter = 0;

/** A fresh app (Development/Staging/Production) and a service account with access to all three. */
export async function provision(
  url: string,
  ownerToken: string,
  secrets: Record<string, Array<{ key: string; value: string; path?: string; tags?: string[] }>> = {},
): Promise<Provisioned> {
  const owner = new PhaseClient({ host: url, token: ownerToken, retries: 0 });
  const appName = `agent-${process.pid}-${Date.now()}-${counter++}`;
  const app = await owner.createApp({ name: appName });
  const envIds = Object.fromEntries(app.environments.map((e) => [e.name, e.id]));
  const role = (await owner.listRoles()).find((r) => r.name === 'Service');
  if (!role) throw new Error('no Service role');
  const sa = await owner.createServiceAccount({ name: `${appName}-sa`, role_id: role.id });
  await owner.setServiceAccountAccess(sa.id, [{ id: app.id, environments: Object.values(envIds) }]);
  for (const [env, list] of Object.entries(secrets)) {
    if (list.length) await owner.createSecrets({ appId: app.id, env }, list);
  }
  return {
    owner,
    appId: app.id,
    appName,
    envIds,
    saId: sa.id,
    token: sa.initialToken.token,
    tokenId: sa.initialToken.id,
  };
}

/** An agent config for tests: loopback, port 0, fast refresh, generous budget, its own data dir, silent logs. */
export function testConfig(values: Record<string, unknown>): AgentConfig {
  const dataDir = (values.dataDir as string) ?? mkdtempSync(join(tmpdir(), 'agent-test-'));
  return buildConfig([
    {
      values: {
        port: 0,
        refreshInterval: '150ms',
        jitter: 0,
        budgetPerMinute: 6000,
        budgetBurst: 50,
        tokenPollInterval: '100ms',
        upstreamTimeout: '2s',
        firstSyncWait: '5s',
        shutdownGrace: '2s',
        logLevel: 'silent',
        ...values,
        dataDir,
      },
      source: {},
    },
  ]);
}

/** Counts upstream calls by kind, through the real fetch transport. */
export function countingFactory(host: string): {
  factory: ClientFactory;
  calls: { bootstrap: number; secrets: number };
} {
  const calls = { bootstrap: 0, secrets: 0 };
  const factory: ClientFactory = (token, transport) => {
    const counted: Transport = (req, t) => {
      if (req.path.endsWith('/tokens/')) calls.bootstrap++;
      else calls.secrets++;
      return transport(req, t);
    };
    return new PhaseClient({ host, token, retries: 0, timeoutMs: 2000, transport: counted });
  };
  void fetchTransport;
  return { factory, calls };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET (or another method) against the agent with the client token unless headers override it. */
export function call(
  agent: AgentHandle,
  path: string,
  headers: Record<string, string | undefined> = {},
  method = 'GET',
): Promise<Reply> {
  const h: Record<string, string> = { [CLIENT_TOKEN_HEADER]: agent.clientToken };
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) delete h[k.toLowerCase()];
    else h[k] = v;
  }
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: agent.port, path, method, headers: h, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Polls until `fn` returns a truthy value or the timeout passes. */
export async function until<T>(
  fn: () => Promise<T> | T,
  timeoutMs = 10_000,
  stepMs = 50,
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(
        `condition not met within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : String(last)})`,
      );
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

// ---- the agent CLI in its own process (the built dist/, as users run it), for identity and rotation suites ----

/** The build the CLI suites run (`npm test` builds dist/ first; PHASE_BRIDGE_DIST to test another). */
export const DIST = process.env.PHASE_BRIDGE_DIST ?? resolve(__dirname, '../../dist');
export const CLI = join(DIST, 'bin/cli.js');
const LAUNCH = `require(${JSON.stringify(CLI)}).main(['node', 'phase-bridge', ...process.argv.slice(1)]).catch((e) => { process.stderr.write(String(e && e.message)); process.exit(1); })`;

export interface CliProcess {
  child: ChildProcess;
  out(): string;
  err(): string;
  exit: Promise<{ code: number | null; signal: string | null }>;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit. */
  stop(): Promise<{ code: number | null; signal: string | null }>;
}

/** Runs `phase-bridge <args>` from dist/ with a minimal environment plus `env`. */
export function spawnCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, ['-e', LAUNCH, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_PATH: process.env.NODE_PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (err += c));
  const exit = new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  return {
    child,
    out: () => out,
    err: () => err,
    exit,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        const r = await exit;
        clearTimeout(t);
        return r;
      }
      return exit;
    },
  };
}

/** The agent's JSON log lines (stderr), parsed. */
export function logLines(p: CliProcess): Array<Record<string, any>> {
  return p
    .err()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
}

/** GET against an agent on `port` with its client token. Never throws on a refused connection: status 0. */
export function agentGet(port: number, clientToken: string, path: string): Promise<Reply> {
  return new Promise((resolveReply) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { [CLIENT_TOKEN_HEADER]: clientToken }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolveReply({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', (e) => resolveReply({ status: 0, headers: {}, body: e.message }));
    req.end();
  });
}

/** `/v1/status` of an agent, parsed. */
export async function agentStatus(port: number, clientToken: string): Promise<any> {
  const r = await agentGet(port, clientToken, '/v1/status');
  if (r.status !== 200) throw new Error(`/v1/status answered ${r.status}: ${r.body}`);
  return JSON.parse(r.body);
}

/** Waits for the client token the agent writes into its data directory. */
export async function clientTokenOf(dataDir: string): Promise<string> {
  const file = join(dataDir, 'client-token');
  return until(() => (existsSync(file) ? readFileSync(file, 'utf8').trim() : ''), 15_000, 50);
}

/**
 * Kubernetes' atomic writer, as the kubelet updates a projected volume: the file is `<dir>/token -> ..data/token`,
 * `..data -> ..<stamp>`; an update writes a new `..<stamp>` directory and renames a new `..data` link over the old.
 */
export function projectedVolume(dir: string): { file: string; write(content: string): void } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let n = 0;
  const write = (content: string): void => {
    const stamp = `..${Date.now()}_${n++}`;
    mkdirSync(join(dir, stamp), { mode: 0o700 });
    writeFileSync(join(dir, stamp, 'token'), content, { mode: 0o600 });
    symlinkSync(stamp, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    if (!existsSync(join(dir, 'token'))) symlinkSync('..data/token', join(dir, 'token'));
  };
  return { file: join(dir, 'token'), write };
}

export interface SigningSts {
  url: string;
  /** The ARN answered for an access key id. */
  principals: Map<string, string>;
  /** The secret key of each access key id: the stand-in checks every signature as STS does. */
  secrets: Map<string, string>;
  /** Every request, with whether its SigV4 signature checked out. */
  seen: Array<{
    headers: Record<string, string | string[] | undefined>;
    body: string;
    signatureValid: boolean;
  }>;
  close(): Promise<void>;
}

/**
 * An STS stand-in on loopback that verifies SigV4 like STS (its own implementation, independent of the agent's):
 * it rebuilds the canonical request from what arrived (method, path, the signed headers as received, the body),
 * derives the signing key from the secret it knows for the access key, and answers GetCallerIdentity only when the
 * signature matches and the date is fresh.
 */
export async function startSigningSts(): Promise<SigningSts> {
  const principals = new Map<string, string>();
  const secrets = new Map<string, string>();
  const seen: SigningSts['seen'] = [];
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const mac = (k: Buffer | string, s: string) => createHmac('sha256', k).update(s).digest();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const auth = String(req.headers.authorization ?? '');
      const m =
        /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/sts\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
          auth,
        );
      let valid = false;
      if (m) {
        const [, key, day, region, signedHeaders, signature] = m;
        const date = String(req.headers['x-amz-date'] ?? '');
        const canonical = [
          req.method,
          (req.url ?? '/').split('?')[0],
          '',
          ...signedHeaders.split(';').map((h) => `${h}:${String(req.headers[h] ?? '').trim()}`),
          '',
          signedHeaders,
          sha(body),
        ].join('\n');
        const toSign = ['AWS4-HMAC-SHA256', date, `${day}/${region}/sts/aws4_request`, sha(canonical)].join(
          '\n',
        );
        const secret = secrets.get(key);
        const fresh =
          Math.abs(
            Date.parse(date.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z')) -
              Date.now(),
          ) < 300_000;
        if (secret && fresh && date.startsWith(day)) {
          const k = mac(mac(mac(mac(`AWS4${secret}`, day), region), 'sts'), 'aws4_request');
          valid = createHmac('sha256', k).update(toSign).digest('hex') === signature;
        }
      }
      seen.push({ headers: { ...req.headers }, body, signatureValid: valid });
      const arn = m ? principals.get(m[1]) : undefined;
      res.setHeader('Content-Type', 'text/xml');
      if (!valid || !arn || req.method !== 'POST' || body !== 'Action=GetCallerIdentity&Version=2011-06-15') {
        res.statusCode = 403;
        res.end('<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>');
        return;
      }
      res.end(
        `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>` +
          `<Arn>${arn}</Arn><UserId>AROAEXAMPLE:i-0abc</UserId><Account>123456789012</Account></GetCallerIdentityResult>` +
          `<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, principals, secrets, seen, close: () => new Promise((r) => server.close(() => r())) };
}

/** Audit events the server recorded for a token (a read through the agent is one, with the token's id). */
export async function auditedReads(srv: TestServer, tokenId: string): Promise<number> {
  const rows = await srv.server.store.db
    .selectFrom('audit_events')
    .select('id')
    .where('token_id', '=', tokenId)
    .where('event_type', '=', 'R')
    .execute();
  return rows.length;
}
