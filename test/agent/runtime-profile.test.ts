import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_RUNTIME_PROFILE, HEAP_WARN_SHARE, heapWarning } from '../../agent/runtime-profile';

const ROOT = join(__dirname, '..', '..');

/** The `ENV` instruction of the image's final stage as name → value (quotes removed). */
function imageEnv(): Record<string, string> {
  const dockerfile = readFileSync(join(ROOT, 'examples', 'agent', 'Dockerfile'), 'utf8');
  const stages = dockerfile.split(/^FROM /m);
  const final = stages[stages.length - 1].replace(/\\\n/g, ' ');
  const env: Record<string, string> = {};
  for (const line of final.split('\n').filter((l) => l.startsWith('ENV ')))
    for (const m of line.slice(4).matchAll(/([A-Z_]+)=("[^"]*"|\S+)/g))
      env[m[1]] = m[2].replace(/^"|"$/g, '');
  return env;
}

test('the image runs the agent with exactly its runtime profile', () => {
  const env = imageEnv();
  expect(env.NODE_OPTIONS).toBe(AGENT_RUNTIME_PROFILE.nodeOptions.join(' '));
  for (const [name, value] of Object.entries(AGENT_RUNTIME_PROFILE.env)) expect(env[name]).toBe(value);
});

test('this Node accepts the profile through NODE_OPTIONS, and V8 applies the old-generation limit', () => {
  const probe = spawnSync(
    process.execPath,
    ['-e', 'process.stdout.write(String(require("node:v8").getHeapStatistics().heap_size_limit))'],
    {
      env: {
        ...process.env,
        ...AGENT_RUNTIME_PROFILE.env,
        NODE_OPTIONS: AGENT_RUNTIME_PROFILE.nodeOptions.join(' '),
      },
      encoding: 'utf8',
    },
  );
  expect(probe.stderr).toBe('');
  expect(probe.status).toBe(0);
  const limitMb = Number(probe.stdout) / 1048576;
  // 128 MB of old generation plus the young generation's few MB; without the flag it is sized from the RAM.
  expect(limitMb).toBeGreaterThanOrEqual(128);
  expect(limitMb).toBeLessThan(140);
});

test('a heap near its limit after a sync is reported with the setting to raise; below the share it is not', () => {
  const limit = 131 * 1048576;
  expect(heapWarning(limit * HEAP_WARN_SHARE - 1, limit)).toBeUndefined();
  expect(heapWarning(20 * 1048576, limit)).toBeUndefined();
  const msg = heapWarning(110 * 1048576, limit);
  expect(msg).toContain('110 MB of its 131 MB limit');
  expect(msg).toContain('--max-old-space-size');
  expect(heapWarning(1, 0)).toBeUndefined(); // no limit known
});
