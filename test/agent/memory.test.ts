import { getHeapStatistics } from 'node:v8';
import { HeapKeeper, fullCollector } from '../../agent/memory';
import { createLogger } from '../../agent/logger';
import { configFromOptions } from '../../agent/cli';
import { buildConfig } from '../../agent/config';
import { AgentConfigError } from '../../agent/errors';
import { until } from './helpers';

const log = createLogger('silent');
const TOKEN = `pss_service:v2:${'a'.repeat(64)}:${'b'.repeat(64)}:${'c'.repeat(64)}:${'d'.repeat(64)}`;
const BASE = { PHASE_SERVICE_TOKEN: TOKEN, PHASE_APP: 'a', PHASE_ENV: 'dev' };
const FILE_BASE = { token: TOKEN, scopes: [{ app: 'a', env: 'dev' }] };

/** Allocates about `mb` MB that survive one young-generation collection, then drops them. */
function garbage(mb: number): number {
  let keep: string[][] = [];
  for (let i = 0; i < mb * 16; i++) keep.push(Array.from({ length: 1024 }, (_, j) => `g${i}:${j}`));
  const n = keep.length;
  keep = [];
  return n;
}

test('the V8 collector is reachable without --expose-gc on the command line, and frees garbage', () => {
  const gc = fullCollector();
  expect(typeof gc).toBe('function');
  expect((globalThis as { gc?: unknown }).gc).toBeUndefined(); // exposed to one private context only
  garbage(20);
  const before = getHeapStatistics().used_heap_size;
  gc!();
  expect(getHeapStatistics().used_heap_size).toBeLessThan(before);
});

test('past the headroom the keeper collects on its own, then waits for the heap to grow again', async () => {
  const seen: string[] = [];
  const keeper = new HeapKeeper({
    headroom: 2 * 1048576,
    intervalMs: 25,
    log,
    onCollect: (seconds, reason) => {
      expect(seconds).toBeGreaterThanOrEqual(0);
      seen.push(reason);
    },
  });
  expect(keeper.enabled).toBe(true);
  keeper.start();
  try {
    // Held, not dropped: V8 cannot collect it first, so the heap stays above the headroom until the keeper looks.
    const held: string[][] = [];
    for (let i = 0; i < 8 * 16; i++) held.push(Array.from({ length: 1024 }, (_, j) => `h${i}:${j}`));
    await until(() => seen.length > 0, 3000, 20);
    expect(seen.every((r) => r === 'headroom')).toBe(true);
    // The collection kept what is held and raised the floor: no further collections while nothing grows.
    const after = seen.length;
    await new Promise((r) => setTimeout(r, 250));
    expect(seen.length).toBe(after);
    expect(held.length).toBe(128);
  } finally {
    keeper.stop();
  }
});

test('collections after syncs are coalesced, and headroom 0 turns the keeper off', async () => {
  const seen: string[] = [];
  const keeper = new HeapKeeper({
    headroom: 64 * 1048576,
    intervalMs: 60_000,
    log,
    onCollect: (_, r) => seen.push(r),
  });
  keeper.afterSync();
  keeper.afterSync();
  keeper.afterSync();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  expect(seen).toEqual(['sync']);
  expect(keeper.collections).toBe(1);
  keeper.stop();

  const off = new HeapKeeper({ headroom: 0, intervalMs: 10, log, onCollect: () => seen.push('off') });
  expect(off.enabled).toBe(false);
  off.start();
  off.afterSync();
  garbage(8);
  await new Promise((r) => setTimeout(r, 100));
  off.stop();
  expect(seen).toEqual(['sync']);
});

test('heap headroom comes from --heap-headroom or PHASE_AGENT_HEAP_HEADROOM, in MB, and is checked', () => {
  expect(configFromOptions({}, BASE).heapHeadroom).toBe(0); // opt-in
  expect(configFromOptions({}, { ...BASE, PHASE_AGENT_HEAP_HEADROOM: '12' }).heapHeadroom).toBe(12);
  expect(
    configFromOptions({ heapHeadroom: '0' }, { ...BASE, PHASE_AGENT_HEAP_HEADROOM: '12' }).heapHeadroom,
  ).toBe(0);
  for (const [opts, env, source] of [
    [{ heapHeadroom: '-1' }, BASE, '--heap-headroom'],
    [{}, { ...BASE, PHASE_AGENT_HEAP_HEADROOM: 'lots' }, 'PHASE_AGENT_HEAP_HEADROOM'],
  ] as const) {
    let err: unknown;
    try {
      configFromOptions({ ...opts }, { ...env });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentConfigError);
    expect((err as AgentConfigError).message).toContain('heapHeadroom');
    expect((err as AgentConfigError).message).toContain(source);
  }
  // From a config file, a boolean is not a size.
  expect(() => buildConfig([{ values: { ...FILE_BASE, heapHeadroom: true }, source: {} }])).toThrow(
    /heapHeadroom.*must be a number of MB/,
  );
});
