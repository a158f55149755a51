/**
 * Retry policy of the HTTP client: which failures are retried, and how long to wait.
 *
 * - Network errors, 5xx and 429 are retried; other 4xx never are (the request itself is wrong).
 * - Idempotency: GET, PUT and DELETE are retried on all of the above. POST creates things, so it is retried only
 *   when the server cannot have acted on it: 429 (throttled before the view ran), 503 (unavailable), or a
 *   connection that failed before the request was sent (DNS, refused, TLS handshake).
 * - Waits use full-jitter exponential backoff: uniform in [0, min(maxDelay, baseDelay * 2^attempt)].
 *   A `Retry-After` header (seconds or an HTTP date) replaces the jittered wait, capped at `maxRetryAfterMs`.
 */

export interface RetryOptions {
  /** Retries after the first attempt (default 3). */
  retries: number;
  /** First backoff ceiling in ms (default 250). */
  baseDelayMs: number;
  /** Ceiling of a jittered backoff in ms (default 8000). */
  maxDelayMs: number;
  /** Longest honoured `Retry-After` in ms (default 60000); longer requests are capped to this. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryOptions = {
  retries: 3,
  baseDelayMs: 250,
  maxDelayMs: 8000,
  maxRetryAfterMs: 60000,
};

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method.toUpperCase());
}

/** Whether an HTTP status is worth another attempt for this method. */
export function shouldRetryStatus(method: string, status: number): boolean {
  if (status === 429 || status === 503) return true;
  if (status >= 500 && status <= 599) return isIdempotent(method);
  return false;
}

/**
 * Whether a network failure is worth another attempt: always before send, otherwise only when idempotent.
 * TLS failures (bad or untrusted certificate) never heal by retrying.
 */
export function shouldRetryNetwork(method: string, beforeSend: boolean, kind?: string): boolean {
  if (kind === 'tls') return false;
  return beforeSend || isIdempotent(method);
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date; undefined when absent or invalid. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  // An HTTP date always names a day or month; this rejects "-1" and other numbers Date.parse would accept.
  if (!/[a-z]{3}/i.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Full-jitter exponential backoff for retry number `attempt` (0-based). */
export function backoffDelay(
  attempt: number,
  opts: RetryOptions,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/** The wait before the next attempt: the server's `Retry-After` when given (capped), else jittered backoff. */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | undefined,
  opts: RetryOptions,
  random?: () => number,
): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, opts.maxRetryAfterMs);
  return backoffDelay(attempt, opts, random);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
