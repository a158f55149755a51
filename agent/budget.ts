/**
 * The upstream call budget: a token bucket (capacity `burst`, refilled at `perMinute`) plus the upstream's own
 * 429 `Retry-After`. Every upstream HTTP call takes one token; when none is left the call waits for the next cycle.
 *
 * Syncs the change stream asks for (a push), and forced refreshes (SIGHUP, `phase-bridge agent refresh`), draw from a
 * second bucket first: capacity `pushBurst`, refilled at the same `perMinute`. So polling keeps its own budget
 * whatever the pushes do, and over a long window the agent makes at most twice `perMinute` calls (one bucket each).
 */
export type CallKind = 'poll' | 'push';

export class CallBudget {
  private tokens: number;
  private pushTokens: number;
  private last: number;
  /** Epoch ms before which the upstream asked us not to call (429 Retry-After). */
  rateLimitedUntil = 0;
  /** Calls made and calls refused, for /v1/status and /metrics. */
  used = 0;
  deferred = 0;
  /** Calls made from the push bucket. */
  pushUsed = 0;

  constructor(
    readonly perMinute: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
    readonly pushBurst = 0,
  ) {
    this.tokens = burst;
    this.pushTokens = pushBurst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    const add = ((t - this.last) * this.perMinute) / 60_000;
    this.tokens = Math.min(this.burst, this.tokens + add);
    this.pushTokens = Math.min(this.pushBurst, this.pushTokens + add);
    this.last = t;
  }

  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Tokens left in the push bucket. */
  pushAvailable(): number {
    this.refill();
    return this.pushTokens;
  }

  /** Takes one call if allowed now: a push takes from the push bucket, then from the main one. */
  tryTake(kind: CallKind = 'poll'): boolean {
    this.refill();
    if (this.now() < this.rateLimitedUntil) {
      this.deferred++;
      return false;
    }
    if (kind === 'push' && this.pushTokens >= 1) {
      this.pushTokens -= 1;
      this.pushUsed++;
      this.used++;
      return true;
    }
    if (this.tokens < 1) {
      this.deferred++;
      return false;
    }
    this.tokens -= 1;
    this.used++;
    return true;
  }

  /** Milliseconds until one call of this kind is allowed. */
  waitMs(kind: CallKind = 'poll'): number {
    this.refill();
    const rl = Math.max(0, this.rateLimitedUntil - this.now());
    const until = (n: number): number => (n >= 1 ? 0 : Math.ceil(((1 - n) * 60_000) / this.perMinute));
    const tk =
      kind === 'push' && this.pushBurst >= 1
        ? Math.min(until(this.tokens), until(this.pushTokens))
        : until(this.tokens);
    return Math.max(rl, tk);
  }

  /** Records a 429: no call before `retryAfterMs` (default 60 s when the header is missing or unreadable). */
  rateLimited(retryAfterMs: number | undefined): void {
    const ms =
      retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0
        ? retryAfterMs
        : 60_000;
    this.rateLimitedUntil = Math.max(this.rateLimitedUntil, this.now() + ms);
  }
}
