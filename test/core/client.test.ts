/**
 * PhaseClient against a local node:http server on 127.0.0.1 that plays a misbehaving upstream (a stand-in for
 * Phase Cloud, not for phase-bridge's server): retries, Retry-After, timeouts, typed errors, URL mapping, headers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  ApiError,
  ClientConfigError,
  ConflictError,
  ForbiddenError,
  NetworkError,
  NotFoundError,
  RateLimitError,
  RequestValidationError,
  ResponseValidationError,
  UnauthorizedError,
} from '../../core/api-errors';
import { PhaseClient, resolveBaseUrls } from '../../core/client';
import { PhaseBridgeError, TokenFormatError } from '../../core/errors';
import type { HttpRequest } from '../../core/http';
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter } from '../../core/retry';
import { FIXTURES } from './fixtures';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
type Handler = (req: Seen, res: http.ServerResponse, n: number) => void;

/** A scripted upstream: `handler` gets every request with its 1-based ordinal. */
async function upstream(handler: Handler): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(s);
      handler(s, res, seen.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function json(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const BEARER = 'ab'.repeat(32);
const REST_TOKEN = `ServiceAccount ${BEARER}`;
const fast = { baseDelayMs: 5, maxDelayMs: 20 };
const APP = { id: 'a1', name: 'web', sseEnabled: true, createdAt: 'x', updatedAt: 'y', description: null };

function client(url: string, extra: Partial<ConstructorParameters<typeof PhaseClient>[0]> = {}): PhaseClient {
  return new PhaseClient({ host: url, token: REST_TOKEN, retry: fast, ...extra });
}

/** Errors must never carry the bearer value, however they are printed. */
function expectNoToken(err: unknown): void {
  const text = `${String(err)}\n${(err as Error).stack ?? ''}\n${inspect(err, { depth: 5 })}\n${JSON.stringify(err)}`;
  expect(text).not.toContain(BEARER);
}

async function caught(p: Promise<unknown>): Promise<PhaseBridgeError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PhaseBridgeError);
    expectNoToken(e);
    return e as PhaseBridgeError;
  }
  throw new Error('expected a rejection');
}

describe('URL mapping', () => {
  test('Phase Cloud console and API hosts map to the same pair', () => {
    for (const host of [
      undefined,
      'https://console.phase.dev',
      'https://console.phase.dev/',
      'https://api.phase.dev',
      'HTTPS://API.PHASE.DEV//',
    ]) {
      expect(resolveBaseUrls(host)).toEqual({
        e2e: 'https://console.phase.dev/service',
        api: 'https://api.phase.dev',
      });
    }
  });

  test('self-hosted hosts use /service and /service/public; apiHost overrides the public base', () => {
    expect(resolveBaseUrls('https://phase.example.com/')).toEqual({
      e2e: 'https://phase.example.com/service',
      api: 'https://phase.example.com/service/public',
    });
    expect(resolveBaseUrls('http://10.0.0.5:8080/phase')).toEqual({
      e2e: 'http://10.0.0.5:8080/phase/service',
      api: 'http://10.0.0.5:8080/phase/service/public',
    });
    expect(resolveBaseUrls('https://phase.example.com', 'https://api.example.com/')).toEqual({
      e2e: 'https://phase.example.com/service',
      api: 'https://api.example.com',
    });
  });

  test('bad hosts and bad tokens are typed errors', () => {
    for (const host of [
      'phase.example.com',
      'ftp://x.example',
      'https://u:p@x.example',
      'https://x.example/?a=1',
    ]) {
      expect(() => new PhaseClient({ host, token: REST_TOKEN })).toThrow(ClientConfigError);
    }
    expect(() => new PhaseClient({ token: 'nope' })).toThrow(TokenFormatError);
    expect(() => new PhaseClient({ token: REST_TOKEN, retries: -1 })).toThrow(ClientConfigError);
    expect(() => new PhaseClient({ token: REST_TOKEN, timeoutMs: 0 })).toThrow(ClientConfigError);
  });

  test('full URLs for Phase Cloud, with trailing slashes', async () => {
    const urls: string[] = [];
    const c = new PhaseClient({
      token: REST_TOKEN,
      transport: async (req: HttpRequest) => {
        urls.push(req.url);
        if (req.url.includes('/secrets/tokens/')) {
          return {
            status: 200,
            header: () => null,
            text: JSON.stringify({ wrapped_key_share: 'aa', organisation: { id: 'o', name: 'O' }, apps: [] }),
          };
        }
        const body = req.url.includes('/v1/secrets/') ? [] : { data: [] };
        return { status: 200, header: () => null, text: JSON.stringify(body) };
      },
    });
    await c.bootstrap();
    await c.listApps();
    await c.listEnvironments('app 1');
    await c.listSecrets({ appId: 'a', env: 'Production', key: 'API_KEY', path: '/x' });
    expect(urls).toEqual([
      'https://console.phase.dev/service/secrets/tokens/',
      'https://api.phase.dev/v1/apps/',
      'https://api.phase.dev/v1/environments/?app_id=app+1',
      'https://api.phase.dev/v1/secrets/?app_id=a&env=Production&key=API_KEY&path=%2Fx',
    ]);
  });

  test('self-hosted requests hit /service/secrets/... and /service/public/v1/...', async () => {
    const up = await upstream((req, res) => {
      if (req.url.startsWith('/service/secrets/tokens/')) {
        json(res, 200, { wrapped_key_share: 'aa', organisation: { id: 'o', name: 'O' }, apps: [] });
      } else json(res, 200, { data: [APP] });
    });
    try {
      const c = client(up.url + '/');
      await c.bootstrap();
      expect(await c.listApps()).toEqual([APP]);
      expect(up.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
        'GET /service/secrets/tokens/',
        'GET /service/public/v1/apps/',
      ]);
    } finally {
      await up.close();
    }
  });
});

describe('headers', () => {
  test.each([
    ['REST API token', REST_TOKEN, `Bearer ServiceAccount ${BEARER}`],
    [
      'REST API token with Bearer prefix',
      `Bearer ServiceAccount ${BEARER}`,
      `Bearer ServiceAccount ${BEARER}`,
    ],
    [
      'service-account pss token',
      FIXTURES.serviceAccount.token,
      `Bearer ServiceAccount ${FIXTURES.serviceAccount.expected.bearer}`,
    ],
    ['personal access token', FIXTURES.pat.token, `Bearer User ${FIXTURES.pat.expected.bearer}`],
  ])('Authorization for a %s is exact', async (_name, token, header) => {
    const up = await upstream((_req, res) => json(res, 200, { data: [] }));
    try {
      await new PhaseClient({ host: up.url, token }).listApps();
      expect(up.seen[0].headers.authorization).toBe(header);
      expect(up.seen[0].headers.accept).toBe('application/json');
      expect(up.seen[0].headers['user-agent']).toMatch(/^phase-bridge\//);
    } finally {
      await up.close();
    }
  });

  test('E2E list sends Environment, Path, KeyDigest and Tags and normalises both casings', async () => {
    const snake = {
      id: 's1',
      key: 'ph:v1:k',
      value: 'ph:v1:v',
      comment: '',
      tags: ['a'],
      override: { id: 'o1', value: 'ph:v1:o', is_active: true, created_at: 't', updated_at: 't' },
      type: 'secret',
      lifecycle: 'static',
      path: '/',
      key_digest: 'd1',
      version: 2,
      created_at: 'c',
      updated_at: 'u',
      environment: 'e1',
      folder: null,
      extra_field: 1,
    };
    const camel = {
      id: 's2',
      key: 'ph:v1:k2',
      value: 'ph:v1:v2',
      comment: 'ph:v1:c',
      tags: [],
      keyDigest: 'd2',
      override: null,
    };
    const dynamic = { id: 'dyn', name: 'db', type: 'dynamic', key_map: [] };
    const up = await upstream((_req, res) => json(res, 200, [snake, camel, dynamic]));
    try {
      const c = client(up.url, { userAgent: 'my-agent/1' });
      const list = await c.listEncryptedSecrets('e1', { path: '/api', keyDigest: 'd1', tags: ['a', 'b'] });
      const h = up.seen[0].headers;
      expect([h.environment, h.path, h.keydigest, h.tags, h['user-agent']]).toEqual([
        'e1',
        '/api',
        'd1',
        'a,b',
        'my-agent/1',
      ]);
      expect(list).toHaveLength(2);
      expect(list[0]).toMatchObject({
        id: 's1',
        keyDigest: 'd1',
        version: 2,
        override: { isActive: true, value: 'ph:v1:o' },
      });
      expect(list[0]).not.toHaveProperty('extra_field');
      expect(list[1]).toMatchObject({
        id: 's2',
        keyDigest: 'd2',
        comment: 'ph:v1:c',
        path: '/',
        type: 'secret',
        override: null,
      });
    } finally {
      await up.close();
    }
  });

  test('E2E writes send the Environment header and a JSON body and accept an empty 200', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200);
      res.end();
    });
    try {
      const c = client(up.url);
      await c.createEncryptedSecrets('e1', [
        { key: 'ph:v1:k', keyDigest: 'd', value: 'ph:v1:v', comment: '' },
      ]);
      await c.deleteEncryptedSecrets('e1', ['s1']);
      expect(up.seen[0]).toMatchObject({ method: 'POST', url: '/service/secrets/' });
      expect(up.seen[0].headers['content-type']).toBe('application/json');
      expect(JSON.parse(up.seen[0].body)).toEqual({
        secrets: [{ key: 'ph:v1:k', keyDigest: 'd', value: 'ph:v1:v', comment: '' }],
      });
      expect(up.seen[1].method).toBe('DELETE');
      expect(JSON.parse(up.seen[1].body)).toEqual({ secrets: ['s1'] });
    } finally {
      await up.close();
    }
  });

  test('a client never shows its token when printed', () => {
    const c = new PhaseClient({ token: FIXTURES.serviceAccount.token });
    const text = `${inspect(c, { depth: 10 })}${JSON.stringify(c)}${String(c)}`;
    expect(text).not.toContain(FIXTURES.serviceAccount.expected.bearer);
    expect(text).not.toContain(FIXTURES.serviceAccount.token.split(':')[4]);
  });
});

describe('retries', () => {
  test('503 is retried until success', async () => {
    const up = await upstream((_req, res, n) =>
      n < 3 ? json(res, 503, { error: 'down' }) : json(res, 200, { data: [APP] }),
    );
    try {
      const retries: number[] = [];
      const c = client(up.url, { onRetry: (e) => retries.push(e.attempt) });
      expect(await c.listApps()).toHaveLength(1);
      expect(up.seen).toHaveLength(3);
      expect(retries).toEqual([1, 2]);
    } finally {
      await up.close();
    }
  });

  test('429 honours Retry-After seconds', async () => {
    const up = await upstream((_req, res, n) =>
      n === 1
        ? json(
            res,
            429,
            { error: 'Request was throttled. Expected available in 1 second.' },
            { 'Retry-After': '1' },
          )
        : json(res, 200, { data: [] }),
    );
    try {
      const t0 = Date.now();
      await client(up.url).listApps();
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
      expect(up.seen).toHaveLength(2);
    } finally {
      await up.close();
    }
  });

  test('429 and 503 are retried for POST too; Retry-After as an HTTP date is honoured', async () => {
    const up = await upstream((_req, res, n) => {
      if (n === 1)
        json(res, 429, { error: 'slow down' }, { 'Retry-After': new Date(Date.now() + 2000).toUTCString() });
      else if (n === 2) json(res, 503, { error: 'maintenance' }, { 'Retry-After': '0' });
      else json(res, 201, { ...APP, environments: [] });
    });
    try {
      const t0 = Date.now();
      const app = await client(up.url).createApp({ name: 'web' });
      // HTTP dates have one-second resolution: the wait is at least the whole seconds left.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(app.id).toBe('a1');
      expect(up.seen.map((s) => s.method)).toEqual(['POST', 'POST', 'POST']);
    } finally {
      await up.close();
    }
  });

  test('POST is not retried on 500 or 502 (it may have been applied); PUT and DELETE are', async () => {
    const up = await upstream((req, res, n) => {
      if (req.method === 'POST') return json(res, 502, { error: 'bad gateway' });
      if (n % 2 === 0) return json(res, 500, { error: 'boom' });
      return req.method === 'DELETE' ? (res.writeHead(204), res.end()) : json(res, 200, APP);
    });
    try {
      const c = client(up.url);
      const e = await caught(c.createApp({ name: 'x' }));
      expect(e).toBeInstanceOf(ApiError);
      expect((e as ApiError).status).toBe(502);
      expect(up.seen).toHaveLength(1);
      await c.updateApp('a1', { name: 'y' }); // request 2 fails with 500, request 3 succeeds
      await c.deleteApp('a1'); // 4 fails, 5 succeeds
      expect(up.seen.map((s) => `${s.method}`)).toEqual(['POST', 'PUT', 'PUT', 'DELETE', 'DELETE']);
    } finally {
      await up.close();
    }
  });

  test.each([
    [400, ApiError, 'bad_request'],
    [401, UnauthorizedError, 'unauthorized'],
    [403, ForbiddenError, 'forbidden'],
    [404, NotFoundError, 'not_found'],
    [409, ConflictError, 'conflict'],
  ])('HTTP %i is never retried and becomes a typed error', async (status, cls, kind) => {
    const up = await upstream((_req, res) => json(res, status, { error: `server says ${status}` }));
    try {
      const e = (await caught(client(up.url).listApps())) as ApiError;
      expect(e).toBeInstanceOf(cls);
      expect(e.kind).toBe(kind);
      expect(e.status).toBe(status);
      expect(e.phaseError).toBe(`server says ${status}`);
      expect(e.method).toBe('GET');
      expect(e.path).toBe('/service/public/v1/apps/');
      expect(e.message).toContain(`server says ${status}`);
      expect(up.seen).toHaveLength(1);
    } finally {
      await up.close();
    }
  });

  test('error text falls back to detail, then to the raw body truncated to 200 characters', async () => {
    const long = 'x'.repeat(500);
    const up = await upstream((_req, res, n) => {
      if (n === 1) json(res, 400, { detail: 'from detail' });
      else {
        res.writeHead(418, { 'content-type': 'text/plain' });
        res.end(long);
      }
    });
    try {
      const c = client(up.url);
      expect(((await caught(c.listApps())) as ApiError).phaseError).toBe('from detail');
      const e = (await caught(c.listApps())) as ApiError;
      expect(e.kind).toBe('other');
      expect(e.phaseError).toBe('x'.repeat(200) + '…');
    } finally {
      await up.close();
    }
  });

  test('an upstream echoing the Authorization header back does not leak the token into the error', async () => {
    const up = await upstream((req, res) =>
      json(res, 400, { error: `bad header: ${req.headers.authorization}` }),
    );
    try {
      const e = (await caught(client(up.url).listApps())) as ApiError;
      expect(e.phaseError).toBe('bad header: Bearer ServiceAccount [redacted]');
    } finally {
      await up.close();
    }
  });

  test('retries run out: the last 429 surfaces as RateLimitError with retryAfterMs', async () => {
    const up = await upstream((_req, res) => json(res, 429, { error: 'throttled' }, { 'Retry-After': '0' }));
    try {
      const e = (await caught(client(up.url, { retries: 2 }).listApps())) as RateLimitError;
      expect(e).toBeInstanceOf(RateLimitError);
      expect(e.retryAfterMs).toBe(0);
      expect(up.seen).toHaveLength(3);
    } finally {
      await up.close();
    }
  });

  test('Retry-After parsing and full-jitter backoff bounds', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:05 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(backoffDelay(0, DEFAULT_RETRY, () => 0.999)).toBeLessThan(DEFAULT_RETRY.baseDelayMs);
    expect(backoffDelay(3, DEFAULT_RETRY, () => 0.5)).toBe(1000);
    expect(backoffDelay(30, DEFAULT_RETRY, () => 0.999)).toBeLessThan(DEFAULT_RETRY.maxDelayMs);
    expect(backoffDelay(5, DEFAULT_RETRY, () => 0)).toBe(0);
  });

  test('a long Retry-After is capped by maxRetryAfterMs', async () => {
    const up = await upstream((_req, res, n) =>
      n === 1 ? json(res, 503, { error: 'x' }, { 'Retry-After': '3600' }) : json(res, 200, { data: [] }),
    );
    try {
      const delays: number[] = [];
      const c = client(up.url, {
        retry: { ...fast, maxRetryAfterMs: 50 },
        onRetry: (e) => delays.push(e.delayMs),
      });
      await c.listApps();
      expect(delays).toEqual([50]);
    } finally {
      await up.close();
    }
  });
});

describe('network errors and validation', () => {
  test('a silent upstream times out as NetworkError(timeout), once per attempt', async () => {
    const up = await upstream(() => {
      /* never answers */
    });
    try {
      const t0 = Date.now();
      const e = (await caught(client(up.url, { timeoutMs: 150, retries: 1 }).listApps())) as NetworkError;
      expect(e).toBeInstanceOf(NetworkError);
      expect(e.kind).toBe('timeout');
      expect(e.code).toBe('network_timeout');
      expect(up.seen).toHaveLength(2);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    } finally {
      await up.close();
    }
  });

  test('a body that stalls after the headers also times out', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data":');
    });
    try {
      const e = (await caught(client(up.url, { timeoutMs: 150, retries: 0 }).listApps())) as NetworkError;
      expect(e.kind).toBe('timeout');
    } finally {
      await up.close();
    }
  });

  test('a refused connection is NetworkError(connection), retried even for POST (never sent)', async () => {
    const up = await upstream(() => undefined);
    const url = up.url;
    await up.close();
    const attempts: string[] = [];
    const e = (await caught(
      client(url, { retries: 2, onRetry: (r) => attempts.push(r.reason) }).createApp({ name: 'x' }),
    )) as NetworkError;
    expect(e.kind).toBe('connection');
    expect(e.beforeSend).toBe(true);
    expect(attempts).toEqual(['network_connection', 'network_connection']);
  });

  test('an unresolvable host is NetworkError(dns)', async () => {
    const e = (await caught(
      client('http://phase-bridge-test.invalid', { retries: 0 }).listApps(),
    )) as NetworkError;
    expect(e.kind).toBe('dns');
  });

  test('a reset connection during POST is not retried (it may have been applied); GET is', async () => {
    const server = await upstreamDestroying();
    try {
      const e = (await caught(client(server.url, { retries: 3 }).createApp({ name: 'x' }))) as NetworkError;
      expect(e.kind).toBe('connection');
      expect(e.beforeSend).toBe(false);
      expect(server.count()).toBe(1);
      const e2 = (await caught(client(server.url, { retries: 2 }).listApps())) as NetworkError;
      expect(e2.kind).toBe('connection');
      expect(server.count()).toBe(4);
    } finally {
      await server.close();
    }
  });

  test('a body of the wrong shape is ResponseValidationError naming fields, not values', async () => {
    const up = await upstream((_req, res, n) => {
      if (n === 1) json(res, 200, { data: [{ id: 'a1', name: 42, sseEnabled: 'very-secret-value' }] });
      else {
        res.writeHead(200);
        res.end('<html>not json</html>');
      }
    });
    try {
      const c = client(up.url);
      const e = (await caught(c.listApps())) as ResponseValidationError;
      expect(e).toBeInstanceOf(ResponseValidationError);
      expect(e.issues).toEqual(['data.0.name: invalid_type', 'data.0.sseEnabled: invalid_type']);
      expect(e.message).not.toContain('very-secret-value');
      const e2 = (await caught(c.listApps())) as ResponseValidationError;
      expect(e2.issues).toEqual(['body is not JSON']);
      expect(up.seen).toHaveLength(2); // a validation failure is not retried
    } finally {
      await up.close();
    }
  });

  test('request bodies the client checks fail locally before any request', async () => {
    const up = await upstream((_req, res) => json(res, 200, {}));
    try {
      const c = client(up.url);
      const e1 = (await caught(c.serviceAccounts.createToken('sa', { name: '' }))) as RequestValidationError;
      expect(e1).toBeInstanceOf(RequestValidationError);
      expect(e1.issues).toEqual(['name: too_small']);
      const e2 = (await caught(
        c.serviceAccounts.createToken('sa', { name: 't', expiry: 5 } as unknown as { name: string }),
      )) as RequestValidationError;
      expect(e2.issues).toEqual(['(root): unrecognized_keys']);
      const e4 = (await caught(
        c.listEncryptedSecrets('env', { path: '/ünï\r\nX-Evil: 1' }),
      )) as RequestValidationError;
      expect(e4.issues).toEqual(['Path: only printable ASCII is allowed']);
      const e3 = await caught(
        c.serviceAccounts.setAccess('sa', [{ id: 'app', environments: 'prod' as unknown as string[] }]),
      );
      expect(e3).toBeInstanceOf(RequestValidationError);
      expect(up.seen).toHaveLength(0);
    } finally {
      await up.close();
    }
  });
});

/** A server that destroys every connection after reading the request. */
async function upstreamDestroying(): Promise<{ url: string; count(): number; close(): Promise<void> }> {
  let n = 0;
  const server = http.createServer((req) => {
    req.resume();
    req.on('end', () => {
      n++;
      req.socket.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    count: () => n,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('TLS', () => {
  let dir: string;
  let server: https.Server;
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pb-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    server = https.createServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (req, res) => {
        req.resume();
        req.on('end', () => json(res, 200, { data: [APP] }));
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('a self-signed certificate fails as NetworkError(tls) and is not retried', async () => {
    const retried: string[] = [];
    const e = (await caught(
      client(url, { retries: 2, onRetry: (r) => retried.push(r.reason) }).listApps(),
    )) as NetworkError;
    expect(e.kind).toBe('tls');
    expect(retried).toEqual([]);
  });

  test('skipTlsVerification accepts it (node:https transport)', async () => {
    expect(await client(url, { skipTlsVerification: true }).listApps()).toEqual([APP]);
  });
});
