/**
 * The E2E secret list is read by plain code (`readEncryptedSecret`) with zod's `EncryptedSecretSchema` behind it for
 * what the reader refuses. These tests hold the two to the same answer on every field and on generated objects:
 * the reader accepts exactly what zod accepts and gives the same output, and the list's errors are zod's, at the
 * item's index.
 */
import fc from 'fast-check';
import { EncryptedSecretListSchema, EncryptedSecretSchema, readEncryptedSecret } from '../../core/schemas';

/** What zod says of one item: its output, or undefined when it reports an issue. */
const zodRead = (raw: unknown): unknown => {
  const r = EncryptedSecretSchema.safeParse(raw);
  return r.success ? r.data : undefined;
};

const base = { id: 'id-1', key: 'ph:v1:k', value: 'ph:v1:v' };

/** Values of every JSON shape (and absent), to put in each field. */
const shapes: unknown[] = [
  undefined,
  null,
  '',
  'text',
  0,
  3,
  1.5,
  -7,
  2 ** 60,
  true,
  false,
  [],
  ['a', 'b'],
  ['a', 1],
  {},
  { value: 'ov' },
  { value: 'ov', isActive: true, id: 'o1', created_at: 'c', updatedAt: 'u' },
  { value: 'ov', is_active: 'yes' },
  { value: 1 },
  { value: 'ov', isActive: false, is_active: true, extra: 1 },
];

const fields = [
  'id',
  'key',
  'value',
  'comment',
  'tags',
  'override',
  'type',
  'lifecycle',
  'path',
  'key_digest',
  'keyDigest',
  'version',
  'created_at',
  'createdAt',
  'updated_at',
  'updatedAt',
  'environment',
  'folder',
  'unknown_field',
];

describe('readEncryptedSecret agrees with EncryptedSecretSchema', () => {
  test.each(fields)('every JSON shape in %s', (field) => {
    let accepted = 0;
    let refused = 0;
    for (const v of shapes) {
      const item: Record<string, unknown> = { ...base };
      if (v === undefined) delete item[field];
      else item[field] = v;
      const expected = zodRead(item);
      expect({ field, v, got: readEncryptedSecret(item) }).toEqual({ field, v, got: expected });
      if (expected === undefined) refused++;
      else accepted++;
    }
    // Each field sees both answers (unknown fields and fully optional text fields are accepted more often).
    expect(accepted).toBeGreaterThan(0);
    if (field !== 'unknown_field') expect(refused).toBeGreaterThan(0);
  });

  test('non-objects are refused by both', () => {
    for (const v of [null, undefined, 'x', 1, [], [base], true]) {
      expect(readEncryptedSecret(v)).toBeUndefined();
      expect(zodRead(v)).toBeUndefined();
    }
  });

  test('generated objects: same verdict, same output', () => {
    const anyValue = fc.oneof(
      fc.constantFrom(...shapes.filter((s) => s !== undefined)),
      fc.string({ maxLength: 4 }),
      fc.integer(),
      fc.array(fc.string({ maxLength: 2 }), { maxLength: 3 }),
    );
    const text = fc.string({ maxLength: 4 });
    /** A value the schema accepts in `field` (most of the time), so whole objects pass often enough. */
    const validFor = (field: string): fc.Arbitrary<unknown> => {
      if (field === 'comment' || field === 'folder') return fc.option(text);
      if (field === 'tags') return fc.option(fc.array(text, { maxLength: 3 }));
      if (field === 'version') return fc.integer();
      if (field === 'override')
        return fc.option(
          fc.record(
            { value: text, id: text, isActive: fc.boolean(), is_active: fc.boolean(), createdAt: text },
            { requiredKeys: ['value'] },
          ),
        );
      return text;
    };
    const item = fc.record(
      Object.fromEntries(
        fields.map((f) => [
          f,
          fc.oneof({ weight: 12, arbitrary: validFor(f) }, { weight: 1, arbitrary: anyValue }),
        ]),
      ) as Record<string, fc.Arbitrary<unknown>>,
      { requiredKeys: [] },
    );
    // Mostly valid items too: the three required fields as text, the rest generated.
    const mostlyValid = item.map((o) => ({ ...o, id: 'i', key: 'k', value: 'v' }));
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(item, mostlyValid), (o) => {
        const expected = zodRead(o);
        if (expected !== undefined) accepted++;
        else refused++;
        expect(readEncryptedSecret(o)).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
    expect(accepted).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(300);
  });
});

describe('EncryptedSecretListSchema', () => {
  test('drops dynamic secrets and normalises both casings', () => {
    const r = EncryptedSecretListSchema.parse([
      { ...base, key_digest: 'd1', created_at: 'c' },
      { type: 'dynamic', id: 'dyn' },
      { ...base, id: 'id-2', keyDigest: 'd2', override: { value: 'o', is_active: true } },
    ]);
    expect(r.map((s) => [s.id, s.keyDigest, s.override?.isActive ?? null])).toEqual([
      ['id-1', 'd1', null],
      ['id-2', 'd2', true],
    ]);
  });

  test("a bad item fails the list with zod's issue at the item's index", () => {
    const r = EncryptedSecretListSchema.safeParse([base, base, { ...base, tags: ['a', 2] }]);
    expect(r.success).toBe(false);
    if (r.success) return;
    expect(r.error.issues.map((i) => [i.path.join('.'), i.code])).toEqual([['2.tags.1', 'invalid_type']]);
  });

  test('not an array: refused with the invalid_type issue zod gives for an array', () => {
    for (const v of [{ secrets: [] }, null, 'x']) {
      const r = EncryptedSecretListSchema.safeParse(v);
      expect(r.success).toBe(false);
      if (!r.success)
        expect(r.error.issues[0]).toMatchObject({ code: 'invalid_type', expected: 'array', path: [] });
    }
  });
});
