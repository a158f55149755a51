/**
 * Keeps the hidden class of `process.nextTick`'s queue entries alive for the life of the process.
 *
 * Why: Node builds each queue entry with an object literal that has computed (symbol) keys. V8 records the entry's
 * hidden classes (maps) in `nextTick`'s feedback *weakly*. A full garbage collection that runs while no entry is
 * queued frees those maps; the next entry gets new ones, and for this kind of literal V8 then marks the sites
 * megamorphic for good. From then on every `nextTick` (several per HTTP request, inside Node's stream code) makes
 * three runtime calls instead of three stores. Measured on the agent's cached key read at 50 connections, fresh
 * agents in alternating runs: 37–45k req/s without this, 43–59k with it (docs/performance.md, "Agent, seventh
 * session").
 *
 * Holding one entry holds its map, and through the map's back pointers the whole chain of maps, so the feedback
 * stays monomorphic whatever the collector does. The entry is the one of a `nextTick` scheduled here: while its
 * callback runs, it is `executionAsyncResource()`. No async hook is installed (an `init` hook would switch on V8's
 * promise hooks, which slow every promise for the rest of the process even once the hook is disabled). Call this
 * early, before the process serves traffic; the entry is held from the next tick on, and later calls do nothing.
 * It is an optimisation only. `PHASE_BRIDGE_TICK_SHAPE=off` turns it off, to measure the difference.
 */
import { executionAsyncResource } from 'node:async_hooks';

let held: object | undefined;
let scheduled = false;

/** Schedules the `nextTick` whose queue entry is then held (once per process). */
export function keepTickObjectShape(): void {
  if (scheduled || process.env.PHASE_BRIDGE_TICK_SHAPE === 'off') return;
  scheduled = true;
  process.nextTick(hold);
}

/** True once an entry is held (from the tick after `keepTickObjectShape`). */
export function tickObjectHeld(): boolean {
  return held !== undefined;
}

function hold(): void {
  const entry = executionAsyncResource() as { callback?: unknown };
  // Only the queue entry of this very callback; anything else would hold an unrelated object.
  if (entry?.callback === hold) held = entry;
}
