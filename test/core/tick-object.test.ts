/**
 * core/tick-object.ts: a full collection must not turn `process.nextTick`'s entry literal megamorphic.
 *
 * Each case runs in a fresh Node process with V8's natives syntax: a few `nextTick` calls record the entry's maps in
 * the function's feedback, full collections run while no entry is queued, more calls follow, and `%DebugPrint`
 * shows the state of the literal's property-definition sites. Without the held entry they go megamorphic (the V8
 * behaviour the module works around: if a later Node stops doing this, the first test fails and says so); with it
 * they stay monomorphic. The built module is used (npm test builds first).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { keepTickObjectShape, tickObjectHeld } from '../../core/tick-object';

const MODULE = join(__dirname, '..', '..', 'dist', 'core', 'tick-object.js');

const SCRIPT = `
const tick = require(${JSON.stringify(MODULE)});
if (process.env.HOLD === '1') tick.keepTickObjectShape();
const noop = () => {};
const turn = () => new Promise((r) => setImmediate(r));
(async () => {
  await turn();
  if (process.env.HOLD === '1' && !tick.tickObjectHeld()) process.exit(3);
  // Few enough calls that nextTick gets feedback but no optimised code (which would keep the maps alive).
  for (let round = 0; round < 4; round++) { for (let i = 0; i < 10; i++) process.nextTick(noop); await turn(); }
  for (let i = 0; i < 3; i++) gc();
  for (let round = 0; round < 2; round++) { for (let i = 0; i < 10; i++) process.nextTick(noop); await turn(); }
  %DebugPrint(process.nextTick);
})();
`;

/** The states of nextTick's DefineKeyedOwnPropertyInLiteral feedback slots after the collections. */
function literalSiteStates(hold: boolean, env: Record<string, string> = {}): string[] {
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--expose-gc', '-e', SCRIPT], {
    env: { ...process.env, PHASE_BRIDGE_TICK_SHAPE: '', HOLD: hold ? '1' : '0', NODE_OPTIONS: '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0) throw new Error(`child exited with ${r.status}: ${r.stderr}`);
  return [...r.stdout.matchAll(/DefineKeyedOwnPropertyInLiteral (\w+)/g)].map((m) => m[1]);
}

describe('keepTickObjectShape', () => {
  test('without a held entry, a full collection turns the entry literal megamorphic (the V8 behaviour worked around)', () => {
    const states = literalSiteStates(false);
    expect(states.length).toBeGreaterThanOrEqual(3);
    expect(states).toContain('MEGAMORPHIC');
  });

  test('with a held entry, the literal sites stay monomorphic across full collections', () => {
    const states = literalSiteStates(true);
    expect(states.length).toBeGreaterThanOrEqual(3);
    expect(new Set(states)).toEqual(new Set(['MONOMORPHIC']));
  });

  test('PHASE_BRIDGE_TICK_SHAPE=off turns it off', () => {
    expect(() => literalSiteStates(true, { PHASE_BRIDGE_TICK_SHAPE: 'off' })).toThrow(/child exited with 3/);
  });

  test('holds the entry from the next tick on, once per process', async () => {
    keepTickObjectShape();
    keepTickObjectShape();
    await new Promise((r) => setImmediate(r));
    expect(tickObjectHeld()).toBe(true);
  });

  test('installs no promise hook (which would slow every promise for good)', () => {
    const r = spawnSync(
      process.execPath,
      [
        '--trace-protector-invalidation',
        '-e',
        `require(${JSON.stringify(MODULE)}).keepTickObjectShape(); setImmediate(() => {});`,
      ],
      {
        env: { ...process.env, PHASE_BRIDGE_TICK_SHAPE: '', NODE_OPTIONS: '' },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(r.status).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/PromiseHook/);
  });
});
