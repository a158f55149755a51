/**
 * Keeps the hidden class of `process.nextTick`'s queue entries alive for the life of the process.
 *
 * Why: Node builds each queue entry with an object literal that has computed (symbol) keys. V8 records the entry's
 * hidden classes (maps) in `nextTick`'s feedback *weakly*. A full garbage collection that runs while no entry is
 * queued frees those maps; the next entry gets new ones, and for this kind of literal V8 then marks the sites
 * megamorphic for good. From then on every `nextTick` (several per HTTP request, inside Node's stream code) makes
 * three runtime calls instead of three stores. Measured on the agent's cached key read: 37–45k req/s without this,
 * 49–59k with it, on the same machine in alternating runs (docs/performance.md, "Agent, seventh session").
 *
 * Holding one entry holds its map, and through the map's back pointers the whole chain of maps, so the feedback
 * stays monomorphic whatever the collector does. The entry is taken from the `init` hook of an async hook that is
 * enabled only around one `nextTick` call. Call this early, before the process serves traffic; later calls do
 * nothing. It is an optimisation only: where the hook cannot be set up it returns false and changes nothing, and
 * `PHASE_BRIDGE_TICK_SHAPE=off` turns it off (to measure the difference).
 */
import { createHook } from 'node:async_hooks';

let held: object | undefined;

/** Takes and holds one `process.nextTick` queue entry (once per process). True when one is held. */
export function keepTickObjectShape(): boolean {
  if (held) return true;
  if (process.env.PHASE_BRIDGE_TICK_SHAPE === 'off') return false;
  try {
    const hook = createHook({
      init(_asyncId, type, _triggerAsyncId, resource) {
        if (type === 'TickObject' && !held) held = resource;
      },
    });
    hook.enable();
    try {
      process.nextTick(noop);
    } finally {
      hook.disable();
    }
  } catch {
    // async_hooks unavailable or refused: V8's default behaviour applies.
  }
  return held !== undefined;
}

function noop(): void {}
