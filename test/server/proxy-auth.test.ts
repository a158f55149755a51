/**
 * Issue 11, "Paths and headers": the `Authorization` header is parsed strictly (nothing after the token; a whole
 * pss token in the bearer slot is refused with the header to send instead), and `--trusted-proxy <ip|cidr>`
 * decides whose `X-Forwarded-For` / `X-Real-IP` are believed for network policies (§6) and the anonymous
 * rate-limit key (§7). Against the real server; SQLite is enough (nothing here touches the store's dialect).
 */
import { Command } from 'commander';
import type { Request } from 'express';
import { initCrypto } from '../../core/crypto';
import { parsePssToken } from '../../core/token';
import { createServer } from '../../server/app';
import { register, TRUST_PROXY_REPLACED } from '../../server/cli';
import { parseTrustedProxies } from '../../server/config';
import { clientIp, trustedProxies } from '../../server/network';
import { startTestServer, type TestServer } from '../support/server';
import { caller, createSa, type Call } from './helpers';

/** A request with an explicit Authorization header (the helpers' caller always sends a well-formed one). */
async function rawAuth(
  srv: TestServer,
  path: string,
  authorization: string,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${srv.url}${path}`, { headers: { Authorization: authorization, ...headers } });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

describe('Authorization is parsed strictly', () => {
  let srv: TestServer;
  let owner: Call;
  let saToken: string;

  beforeAll(async () => {
    await initCrypto();
    srv = await startTestServer({ store: 'sqlite' });
    owner = caller(srv, srv.ownerToken);
    saToken = (await createSa(owner, 'strict-auth-bot')).token;
  });
  afterAll(async () => {
    await srv?.close();
  });

  test('the well-formed header works (control)', async () => {
    const sa = parsePssToken(saToken);
    const user = parsePssToken(srv.ownerToken);
    expect((await rawAuth(srv, '/v1/apps/', `Bearer ServiceAccount ${sa.bearer}`)).status).toBe(200);
    expect((await rawAuth(srv, '/v1/apps/', `bearer User ${user.bearer}`)).status).toBe(200);
    expect(
      (await rawAuth(srv, '/service/secrets/tokens/', `Bearer ServiceAccount ${sa.bearer}`)).status,
    ).toBe(200);
  });

  test('anything after the token is a 401 (403 on /secrets/tokens/), never a pass', async () => {
    const sa = parsePssToken(saToken);
    const user = parsePssToken(srv.ownerToken);
    for (const auth of [
      `Bearer ServiceAccount ${sa.bearer} extra`,
      `Bearer ServiceAccount ${sa.bearer} ${sa.bearer}`,
      `Bearer User ${user.bearer} x`,
      `Bearer ServiceAccount ${sa.bearer} ServiceAccount ${sa.bearer}`,
    ]) {
      const v1 = await rawAuth(srv, '/v1/apps/', auth);
      expect([auth.slice(-8), v1.status]).toEqual([auth.slice(-8), 401]);
      expect(v1.body).toEqual({
        error:
          'Authorization must be exactly "Bearer <User|Service|ServiceAccount> <token>", with nothing after the token.',
      });
      expect(v1.text).not.toContain(sa.bearer);
      expect(v1.text).not.toContain(user.bearer);
      const e2e = await rawAuth(srv, '/service/secrets/', auth, {
        Environment: '00000000-0000-4000-8000-000000000000',
      });
      expect(e2e.status).toBe(401);
      expect((await rawAuth(srv, '/service/secrets/tokens/', auth)).status).toBe(403);
    }
  });

  test('a whole pss token where the bearer value belongs: 401 naming the header to send, token not echoed', async () => {
    const sa = parsePssToken(saToken);
    const user = parsePssToken(srv.ownerToken);
    const saHint =
      'Authorization carries a whole pss_service:v2 token; send only its bearer value, the third colon-separated ' +
      'field (64 hex characters), as "Bearer ServiceAccount <bearer value>".';
    const userHint =
      'Authorization carries a whole pss_user:v1 token; send only its bearer value, the third colon-separated ' +
      'field (64 hex characters), as "Bearer User <bearer value>".';
    const cases: Array<[string, string, string[]]> = [
      [`Bearer ServiceAccount ${saToken}`, saHint, [sa.bearer, sa.publicKey, sa.keyShare, sa.wrapKey]],
      [`Bearer ${saToken}`, saHint, [sa.bearer, sa.publicKey, sa.keyShare, sa.wrapKey]],
      [`Bearer User ${saToken}`, saHint, [sa.bearer, sa.publicKey, sa.keyShare, sa.wrapKey]],
      [saToken, saHint, [sa.bearer, sa.publicKey, sa.keyShare, sa.wrapKey]],
      [`Bearer User ${srv.ownerToken}`, userHint, [user.bearer, user.publicKey, user.keyShare, user.wrapKey]],
    ];
    for (const [auth, hint, secrets] of cases) {
      for (const path of ['/v1/apps/', '/service/secrets/']) {
        const r = await rawAuth(srv, path, auth, { Environment: '00000000-0000-4000-8000-000000000000' });
        expect([path, r.status, r.body]).toEqual([path, 401, { error: hint }]);
        for (const s of secrets) expect(r.text).not.toContain(s);
      }
    }
  });
});

/** An account whose network policy is set per probe: "is the client seen as `ip`?" = does a policy of [ip] pass. */
async function policyProbe(srv: TestServer) {
  const owner = caller(srv, srv.ownerToken);
  const dev = await srv.addMember('Developer');
  const policy = await owner('POST', '/v1/network-policies/', { name: 'probe', allowed_ips: ['192.0.2.1'] });
  expect(policy.status).toBe(201);
  const at = await owner('PUT', `/v1/network-policies/${policy.body.id}/attachments/`, {
    account_type: 'member',
    account_id: dev.id,
  });
  expect(at.status).toBe(200);
  const devc = caller(srv, dev.token);
  return async (allowed: string, headers: Record<string, string>): Promise<number> => {
    const u = await owner('PUT', `/v1/network-policies/${policy.body.id}/`, { allowed_ips: [allowed] });
    expect(u.status).toBe(200);
    return (await devc('GET', '/v1/apps/', undefined, headers)).status;
  };
}

describe('--trusted-proxy: network policies', () => {
  const servers: TestServer[] = [];
  const start = async (trusted: string[]) => {
    const s = await startTestServer({ store: 'sqlite', trustedProxies: trusted });
    servers.push(s);
    return policyProbe(s);
  };
  beforeAll(async () => {
    await initCrypto();
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  test('from a peer that is not a listed proxy, X-Forwarded-For and X-Real-IP are ignored', async () => {
    // The test client is 127.0.0.1; only 10.0.0.0/8 is trusted.
    const seen = await start(['10.0.0.0/8']);
    const cases: Array<Record<string, string>> = [
      { 'X-Forwarded-For': '6.6.6.6' },
      { 'X-Forwarded-For': '6.6.6.6, 10.0.0.5' },
      { 'X-Real-IP': '6.6.6.6' },
      { 'X-Real-IP': '6.6.6.6', 'X-Forwarded-For': '6.6.6.6' },
    ];
    for (const headers of cases) {
      const what = JSON.stringify(headers);
      expect([what, await seen('6.6.6.6', headers)]).toEqual([what, 403]);
      expect([what, await seen('127.0.0.1', headers)]).toEqual([what, 200]);
    }
  });

  test('from a listed proxy, the rightmost X-Forwarded-For address that is not a trusted proxy is the client', async () => {
    const both = await start(['127.0.0.1', '10.0.0.0/8']);
    const xff = { 'X-Forwarded-For': '6.6.6.6, 10.0.0.5' };
    expect(await both('6.6.6.6', xff)).toBe(200);
    expect(await both('10.0.0.5', xff)).toBe(403);
    expect(await both('127.0.0.1', xff)).toBe(403);
    // Every entry trusted: the leftmost one (what proxy-addr answers).
    expect(await both('10.0.0.9', { 'X-Forwarded-For': '10.0.0.9, 10.0.0.5' })).toBe(200);

    const loopbackOnly = await start(['127.0.0.1']);
    expect(await loopbackOnly('10.0.0.5', xff)).toBe(200);
    expect(await loopbackOnly('6.6.6.6', xff)).toBe(403);
    // A client-chosen leftmost entry does not bypass the policy.
    expect(await loopbackOnly('6.6.6.6', { 'X-Forwarded-For': '6.6.6.6, 203.0.113.9' })).toBe(403);
    // IPv6 entries and IPv4-mapped addresses are normalised.
    expect(await loopbackOnly('2001:db8::1', { 'X-Forwarded-For': '2001:db8::1' })).toBe(200);
    expect(await loopbackOnly('203.0.113.9', { 'X-Forwarded-For': '::ffff:203.0.113.9' })).toBe(200);
    // No forwarding headers: the proxy itself is the client.
    expect(await loopbackOnly('127.0.0.1', {})).toBe(200);
  });

  test('from a listed proxy, an entry with the port the proxy saw is the address without it', async () => {
    const seen = await start(['127.0.0.1', '10.0.0.0/8']);
    expect(await seen('6.6.6.6', { 'X-Forwarded-For': '6.6.6.6:51234' })).toBe(200);
    expect(await seen('2001:db8::7', { 'X-Forwarded-For': '[2001:db8::7]:443' })).toBe(200);
    // The walk still skips trusted proxies, with or without ports.
    expect(await seen('6.6.6.6', { 'X-Forwarded-For': '6.6.6.6:1, 10.0.0.5:8080' })).toBe(200);
    expect(await seen('10.0.0.5', { 'X-Forwarded-For': '6.6.6.6:1, 10.0.0.5:8080' })).toBe(403);
    expect(await seen('6.6.6.6', { 'X-Real-IP': '6.6.6.6:9' })).toBe(200);
    expect(await seen('2001:db8::7', { 'X-Forwarded-For': '[2001:db8::7]' })).toBe(200);
    // Not an address with a port: matches nothing, as before.
    for (const bad of [
      '6.6.6.6:',
      '6.6.6.6:65536',
      '6.6.6.6:123456',
      '2001:db8::7:443x',
      '[6.6.6.6]:1x',
      'a.b:1',
    ]) {
      expect([bad, await seen('127.0.0.1', { 'X-Forwarded-For': bad })]).toEqual([bad, 403]);
      expect([bad, await seen('6.6.6.6', { 'X-Forwarded-For': bad })]).toEqual([bad, 403]);
    }
  });

  test('from a listed proxy, X-Real-IP is believed when there is no X-Forwarded-For; garbage matches nothing', async () => {
    const seen = await start(['127.0.0.1']);
    expect(await seen('6.6.6.6', { 'X-Real-IP': '6.6.6.6' })).toBe(200);
    expect(await seen('127.0.0.1', { 'X-Real-IP': '6.6.6.6' })).toBe(403);
    // X-Forwarded-For wins: a proxy that appends to it need not scrub a client's X-Real-IP.
    expect(await seen('6.6.6.6', { 'X-Real-IP': '6.6.6.6', 'X-Forwarded-For': '10.0.0.5' })).toBe(403);
    expect(await seen('10.0.0.5', { 'X-Real-IP': '6.6.6.6', 'X-Forwarded-For': '10.0.0.5' })).toBe(200);
    // Not an address: no policy matches it (and it is not the proxy's address either).
    expect(await seen('127.0.0.1', { 'X-Forwarded-For': 'not-an-ip' })).toBe(403);
    expect(await seen('127.0.0.1', { 'X-Real-IP': 'not-an-ip' })).toBe(403);
  });
});

describe('--trusted-proxy: the anonymous rate-limit key on /secrets/tokens/', () => {
  const bad = `Bearer ServiceAccount ${'ab'.repeat(32)}`;
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });
  const statuses = async (srv: TestServer, headers: Array<Record<string, string>>) => {
    const out: number[] = [];
    for (const h of headers) out.push((await rawAuth(srv, '/service/secrets/tokens/', bad, h)).status);
    return out;
  };

  test('spoofed headers from an untrusted peer do not buy fresh buckets', async () => {
    const srv = await startTestServer({ store: 'sqlite', rateLimit: '2/m', trustedProxies: ['10.0.0.0/8'] });
    servers.push(srv);
    const spoofed = [1, 2, 3, 4].map((i): Record<string, string> =>
      i % 2 ? { 'X-Forwarded-For': `198.51.100.${i}` } : { 'X-Real-IP': `198.51.100.${i}` },
    );
    expect(await statuses(srv, spoofed)).toEqual([403, 403, 429, 429]);
  });

  test('behind a listed proxy each forwarded client has its own bucket', async () => {
    const srv = await startTestServer({ store: 'sqlite', rateLimit: '2/m', trustedProxies: ['127.0.0.1'] });
    servers.push(srv);
    // The client is the rightmost entry; a client-chosen leftmost entry does not buy a fresh bucket.
    const a = (spoof: number) => ({ 'X-Forwarded-For': `203.0.113.${spoof}, 198.51.100.1` });
    const b = { 'X-Real-IP': '198.51.100.2' };
    expect(await statuses(srv, [a(1), a(2), b, b, a(3)])).toEqual([403, 403, 403, 403, 429]);
  });
});

describe('--trusted-proxy: configuration', () => {
  test('parseTrustedProxies accepts addresses and CIDR ranges and names a bad entry', () => {
    expect(parseTrustedProxies(['127.0.0.1', ' 10.0.0.0/8 ', '::1', 'fd00::/8', '::ffff:10.1.2.3'])).toEqual([
      '127.0.0.1',
      '10.0.0.0/8',
      '::1',
      'fd00::/8',
      '::ffff:10.1.2.3',
    ]);
    expect(parseTrustedProxies(undefined)).toEqual([]);
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'localhost', '10.0.0', '10.0.0.0/', '10.0.0.0/8/8', '']) {
      expect(() => parseTrustedProxies(['127.0.0.1', bad])).toThrow(
        `--trusted-proxy '${bad}' must be an IP address or a CIDR range like 10.0.0.0/8 or fd00::/8`,
      );
    }
    expect(() => parseTrustedProxies('127.0.0.1')).toThrow('--trusted-proxy must be a list of strings');
  });

  test('createServer refuses an invalid entry', async () => {
    // Refused before the store is opened: this database path does not exist.
    const config = {
      database: 'sqlite:/nonexistent/phase-bridge/phase.db',
      serverSecret: 'ab'.repeat(32),
      logLevel: 'silent',
      trustedProxies: ['10.0.0.0/40'],
    };
    await expect(createServer(config)).rejects.toThrow(
      "--trusted-proxy '10.0.0.0/40' must be an IP address or a CIDR range",
    );
  });

  test('clientIp walks X-Forwarded-For from the right over trusted hops', () => {
    const req = (peer: string, headers: Record<string, string | string[]>) =>
      ({ socket: { remoteAddress: peer }, headers }) as unknown as Request;
    const t = trustedProxies(['127.0.0.1', '10.0.0.0/8']);
    expect(clientIp(req('::ffff:127.0.0.1', { 'x-forwarded-for': '6.6.6.6, 10.0.0.5' }), t)).toBe('6.6.6.6');
    expect(
      clientIp(req('127.0.0.1', { 'x-forwarded-for': '6.6.6.6, 10.0.0.5' }), trustedProxies(['127.0.0.1'])),
    ).toBe('10.0.0.5');
    expect(clientIp(req('192.0.2.1', { 'x-forwarded-for': '6.6.6.6', 'x-real-ip': '6.6.6.6' }), t)).toBe(
      '192.0.2.1',
    );
    expect(
      clientIp(req('127.0.0.1', { 'x-forwarded-for': '6.6.6.6', 'x-real-ip': '6.6.6.6' }), undefined),
    ).toBe('127.0.0.1');
    // Node joins repeated X-Forwarded-For lines; a proxy's appended line stays rightmost.
    expect(clientIp(req('127.0.0.1', { 'x-forwarded-for': '6.6.6.6, , 10.0.0.5,7.7.7.7' }), t)).toBe(
      '7.7.7.7',
    );
    // Repeated X-Real-IP lines are joined too: not an address.
    expect(clientIp(req('127.0.0.1', { 'x-real-ip': '6.6.6.6, 7.7.7.7' }), t)).toBe('');
    expect(clientIp(req('127.0.0.1', {}), t)).toBe('127.0.0.1');
    expect(clientIp(req('127.0.0.1', { 'x-forwarded-for': '' }), t)).toBe('127.0.0.1');
  });

  describe('server start flags', () => {
    const startCommand = (program: Command) =>
      program.commands.find((c) => c.name() === 'server')!.commands.find((c) => c.name() === 'start')!;
    const run = async (args: string[]) => {
      const program = new Command();
      program.exitOverride();
      register(program);
      const err = await program.parseAsync(['node', 'phase-bridge', 'server', 'start', ...args]).then(
        () => undefined,
        (e: Error) => e,
      );
      return { err, opts: startCommand(program).opts() };
    };

    test('--trusted-proxy is repeatable (and takes a comma list); a bad entry is refused before anything starts', async () => {
      // An out-of-range --port stops the action right after the proxies are validated, before any store or key.
      const ok = await run([
        '--trusted-proxy',
        '127.0.0.1',
        '--trusted-proxy',
        '10.0.0.0/8,::1',
        '--port',
        '99999',
      ]);
      expect(ok.opts.trustedProxy).toEqual(['127.0.0.1', '10.0.0.0/8', '::1']);
      expect(ok.err?.message).toBe('--port must be 0-65535, got 99999');
      const none = await run(['--port', '99999']);
      expect(none.opts.trustedProxy).toEqual([]);
      const bad = await run(['--trusted-proxy', '127.0.0.1', '--trusted-proxy', '10.0.0.0/33']);
      expect(bad.err?.message).toBe(
        "--trusted-proxy '10.0.0.0/33' must be an IP address or a CIDR range like 10.0.0.0/8 or fd00::/8",
      );
    });

    test('the removed --trust-proxy fails with the replacement named, and is not in --help', async () => {
      const r = await run(['--trust-proxy']);
      expect(r.err?.message).toBe(TRUST_PROXY_REPLACED);
      expect(TRUST_PROXY_REPLACED).toContain('--trusted-proxy 127.0.0.1');
      const help = startCommand(
        (() => {
          const p = new Command();
          register(p);
          return p;
        })(),
      ).helpInformation();
      expect(help).toContain('--trusted-proxy <ip|cidr>');
      expect(help).not.toMatch(/--trust-proxy\b/);
    });
  });
});
