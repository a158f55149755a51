/**
 * Opt-in memory upkeep (`heapHeadroom` > 0). V8 sizes its heap for throughput: the garbage of a sync (validating
 * and decrypting 1,000 secrets allocates tens of MB that live for milliseconds) or of a burst of requests stays
 * committed until V8's memory reducer notices the process is idle, about 10-20 s later, or longer under steady
 * traffic. With the keeper on, the agent collects explicitly: once after each sync that decrypted something, and
 * whenever the heap has grown more than `headroom` bytes above what the previous collection left (checked every
 * `intervalMs`). V8 returns the freed pages to the OS shortly after.
 *
 * Off by default. It was a trade: peak resident memory dropped by 10-15 MB, and cached `GET /v1/secrets/:key`
 * throughput dropped by 10-20 % after the first explicit collection (docs/performance.md, "Memory, second
 * follow-up"). That drop was a collection freeing the map of `nextTick`'s queue entries, which core/tick-object.ts
 * now prevents. With it, one run measured the keeper at 0.95-0.99 of a bare server ("Agent, seventh session").
 *
 * The collector is reached the way jest's leak detector reaches it: `--expose-gc` switched on for one new context.
 * When that is not possible (a V8 that refuses the flag), the keeper does nothing and V8's own heuristics apply.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from './logger';

export type Collect = () => void;

let collector: Collect | null | undefined;

/** The V8 full-GC function, or null when it cannot be exposed. */
export function fullCollector(): Collect | null {
  if (collector !== undefined) return collector;
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return (collector = existing as Collect);
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    collector = typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    collector = null;
  } finally {
    // Only this one context gets it; code loaded later sees no global gc.
    setFlagsFromString('--no-expose-gc');
  }
  return collector;
}

export interface HeapKeeperOptions {
  /** Growth of the V8 heap (bytes in use) over the last collection's result that triggers one; 0 disables. */
  headroom: number;
  /** How often the heap size is checked. */
  intervalMs: number;
  log: Logger;
  /** Called with the duration of each collection, in seconds (for /metrics). */
  onCollect?: (seconds: number, reason: 'sync' | 'headroom') => void;
}

export class HeapKeeper {
  private readonly gc: Collect | null;
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Immediate | undefined;
  /** Heap in use right after the last collection. */
  private floor = 0;
  collections = 0;

  constructor(private readonly opts: HeapKeeperOptions) {
    this.gc = opts.headroom > 0 ? fullCollector() : null;
    if (opts.headroom > 0 && !this.gc)
      opts.log.warn('cannot reach the V8 collector; resident memory is left to V8 heuristics');
  }

  get enabled(): boolean {
    return !!this.gc;
  }

  start(): void {
    if (!this.gc) return;
    this.floor = getHeapStatistics().used_heap_size;
    this.timer = setInterval(() => {
      if (getHeapStatistics().used_heap_size > this.floor + this.opts.headroom) this.collect('headroom');
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /** After a sync that decrypted: collect once the cycle's callers have run (coalesced). */
  afterSync(): void {
    if (!this.gc || this.pending) return;
    this.pending = setImmediate(() => {
      this.pending = undefined;
      this.collect('sync');
    });
    this.pending.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearImmediate(this.pending);
    this.timer = undefined;
    this.pending = undefined;
  }

  private collect(reason: 'sync' | 'headroom'): void {
    if (!this.gc) return;
    const t = performance.now();
    this.gc();
    const seconds = (performance.now() - t) / 1000;
    this.floor = getHeapStatistics().used_heap_size;
    this.collections++;
    this.opts.onCollect?.(seconds, reason);
    this.opts.log.debug({ reason, ms: Math.round(seconds * 1000), heapBytes: this.floor }, 'heap collected');
  }
}
