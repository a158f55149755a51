import { snapshotJson, type Snapshot } from '../../agent/snapshot';

// The snapshot is written in pieces (agent/snapshot.ts); the pieces must form the same document as one
// JSON.stringify would, whatever the number of secrets (piece boundaries at 100).
function fakeSecret(i: number): Record<string, unknown> {
  return {
    id: `id-${i}`,
    key: `ph:v1:k${i}:AAAA`,
    value: `ph:v1:v${i}:BBBB`,
    comment: '',
    tags: ['a"b'],
    path: '/',
  };
}

function snap(counts: number[]): Snapshot {
  const scopes: Record<string, unknown> = {};
  counts.forEach((n, j) => {
    scopes[`scope "${j}"`] = {
      envId: `env-${j}`,
      envUpdatedAt: '2026-11-23T00:00:00Z',
      secrets: Array.from({ length: n }, (_, i) => fakeSecret(i)),
      deps: [{ envId: 'dep', path: '/x', updatedAt: 'u', secrets: [fakeSecret(7)] }],
      confirmedAt: 1,
      fetchedAt: 2,
    };
  });
  return {
    format: 'phase-bridge-agent-snapshot/1',
    savedAt: '2026-11-23T00:00:00.000Z',
    host: 'https://phase.example',
    bootstrap: { wrapped_key_share: 'x', apps: [] } as unknown as Snapshot['bootstrap'],
    scopes: scopes as Snapshot['scopes'],
  };
}

test.each([[[]], [[0]], [[1]], [[100]], [[101]], [[250, 0, 3]]])(
  'snapshot pieces form the same JSON document (secrets per scope: %j)',
  (counts) => {
    const s = snap(counts);
    const pieces = [...snapshotJson(s)];
    expect(JSON.parse(pieces.join(''))).toEqual(JSON.parse(JSON.stringify(s)));
    // No piece holds more than 100 secrets' ciphertext.
    for (const p of pieces) expect(p.split('"ph:v1:v').length - 1).toBeLessThanOrEqual(100);
  },
);
