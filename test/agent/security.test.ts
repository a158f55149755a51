/**
 * Local security and robustness of the agent's HTTP surface, against an agent synced from the real server:
 * client token, proxy headers, Host (DNS rebinding), Origin, methods, unix socket mode, and fuzzed requests.
 */
import fc from 'fast-check';
import { statSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startAgent, type AgentHandle } from '../../agent/agent';
import { startTestServer } from '../support/server';
import { call, provision, silent, testConfig } from './helpers';

type TestServer = Awaited<ReturnType<typeof startTestServer>>;

let srv: TestServer;
let agent: AgentHandle;
const VALUE = 'sup3r-s3cret-value';

beforeAll(async () => {
  srv = await startTestServer();
  const p = await provision(srv.url, srv.ownerToken, { Development: [{ key: 'KEY', value: VALUE }] });
  const cfg = testConfig({
    host: srv.url,
    token: p.token,
    scopes: [{ app: p.appName, env: 'Development' }],
    refreshInterval: '5s',
  });
  agent = await startAgent({ ...cfg, socket: join(cfg.dataDir, 'agent.sock') }, { logger: silent });
  await agent.engine.firstSync;
});

afterAll(async () => {
  await agent?.close();
  await srv?.close();
});

test('the client token file is 0640 and holds the token', () => {
  const file = agent.engine['cfg'].clientTokenFile as string;
  expect(statSync(file).mode & 0o777).toBe(0o640);
});

test('with the client token: 200; missing or wrong token: 403 without the value', async () => {
  expect((await call(agent, '/v1/secrets/KEY')).status).toBe(200);
  for (const token of [
    undefined,
    '',
    'x',
    agent.clientToken.slice(0, -1),
    agent.clientToken + 'a',
    agent.clientToken.toUpperCase(),
  ]) {
    const r = await call(agent, '/v1/secrets/KEY', { 'x-phase-agent-token': token });
    expect(r.status).toBe(403);
    expect(r.body).not.toContain(VALUE);
    expect(JSON.parse(r.body).error).toMatch(/client token/);
  }
  for (const path of ['/v1/secrets', '/v1/env', '/v1/status', '/readyz', '/metrics', '/v1/watch', '/nope']) {
    expect((await call(agent, path, { 'x-phase-agent-token': undefined })).status).toBe(403);
  }
  // /healthz is the one endpoint without the client token.
  const h = await call(agent, '/healthz', { 'x-phase-agent-token': undefined });
  expect(h.status).toBe(200);
});

test.each([
  ['X-Forwarded-For', '10.0.0.1'],
  ['Forwarded', 'for=10.0.0.1'],
  ['X-Forwarded-Host', 'evil.example'],
  ['X-Real-IP', '10.0.0.1'],
  ['Origin', 'https://evil.example'],
  ['Origin', 'null'],
  ['Host', 'evil.example'],
  ['Host', 'evil.example:8787'],
  ['Host', '127.0.0.1.nip.io'],
  ['Host', '10.0.0.5'],
])('%s: %s → 403, even with the right client token, even on /healthz', async (name, value) => {
  for (const path of ['/v1/secrets/KEY', '/healthz']) {
    const r = await call(agent, path, { [name]: value });
    expect(r.status).toBe(403);
    expect(r.body).not.toContain(VALUE);
  }
});

test('only GET: other methods get 405 with Allow: GET', async () => {
  for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE']) {
    const r = await call(agent, '/v1/secrets', {}, m);
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET');
  }
});

test('unknown or repeated query parameters are a 400', async () => {
  expect((await call(agent, '/v1/secrets?metadat=true')).status).toBe(400);
  expect((await call(agent, '/v1/secrets?scope=a&scope=b')).status).toBe(400);
  expect((await call(agent, '/v1/secrets?metadata=maybe')).status).toBe(400);
  expect((await call(agent, '/v1/status?x=1')).status).toBe(400);
});

test('unix socket: mode 0660, same checks', async () => {
  const sock = agent.socket as string;
  expect(statSync(sock).mode & 0o777).toBe(0o660);
  const get = (headers: Record<string, string>): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request({ socketPath: sock, path: '/v1/secrets/KEY', headers }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  const ok = await get({ Host: 'localhost', 'x-phase-agent-token': agent.clientToken });
  expect(ok).toEqual({ status: 200, body: VALUE });
  expect((await get({ Host: 'localhost' })).status).toBe(403);
});

/** Sends raw bytes and returns the status code of the first response (0 if the connection closed without one). */
function raw(bytes: string): Promise<number> {
  return new Promise((resolve) => {
    const s = connect(agent.port as number, '127.0.0.1');
    let buf = '';
    const t = setTimeout(() => s.destroy(), 2000);
    s.on('data', (c) => {
      buf += c.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
      if (m) {
        clearTimeout(t);
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(t);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
      resolve(m ? Number(m[1]) : 0);
    });
    s.write(bytes, 'latin1');
  });
}

test('header names in any case; a repeated Host or client token is refused (no first-one-wins)', async () => {
  const t = agent.clientToken;
  const get = (headers: string): Promise<number> =>
    raw(`GET /v1/secrets/KEY HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`);
  expect(await get(`hOsT: 127.0.0.1\r\nX-PHASE-AGENT-TOKEN: ${t}\r\n`)).toBe(200);
  // Each on both paths: the fast one (GET /v1/secrets/KEY) and Express (/v1/status).
  for (const path of ['/v1/secrets/KEY', '/v1/status']) {
    const req = (headers: string): Promise<number> =>
      raw(`GET ${path} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`);
    expect(await req(`Host: 127.0.0.1\r\nHost: evil.example\r\nx-phase-agent-token: ${t}\r\n`)).toBe(403);
    expect(await req(`Host: 127.0.0.1\r\nHost: 127.0.0.1\r\nx-phase-agent-token: ${t}\r\n`)).toBe(403);
    expect(await req(`Host: 127.0.0.1\r\nx-phase-agent-token: ${t}\r\nx-phase-agent-token: ${t}\r\n`)).toBe(
      403,
    );
    expect(await req(`Host: 127.0.0.1\r\nx-phase-agent-token: ${t}\r\nX-Forwarded-For: 10.0.0.1\r\n`)).toBe(
      403,
    );
    expect(await req(`Host: 127.0.0.1\r\nx-phase-agent-token: ${t}\r\norigin: null\r\n`)).toBe(403);
  }
});

test('If-None-Match in any case gives the 304 on the fast path and through Express', async () => {
  const first = await call(agent, '/v1/secrets/KEY');
  const etag = first.headers.etag as string;
  expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/); // a strong ETag: 27 base64url characters of SHA-256
  for (const path of [
    '/v1/secrets/KEY',
    '/v1/secrets/KEY?scope=' + encodeURIComponent(agent.engine.scopes[0].name),
  ]) {
    const status = await raw(
      `GET ${path} HTTP/1.1\r\nHost: localhost\r\nx-phase-agent-token: ${agent.clientToken}\r\nIF-NONE-MATCH: ${etag}\r\nConnection: close\r\n\r\n`,
    );
    expect(status).toBe(304);
  }
});

test('fuzzed paths, query strings and headers: never a 500, never a crash', async () => {
  const pathChars = fc.constantFrom(...'abcXYZ019/._~-%?&=;:@!$\'()*+,[]{}|\\^`"<>#'.split(''));
  const pathArb = fc.oneof(
    fc.string({ unit: pathChars, maxLength: 80 }).map((s) => `/${s}`),
    fc
      .constantFrom('/v1/secrets', '/v1/secrets/', '/v1/secrets/KEY', '/v1/env', '/v1/watch', '/v1/status')
      .chain((base) => fc.string({ unit: pathChars, maxLength: 60 }).map((s) => `${base}${s}`)),
    fc.constantFrom(
      '/v1/secrets/%',
      '/v1/secrets/%zz',
      '/v1/secrets/%00',
      '/v1/secrets/' + 'A'.repeat(5000),
      '/v1/env?format=%',
      '/v1/secrets?scope=%ff',
    ),
  );
  const headerName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/);
  const headerValue = fc.string({ unit: fc.constantFrom(...'abc 019;=,"\'/\\:-_'.split('')), maxLength: 40 });
  const extra = fc.array(fc.tuple(headerName, headerValue), { maxLength: 5 });
  const method = fc.constantFrom('GET', 'GET', 'GET', 'POST', 'HEAD', 'BREW', 'get');
  const withToken = fc.boolean();
  const statuses = new Set<number>();
  await fc.assert(
    fc.asyncProperty(method, pathArb, extra, withToken, async (m, path, headers, tok) => {
      const lines = [
        `${m} ${path} HTTP/1.1`,
        'Host: 127.0.0.1',
        ...(tok ? [`X-Phase-Agent-Token: ${agent.clientToken}`] : []),
        ...headers.map(([k, v]) => `${k}: ${v}`),
        'Connection: close',
        '',
        '',
      ];
      const status = await raw(lines.join('\r\n'));
      statuses.add(status);
      expect(status).not.toBe(500);
      expect(status).toBeGreaterThanOrEqual(200);
      expect(status).toBeLessThan(600);
    }),
    { numRuns: 300 },
  );
  // Garbage that is not HTTP at all.
  for (const junk of [
    '\x00\x01\x02\r\n\r\n',
    'GET\r\n\r\n',
    `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: ' + 'b'.repeat(70000) + '\r\n\r\n',
  ]) {
    const s = await raw(junk);
    expect(s === 0 || (s >= 400 && s < 500)).toBe(true);
  }
  // Still alive and serving.
  const ok = await call(agent, '/v1/secrets/KEY');
  expect(ok.status).toBe(200);
  expect(ok.body).toBe(VALUE);
  expect(statuses.has(500)).toBe(false);
});

test('TLS: with a certificate the agent serves HTTPS (the mode required beyond loopback)', async () => {
  const x509 = await import('@peculiar/x509');
  const { webcrypto } = await import('node:crypto');
  const { writeFileSync } = await import('node:fs');
  const https = await import('node:https');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=localhost',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const dir = agent.engine['cfg'].dataDir as string;
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  writeFileSync(certFile, cert.toString('pem'));
  writeFileSync(
    keyFile,
    `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`,
    { mode: 0o600 },
  );
  const base = agent.engine['cfg'];
  const tls = await startAgent(
    {
      ...base,
      socket: undefined,
      port: 0,
      tlsCert: certFile,
      tlsKey: keyFile,
      dataDir: dir,
      snapshot: false,
    },
    { logger: silent },
  );
  try {
    expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const body = await new Promise<{ status: number; body: string }>((resolveGet, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: tls.port,
          path: '/v1/secrets/KEY',
          ca: cert.toString('pem'),
          headers: { 'x-phase-agent-token': tls.clientToken },
          agent: false,
        },
        (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body: b }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(body).toEqual({ status: 200, body: VALUE });
  } finally {
    await tls.close();
  }
});
