/**
 * The process settings the agent is measured and shipped with (examples/agent/Dockerfile sets exactly these; a test
 * keeps the two in step, and bench/agent starts the agent with them). They must be in place before Node starts, so
 * they are environment, not agent configuration: run `NODE_OPTIONS='<nodeOptions>' MALLOC_ARENA_MAX=1 phase-bridge
 * agent ...` outside the image for the same footprint.
 *
 * Why each one (figures: docs/performance.md, "Memory, third follow-up"):
 * - `--max-semi-space-size=1`: a 1 MB young generation instead of up to 16 MB. About 15 MB less resident memory;
 *   a sidecar's requests and syncs do not need the larger nursery.
 * - `--max-old-space-size=128`: without a limit V8 sizes the old generation from the machine's RAM and, until its
 *   first full collection, lets a sync's garbage pile up (tens of MB after a few full re-downloads). A 128 MB limit
 *   makes V8's own heuristics collect early. It is also a ceiling: the agent warns when a sync leaves the heap near
 *   it (`heapWarning`); raise it for scopes with tens of thousands of secrets.
 * - `MALLOC_ARENA_MAX=1`: glibc otherwise gives each thread that allocates (V8's GC helpers, libuv's pool) its own
 *   malloc arena, whose freed pages stay resident. 2–5 MB. Ignored by other C libraries (musl).
 */
export const AGENT_RUNTIME_PROFILE = {
  nodeOptions: ['--max-semi-space-size=1', '--max-old-space-size=128'],
  env: { MALLOC_ARENA_MAX: '1' },
} as const;

/** Share of V8's heap limit in use after a sync above which the agent warns. */
export const HEAP_WARN_SHARE = 0.75;

/**
 * A warning when the heap in use after a sync is close to V8's limit (where the process would abort with "heap out
 * of memory" on a later, larger sync), naming the setting to raise; undefined otherwise.
 */
export function heapWarning(usedBytes: number, limitBytes: number): string | undefined {
  if (!(limitBytes > 0) || usedBytes < limitBytes * HEAP_WARN_SHARE) return undefined;
  const mb = (n: number): number => Math.round(n / 1048576);
  return (
    `the V8 heap holds ${mb(usedBytes)} MB of its ${mb(limitBytes)} MB limit after a sync; ` +
    `raise it with NODE_OPTIONS=--max-old-space-size=<MB> (the image sets 128) before a larger sync aborts the agent`
  );
}
