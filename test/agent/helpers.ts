/**
 * Test helpers: provision an app, a service account and secrets on the real server through the /v1 client, build
 * agent configs with short intervals, and make raw HTTP requests to an agent.
 */
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PhaseClient } from '../../core/client';
import { fetchTransport, type Transport } from '../../core/http';
import { buildConfig, type AgentConfig } from '../../agent/config';
import { createLogger } from '../../agent/logger';
import type { ClientFactory } from '../../agent/sync';
import { CLIENT_TOKEN_HEADER } from '../../agent/security';
import type { AgentHandle } from '../../agent/agent';

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
