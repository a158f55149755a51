/**
 * agent/views.ts: the bodies a view serves. Only `GET /v1/secrets` is built with the view; key bodies, export
 * formats and the metadata listing on first use. Built late, they must be exactly what building them at once gave:
 * same bytes, same ETags (the view's ETag is the metadata listing's, hashed without building it).
 */
import { createHash } from 'node:crypto';
import { RENDER_FORMATS } from '../../agent/config';
import type { PlainSecret } from '../../agent/decrypt';
import { renderFormat } from '../../agent/formats';
import { buildView } from '../../agent/views';

const secret = (key: string, value: string, extra: Partial<PlainSecret> = {}): PlainSecret => ({
  id: `id-${key}`,
  key,
  value,
  comment: '',
  path: '/',
  tags: [],
  type: 'secret',
  version: 1,
  overridden: false,
  ...extra,
});

const etag = (b: Buffer): string => `"${createHash('sha256').update(b).digest('base64url').slice(0, 27)}"`;

const parts = [
  {
    scope: 'one',
    app: 'web',
    environment: 'Production',
    secrets: [
      secret('B', 'b ✓', { path: '/x', tags: ['t'], comment: 'c', updatedAt: '2026-12-03T00:00:00Z' }),
      secret('A', 'a "quoted"\nline'),
      secret('B', 'root b'),
    ],
  },
  {
    scope: 'two',
    app: 'api',
    environment: 'Staging',
    secrets: [secret('A', 'a from two'), secret('BAD-KEY', 'v')],
  },
];

test('the metadata listing: its ETag is the view ETag, its bytes the listing of every secret in order', () => {
  const v = buildView(parts);
  const meta = v.secretsMeta;
  expect(meta.etag).toBe(etag(meta.body));
  expect(v.etag).toBe(meta.etag);
  const listed = (
    JSON.parse(meta.body.toString()) as { secrets: Array<{ key: string; scope: string; path: string }> }
  ).secrets;
  expect(listed.map((s) => `${s.scope}:${s.path}:${s.key}`)).toEqual([
    'one:/:A',
    'one:/:B',
    'one:/x:B',
    'two:/:A',
    'two:/:BAD-KEY',
  ]);
  expect(v.secretsMeta).toBe(meta); // built once
});

test('the ETag moves with metadata alone (a comment), not only with values', () => {
  const a = buildView(parts);
  const changed = structuredClone(parts);
  changed[0].secrets[1].comment = 'new comment';
  const b = buildView(changed);
  expect(b.secrets.body.equals(a.secrets.body)).toBe(true);
  expect(b.etag).not.toBe(a.etag);
});

test('key bodies: the winning value, built on first use and kept; unknown keys undefined', () => {
  const v = buildView(parts);
  expect(v.secrets.body.toString()).toBe('{"B":"root b","A":"a from two","BAD-KEY":"v"}');
  const a = v.keys.get('A')!;
  expect(a.body.toString()).toBe('a from two');
  expect(a.etag).toBe(etag(a.body));
  expect(v.keys.get('A')).toBe(a);
  expect(v.keys.get('NOPE')).toBeUndefined();
  expect(v.keys.get('a')).toBeUndefined(); // case is the caller's business (http.ts tries the upper case)
});

test.each(RENDER_FORMATS)('%s: what renderFormat gives, 422 with the reason when it cannot', (format) => {
  const v = buildView(parts);
  const b = v.env(format);
  // Merge order: a key a later scope wins moves after the earlier scope's keys.
  const r = renderFormat(format, [
    { key: 'B', value: 'root b' },
    { key: 'A', value: 'a from two' },
    { key: 'BAD-KEY', value: 'v' },
  ]);
  if (r.ok) {
    expect(b.status).toBe(200);
    expect(b.body.toString()).toBe(r.text);
  } else {
    expect(b.status).toBe(422);
    expect(JSON.parse(b.body.toString()).error).toBe(`cannot render as ${format}: ${r.message}`);
  }
  expect(b.etag).toBe(etag(b.body));
  expect(v.env(format)).toBe(b);
});
