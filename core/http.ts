/**
 * HTTP transport with timeouts, error classification and the retry loop (policy in `core/retry.ts`).
 * The default transport is Node's global `fetch`. Node 20 bundles undici but does not expose its `Agent`, and the
 * `undici` package is not a dependency, so `skipTlsVerification` uses a `node:https` transport instead.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { apiError, NetworkError, type NetworkErrorKind, phaseErrorText } from './api-errors';
import {
  DEFAULT_RETRY,
  parseRetryAfter,
  retryDelay,
  type RetryOptions,
  shouldRetryNetwork,
  shouldRetryStatus,
  sleep,
} from './retry';

export interface HttpRequest {
  method: string;
  url: string;
  /** What errors show: the URL path without the query string. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  header(name: string): string | null;
  text: string;
}

export type Transport = (req: HttpRequest, timeoutMs: number) => Promise<HttpResponse>;

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL']);
/** Failures where the server cannot have received the request. */
const PRE_SEND_CODES = new Set([
  ...DNS_CODES,
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'HPE_INVALID_CONSTANT',
]);

function isTlsCode(code: string): boolean {
  return (
    code.startsWith('ERR_TLS') ||
    code.startsWith('ERR_SSL') ||
    code.includes('CERT') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ||
    code === 'EPROTO'
  );
}

/** Finds the system error code in an error or its cause chain (fetch wraps it; happy-eyeballs aggregates). */
function errorCode(err: unknown, depth = 0): string | undefined {
  if (!err || typeof err !== 'object' || depth > 5) return undefined;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (Array.isArray(e.errors) && e.errors.length > 0) return errorCode(e.errors[0], depth + 1);
  return errorCode(e.cause, depth + 1);
}

function isTimeout(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

/** Maps a thrown transport error to a NetworkError with a kind and whether the request was sent. */
export function classifyNetworkError(err: unknown, req: HttpRequest, timeoutMs: number): NetworkError {
  if (err instanceof NetworkError) return err;
  const code = errorCode(err);
  let kind: NetworkErrorKind = 'unknown';
  if (isTimeout(err) || (code && TIMEOUT_CODES.has(code))) kind = 'timeout';
  else if (code && DNS_CODES.has(code)) kind = 'dns';
  else if (code && isTlsCode(code)) kind = 'tls';
  else if (code && CONNECTION_CODES.has(code)) kind = 'connection';
  const beforeSend = (code !== undefined && PRE_SEND_CODES.has(code)) || kind === 'tls' || kind === 'dns';
  const detail =
    kind === 'timeout' && !code
      ? `no response within ${timeoutMs} ms`
      : `${code ?? 'error'}${err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : ''}`;
  return new NetworkError({ kind, method: req.method, path: req.path, beforeSend, detail }, { cause: err });
}

/** The default transport: global fetch with a per-attempt AbortSignal timeout covering headers and body. */
export const fetchTransport: Transport = async (req, timeoutMs) => {
  try {
    const res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    return { status: res.status, header: (n) => res.headers.get(n), text };
  } catch (err) {
    throw classifyNetworkError(err, req, timeoutMs);
  }
};

/**
 * A `node:http(s)` transport: for `skipTlsVerification` (certificate checks off), for the agent (no undici in its
 * process), and, with `socketPath`, for talking to a local agent over its unix socket (the URL then gives the path
 * and the Host header only).
 */
export function nodeTransport(opts: { rejectUnauthorized: boolean; socketPath?: string }): Transport {
  return (req, timeoutMs) =>
    new Promise<HttpResponse>((resolve, reject) => {
      const url = new URL(req.url);
      const mod = url.protocol === 'https:' ? https : http;
      const headers: Record<string, string> = { ...req.headers };
      if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
      const r = mod.request(
        url,
        {
          method: req.method,
          headers,
          ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
          ...(url.protocol === 'https:' ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => fail(e));
          res.on('end', () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: res.statusCode ?? 0,
              header: (n) => {
                const v = res.headers[n.toLowerCase()];
                return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
              },
              text,
            });
          });
        },
      );
      const fail = (e: unknown): void => {
        clearTimeout(timer);
        reject(classifyNetworkError(e, req, timeoutMs));
      };
      const timer = setTimeout(() => {
        const e = new Error(`no response within ${timeoutMs} ms`);
        e.name = 'TimeoutError';
        r.destroy(e);
      }, timeoutMs);
      r.on('error', fail);
      if (req.body !== undefined) r.write(req.body);
      r.end();
    });
}

export interface RetryEvent {
  method: string;
  path: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface SendOptions {
  timeoutMs: number;
  retry: RetryOptions;
  transport: Transport;
  onRetry?: (e: RetryEvent) => void;
  random?: () => number;
  /** Strings removed from server error text (the bearer value, should an upstream echo the header back). */
  redact?: string[];
}

function redact(text: string, secrets: string[] | undefined): string {
  let out = text;
  for (const s of secrets ?? []) if (s) out = out.split(s).join('[redacted]');
  return out;
}

/** Sends with retries; resolves with a 2xx response, rejects with ApiError or NetworkError. */
export async function sendWithRetry(req: HttpRequest, opts: SendOptions): Promise<HttpResponse> {
  const retry = opts.retry ?? DEFAULT_RETRY;
  for (let attempt = 0; ; attempt++) {
    let res: HttpResponse;
    try {
      res = await opts.transport(req, opts.timeoutMs);
    } catch (err) {
      const ne = classifyNetworkError(err, req, opts.timeoutMs);
      if (attempt < retry.retries && shouldRetryNetwork(req.method, ne.beforeSend, ne.kind)) {
        const delayMs = retryDelay(attempt, undefined, retry, opts.random);
        opts.onRetry?.({
          method: req.method,
          path: req.path,
          attempt: attempt + 1,
          delayMs,
          reason: ne.code,
        });
        await sleep(delayMs);
        continue;
      }
      throw ne;
    }
    if (res.status >= 200 && res.status < 300) return res;
    const retryAfterMs = parseRetryAfter(res.header('retry-after'));
    if (attempt < retry.retries && shouldRetryStatus(req.method, res.status)) {
      const delayMs = retryDelay(attempt, retryAfterMs, retry, opts.random);
      opts.onRetry?.({
        method: req.method,
        path: req.path,
        attempt: attempt + 1,
        delayMs,
        reason: `HTTP ${res.status}`,
      });
      await sleep(delayMs);
      continue;
    }
    throw apiError({
      status: res.status,
      phaseError: redact(phaseErrorText(res.text), opts.redact),
      method: req.method,
      path: req.path,
      retryAfterMs,
    });
  }
}
