/**
 * The upstream call budget: a token bucket (capacity `burst`, refilled at `perMinute`) plus the upstream's own
 * 429 `Retry-After`. Every upstream HTTP call takes one token; when none is left the call waits for the next cycle.
 */
export class CallBudget {
  private tokens: number;
  private last: number;
  /** Epoch ms before which the upstream asked us not to call (429 Retry-After). */
  rateLimitedUntil = 0;
  /** Calls made and calls refused, for /v1/status and /metrics. */
  used = 0;
  deferred = 0;

  constructor(
    readonly perMinute: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.perMinute) / 60_000);
    this.last = t;
  }

  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Takes one call if allowed now. */
  tryTake(): boolean {
    this.refill();
    if (this.now() < this.rateLimitedUntil || this.tokens < 1) {
      this.deferred++;
      return false;
    }
    this.tokens -= 1;
    this.used++;
    return true;
  }

  /** Milliseconds until one call is allowed. */
  waitMs(): number {
    this.refill();
    const rl = Math.max(0, this.rateLimitedUntil - this.now());
    const tk = this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute);
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
