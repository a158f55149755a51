/**
 * A loopback HTTP proxy in front of the real phase-bridge server that passes every request through and, while a
 * tamper function is set, rewrites the JSON answer of `GET /service/secrets/tokens/` (the E2E bootstrap): how the
 * key checks of core/e2e-read.ts are tested against a server answer that does not hold together.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Rewrites the parsed `/secrets/tokens/` answer in place (or returns a replacement). */
export type Tamper = (body: Record<string, any>) => Record<string, any> | void;

export interface TamperProxy {
  /** The proxy's base URL, used as the client's host. */
  url: string;
  /** Set (or clear with undefined) the rewrite of the next bootstrap answers. */
  tamper: Tamper | undefined;
  /** Bootstrap answers rewritten so far. */
  tampered: number;
  close(): Promise<void>;
}

export async function startTamperProxy(upstream: string): Promise<TamperProxy> {
  const target = new URL(upstream);
  const state = { tamper: undefined as Tamper | undefined, tampered: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = { ...req.headers, host: target.host, 'accept-encoding': 'identity' };
      const up = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: req.url,
          method: req.method,
          headers,
          agent: false,
        },
        (ur) => {
          const body: Buffer[] = [];
          ur.on('data', (c: Buffer) => body.push(c));
          ur.on('end', () => {
            let out = Buffer.concat(body);
            const outHeaders = { ...ur.headers };
            const tamper = state.tamper;
            if (tamper && ur.statusCode === 200 && /\/secrets\/tokens\/?(\?|$)/.test(req.url ?? '')) {
              const parsed = JSON.parse(out.toString('utf8'));
              out = Buffer.from(JSON.stringify(tamper(parsed) ?? parsed));
              state.tampered++;
              delete outHeaders.etag;
            }
            outHeaders['content-length'] = String(out.length);
            delete outHeaders['transfer-encoding'];
            res.writeHead(ur.statusCode ?? 502, outHeaders);
            res.end(out);
          });
        },
      );
      up.on('error', (err) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get tamper() {
      return state.tamper;
    },
    set tamper(t: Tamper | undefined) {
      state.tamper = t;
    },
    get tampered() {
      return state.tampered;
    },
    set tampered(n: number) {
      state.tampered = n;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
