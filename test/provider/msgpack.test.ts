/** The DynamicValue msgpack codec: every attribute type, unknown values (plain and refined), bad input. */
import fc from 'fast-check';
import { encode } from '@msgpack/msgpack';
import { decodeDynamic, decodeValue, encodeIntKeyMap, encodeValue } from '../../provider/framework/msgpack';
import type { Diagnostic } from '../../provider/framework/diagnostics';
import {
  DynamicValue,
  UNKNOWN,
  Unknown,
  typedEqual,
  type TfType,
  type TfValue,
} from '../../provider/framework/types';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (s: string): Uint8Array => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function roundTrip(type: TfType, v: TfValue): TfValue {
  const diags: Diagnostic[] = [];
  const out = decodeValue(type, encodeValue(type, v), diags);
  expect(diags).toEqual([]);
  return out;
}

describe('msgpack wire format (spec §5)', () => {
  it('matches the spec byte examples', () => {
    const obj: TfType = ['object', { id: 'string', name: 'string' }];
    expect(hex(encodeValue(obj, { id: UNKNOWN, name: 'x' }))).toBe('82a26964d40000a46e616d65a178');
    expect(hex(encodeValue('dynamic', new DynamicValue('string', 'hi')))).toBe(
      '92c40822737472696e6722a26869',
    );
    expect(hex(encodeValue('string', null))).toBe('c0');
    const diags: Diagnostic[] = [];
    const refined = decodeValue('string', fromHex('c7 03 0c 81 01 c2'), diags);
    expect(diags).toEqual([]);
    expect(refined).toBeInstanceOf(Unknown);
    expect((refined as Unknown).refinements).toEqual({ nullness: false });
  });

  it('encodes an unknown as fixext1 type 0 (d4 00 00)', () => {
    expect(hex(encodeValue('number', UNKNOWN))).toBe('d40000');
    expect(hex(encodeValue(['list', 'string'], UNKNOWN))).toBe('d40000');
  });

  it('treats any extension type as unknown and keeps refinements of type 12', () => {
    const diags: Diagnostic[] = [];
    expect(decodeValue('string', fromHex('d4 05 ff'), diags)).toBeInstanceOf(Unknown);
    const withPrefix = encodeIntKeyMap([
      [2, 'pss_'],
      [1, false],
    ]);
    const ext = Buffer.concat([Buffer.from([0xc7, withPrefix.length, 0x0c]), Buffer.from(withPrefix)]);
    const v = decodeValue('string', ext, diags) as Unknown;
    expect(v.refinements).toEqual({ nullness: false, stringPrefix: 'pss_' });
    expect(diags).toEqual([]);
    // Our own refined unknowns encode per the spec: ext type 12 with {1: false}.
    expect(hex(encodeValue('string', new Unknown({ nullness: false })))).toBe('c7030c8101c2');
  });

  it('round-trips every attribute type', () => {
    expect(roundTrip('string', 'héllo')).toBe('héllo');
    expect(roundTrip('number', 42)).toBe(42);
    expect(roundTrip('number', -1.5)).toBe(-1.5);
    expect(roundTrip('bool', true)).toBe(true);
    expect(roundTrip(['list', 'string'], ['a', 'b'])).toEqual(['a', 'b']);
    expect(roundTrip(['set', 'number'], [3, 1])).toEqual([3, 1]);
    expect(roundTrip(['map', 'bool'], { a: true, b: false })).toEqual({ a: true, b: false });
    expect(roundTrip(['tuple', ['string', 'number']], ['x', 1])).toEqual(['x', 1]);
    expect(roundTrip(['object', { a: 'string', b: ['list', 'number'] }], { a: 'x', b: [1, 2] })).toEqual({
      a: 'x',
      b: [1, 2],
    });
    const dyn = roundTrip('dynamic', new DynamicValue(['map', 'string'], { k: 'v' })) as DynamicValue;
    expect(dyn.type).toEqual(['map', 'string']);
    expect(dyn.value).toEqual({ k: 'v' });
    expect(roundTrip(['map', ['list', 'string']], { Secrets: ['read'] })).toEqual({ Secrets: ['read'] });
  });

  it('writes every object attribute, absent ones as nil', () => {
    const t: TfType = ['object', { a: 'string', b: 'number' }];
    expect(hex(encodeValue(t, { a: 'x' }))).toBe('82a161a178a162c0');
  });

  it('keeps unknowns nested anywhere', () => {
    const t: TfType = ['object', { l: ['list', 'string'], m: ['map', 'number'] }];
    const v = roundTrip(t, { l: ['a', UNKNOWN], m: UNKNOWN }) as Record<string, TfValue>;
    expect((v.l as TfValue[])[1]).toBeInstanceOf(Unknown);
    expect(v.m).toBeInstanceOf(Unknown);
  });

  it('decodes numbers sent as decimal strings and integers of every width', () => {
    const diags: Diagnostic[] = [];
    expect(decodeValue('number', encode('12345678901234567890'), diags)).toBe(Number('12345678901234567890'));
    expect(decodeValue('number', encode(2 ** 40), diags)).toBe(2 ** 40);
    expect(diags).toEqual([]);
  });

  it('decodes the JSON form, including dynamic {type, value}', () => {
    const diags: Diagnostic[] = [];
    const t: TfType = ['object', { d: 'dynamic', n: 'number' }];
    const v = decodeDynamic(
      t,
      { json: Buffer.from('{"d":{"type":"string","value":"x"},"n":3}') },
      diags,
    ) as Record<string, TfValue>;
    expect(diags).toEqual([]);
    expect((v.d as DynamicValue).value).toBe('x');
    expect(v.n).toBe(3);
  });

  it('reports bad input as diagnostics with the attribute path, never throwing', () => {
    const t: TfType = ['object', { name: 'string', tags: ['list', 'string'], n: 'number' }];
    const diags: Diagnostic[] = [];
    decodeValue(t, encode({ name: 5, tags: ['a', true], n: 'abc', extra: 1 }), diags);
    const paths = diags.map((d) => JSON.stringify(d.path));
    expect(paths).toEqual(expect.arrayContaining(['["name"]', '["tags",1]', '["n"]', '["extra"]']));
    expect(diags.every((d) => d.severity === 'ERROR')).toBe(true);

    const d2: Diagnostic[] = [];
    expect(decodeValue(t, fromHex('82 a4 6e 61'), d2)).toBeNull();
    expect(d2[0].summary).toMatch(/Invalid msgpack/);

    const d3: Diagnostic[] = [];
    decodeValue('dynamic', encode([new Uint8Array([1, 2]), 'x']), d3);
    expect(d3[0].summary).toMatch(/Invalid value/);

    const d4: Diagnostic[] = [];
    decodeDynamic(t, { json: Buffer.from('{not json') }, d4);
    expect(d4[0].summary).toMatch(/Invalid JSON/);
  });

  it('refuses to encode a value that does not fit its type', () => {
    expect(() => encodeValue('string', 5)).toThrow(/expected a string/);
    expect(() => encodeValue(['object', { a: 'string' }], { b: 'x' })).toThrow(/unexpected attribute "b"/);
    expect(() => encodeValue('number', Number.NaN)).toThrow(/expected a number/);
  });

  it('round-trips arbitrary values of arbitrary types (property)', () => {
    const prim = fc.constantFrom<TfType>('string', 'number', 'bool');
    const typeArb: fc.Arbitrary<TfType> = fc.letrec<{ t: TfType }>((tie) => ({
      t: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        prim,
        fc.tuple(fc.constantFrom('list', 'set', 'map'), tie('t')).map(([k, t]) => [k, t] as TfType),
        fc
          .dictionary(fc.string({ minLength: 1, maxLength: 5 }), tie('t'), { maxKeys: 3 })
          .map((o) => ['object', o] as TfType),
        fc.array(tie('t'), { maxLength: 3 }).map((ts) => ['tuple', ts] as TfType),
      ),
    })).t;
    const valueOf = (t: TfType): fc.Arbitrary<TfValue> => {
      const maybe = (a: fc.Arbitrary<TfValue>): fc.Arbitrary<TfValue> =>
        fc.oneof(
          { weight: 6, arbitrary: a },
          { weight: 1, arbitrary: fc.constant(null) },
          { weight: 1, arbitrary: fc.constant(UNKNOWN) },
        );
      if (t === 'string') return maybe(fc.string());
      if (t === 'number')
        return maybe(fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })));
      if (t === 'bool') return maybe(fc.boolean());
      if (t === 'dynamic') return fc.constant(null);
      const [k, inner] = t;
      if (k === 'list' || k === 'set') return maybe(fc.array(valueOf(inner), { maxLength: 3 }));
      if (k === 'map')
        return maybe(fc.dictionary(fc.string({ maxLength: 4 }), valueOf(inner), { maxKeys: 3 }));
      if (k === 'tuple') return maybe(fc.tuple(...inner.map(valueOf)) as fc.Arbitrary<TfValue>);
      return maybe(
        fc.record(
          Object.fromEntries(Object.entries(inner).map(([n, tt]) => [n, valueOf(tt)])),
        ) as fc.Arbitrary<TfValue>,
      );
    };
    const sameShape = (t: TfType, a: TfValue, b: TfValue): boolean => {
      if (a instanceof Unknown) return b instanceof Unknown;
      if (a === null) return b === null;
      if (typeof t === 'string')
        return t === 'string'
          ? a === (b as string).normalize('NFC') || (a as string).normalize('NFC') === b
          : Object.is(a, b) || a === b;
      const [k, inner] = t;
      if (k === 'list' || k === 'set' || k === 'tuple') {
        const aa = a as TfValue[];
        const bb = b as TfValue[];
        return (
          aa.length === bb.length &&
          aa.every((x, i) => sameShape(k === 'tuple' ? (inner as TfType[])[i] : (inner as TfType), x, bb[i]))
        );
      }
      const ao = a as Record<string, TfValue>;
      const bo = b as Record<string, TfValue>;
      const keys = k === 'map' ? Object.keys(ao) : Object.keys(inner as Record<string, TfType>);
      return keys.every((n) =>
        sameShape(
          k === 'map' ? (inner as TfType) : (inner as Record<string, TfType>)[n],
          ao[n] ?? null,
          bo[n] ?? null,
        ),
      );
    };
    fc.assert(
      fc.property(
        typeArb.chain((t) => valueOf(t).map((v) => [t, v] as const)),
        ([t, v]) => {
          const diags: Diagnostic[] = [];
          const back = decodeValue(t, encodeValue(t, v), diags);
          return diags.length === 0 && sameShape(t, v, back);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('compares set values without order', () => {
    expect(typedEqual(['set', 'string'], ['a', 'b'], ['b', 'a'])).toBe(true);
    expect(typedEqual(['list', 'string'], ['a', 'b'], ['b', 'a'])).toBe(false);
    expect(typedEqual('string', UNKNOWN, UNKNOWN)).toBe(false);
  });
});
