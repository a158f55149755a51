/**
 * The sync's schedule part: when cycles run. The polling timer (the refresh interval ± jitter, never before the
 * budget allows a call), the timer of pushed and forced cycles (right away, or when the push budget allows), what is
 * wanted next while a cycle runs, and the change stream's announcements (which environments hold older data than the
 * upstream said it has, and when to sync again to confirm one). It runs nothing itself: `run` does.
 */
import type { CallBudget } from './budget';
import type { Clock, ClockTimer } from './clock';
import type { StreamEnv } from './change-stream';

/**
 * What started a cycle. `poll`: the refresh timer, start-up (a bootstrap, charged to the polling budget). `push`:
 * the change stream announced a newer `updated_at` (no bootstrap when one with the current token is held: the
 * announced time stands in for it, so one call per changed scope, charged to the push bucket first). `forced`:
 * SIGHUP, `POST /v1/refresh`, a token rotation, a revocation or removal the stream reported (a bootstrap, push
 * bucket first).
 */
export type CycleKind = 'poll' | 'push' | 'forced';

/** Retries of a bootstrap that reports an environment older than the stream announced ("sync again shortly"). */
const CONFIRM_TRIES = 3;
const CONFIRM_BASE_MS = 250;

/** True when `updated_at` value a is strictly later than b (microsecond ISO times; '' is older than anything). */
export function newerThan(a: string, b: string | undefined): boolean {
  if (!b) return !!a;
  if (a === b) return false;
  const sec = (x: string): number => Math.floor(Date.parse(x) / 1000);
  const frac = (x: string): string => (/\.(\d+)/.exec(x)?.[1] ?? '').padEnd(9, '0');
  const sa = sec(a);
  const sb = sec(b);
  if (Number.isNaN(sa) || Number.isNaN(sb)) return a > b;
  return sa !== sb ? sa > sb : frac(a) > frac(b);
}

export class Scheduler {
  private pollTimer?: ClockTimer;
  private pushTimer?: ClockTimer;
  private next = { push: false, forced: false };
  private stopped = false;

  constructor(
    private readonly o: {
      refreshInterval: number;
      jitter: number;
      budget: CallBudget;
      clock: Clock;
      random?: () => number;
      /** Starts a cycle (single-flight is the caller's). */
      run: (kind: CycleKind, reason: string) => void;
    },
  ) {}

  /** The next poll after `delayMs`, or after the refresh interval ± jitter (never before the budget allows a call). */
  poll(delayMs?: number): void {
    if (this.stopped) return;
    if (this.pollTimer) this.o.clock.clearTimeout(this.pollTimer);
    const base = this.o.refreshInterval;
    const jitter = base * this.o.jitter * (2 * (this.o.random ?? Math.random)() - 1);
    // A wake-up that cannot call would only burn a cycle.
    const wait = Math.max(delayMs ?? base + jitter, this.o.budget.waitMs());
    this.pollTimer = this.o.clock.setTimeout(
      () => this.o.run('poll', 'refresh'),
      Math.max(10, Math.round(wait)),
    );
  }

  /** Wants a push or forced cycle: now if `busy` is false (and none is pending), else after the cycle in flight. */
  want(kind: 'push' | 'forced', busy: boolean): void {
    if (this.stopped) return;
    this.next[kind] = true;
    if (!busy && !this.pushTimer) this.soon(0);
  }

  /** Runs what is wanted after `delayMs`, or when the push budget allows, whichever is later. */
  soon(delayMs: number): void {
    if (this.stopped) return;
    if (this.pushTimer) this.o.clock.clearTimeout(this.pushTimer);
    const wait = Math.max(delayMs, this.o.budget.waitMs('push'));
    this.pushTimer = this.o.clock.setTimeout(() => {
      this.pushTimer = undefined;
      const { forced, push } = this.next;
      this.next = { push: false, forced: false };
      if (forced) this.o.run('forced', 'confirm');
      else if (push) this.o.run('push', 'change stream');
    }, Math.round(wait));
  }

  /**
   * After a cycle: a poll or forced cycle sets the next poll (right when the budget allows if fetches were postponed
   * or another cycle is due); a push cycle leaves the polling timer alone, so polling goes on at its interval
   * whatever the stream does. Whatever was wanted meanwhile runs next.
   */
  afterCycle(kind: CycleKind, o: { pending: boolean; again: boolean }): void {
    if (kind !== 'push' || o.again) this.poll(o.pending || o.again ? this.o.budget.waitMs() : undefined);
    if (kind === 'push' && o.pending) this.next.push = true;
    if ((this.next.push || this.next.forced) && !this.pushTimer) this.soon(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.pollTimer) this.o.clock.clearTimeout(this.pollTimer);
    if (this.pushTimer) this.o.clock.clearTimeout(this.pushTimer);
    this.pollTimer = undefined;
    this.pushTimer = undefined;
  }
}

/**
 * Newer `updated_at` values the change stream announced for environments held here (scopes and the targets of their
 * references), with when they arrived; dropped once the data held is at least as new.
 */
export class Announcements {
  private readonly map = new Map<string, { updatedAt: string; at: number; tries: number }>();

  constructor(
    private readonly clock: Clock,
    /** The oldest `updated_at` held for an environment; undefined when nothing of it is held. */
    private readonly held: (envId: string) => string | undefined,
  ) {}

  /** Records what is newer than the data held; true when something is (a push cycle is due). */
  announce(envs: StreamEnv[]): boolean {
    let stale = false;
    const now = this.clock.now();
    for (const e of envs) {
      const held = this.held(e.id);
      if (held === undefined || !newerThan(e.updatedAt, held)) continue;
      const prev = this.map.get(e.id);
      if (!prev || newerThan(e.updatedAt, prev.updatedAt))
        this.map.set(e.id, { updatedAt: e.updatedAt, at: now, tries: 0 });
      stale = true;
    }
    return stale;
  }

  has(envId: string | undefined): boolean {
    return envId !== undefined && this.map.has(envId);
  }

  /** A held bootstrap with each environment's `updated_at` raised to what was announced since. */
  patch<
    B extends {
      apps: Array<{ environment_keys: Array<{ environment: { id: string; updated_at: string } }> }>;
    },
  >(boot: B): B {
    if (this.map.size === 0) return boot;
    return {
      ...boot,
      apps: boot.apps.map((a) => ({
        ...a,
        environment_keys: a.environment_keys.map((k) => {
          const ann = this.map.get(k.environment.id);
          return ann && newerThan(ann.updatedAt, k.environment.updated_at)
            ? { ...k, environment: { ...k.environment, updated_at: ann.updatedAt } }
            : k;
        }),
      })),
    };
  }

  /**
   * After a cycle: forgets what the data held now covers. An announcement that a bootstrap asked after it arrived
   * still reports as older (a server that announced before it could answer it) means "sync again shortly": returns
   * the delay of that forced cycle (250 ms, 500 ms, 1 s), 0 when none is due; after that the announcement is dropped
   * (`onGiveUp`; the polls go on).
   */
  settle(
    bootAskedAt: number | undefined,
    pendingFetch: boolean,
    onGiveUp: (envId: string, announced: string, held: string) => void,
  ): number {
    let confirm = 0;
    for (const [id, a] of this.map) {
      const held = this.held(id);
      if (held === undefined || !newerThan(a.updatedAt, held)) {
        this.map.delete(id);
        continue;
      }
      // A push cycle follows an announcement the bootstrap could not have seen, or a fetch the budget postponed.
      if (bootAskedAt === undefined || a.at > bootAskedAt || pendingFetch) continue;
      a.tries++;
      if (a.tries > CONFIRM_TRIES) {
        this.map.delete(id);
        onGiveUp(id, a.updatedAt, held);
        continue;
      }
      confirm = Math.max(confirm, CONFIRM_BASE_MS * 2 ** (a.tries - 1));
    }
    return confirm;
  }
}
