/**
 * The in-memory store of precomputed views (node-cache, no cloning: views are immutable once built, and a
 * request only picks a Buffer out of one). Keys: `scope:<name>` and `merged`. Freshness is not node-cache's
 * business: max-stale and fail-closed are decided per scope (scope.ts), and a failed-closed scope's entry is deleted.
 */
import NodeCache from 'node-cache';
import type { View } from './views';

export class ViewCache {
  private readonly nc = new NodeCache({ stdTTL: 0, checkperiod: 0, useClones: false, deleteOnExpire: true });

  get(key: string): View | undefined {
    return this.nc.get<View>(key);
  }

  set(key: string, view: View | undefined): void {
    if (view) this.nc.set(key, view);
    else this.nc.del(key);
  }

  /** Drops every view (all decrypted data). */
  clear(): void {
    this.nc.flushAll();
  }

  stats(): { keys: number; hits: number; misses: number } {
    const s = this.nc.getStats();
    return { keys: s.keys, hits: s.hits, misses: s.misses };
  }
}
