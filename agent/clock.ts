/**
 * The agent's clock: wall time and timers, injected so tests drive time instead of sleeping. Timers are unref'd: the
 * listeners (or the child of `run`) keep the process alive, never a pending refresh.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(t: ClockTimer): void;
}

export type ClockTimer = { readonly __clockTimer?: never } | NodeJS.Timeout;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};
