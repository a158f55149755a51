/**
 * The `DynamicValue` wire format (spec §5): msgpack encoded under a schema type, with unknown values as
 * extension type 0 (`d4 00 00`) and refined unknowns as extension type 12. Decoding checks every value against
 * the expected type and reports problems as diagnostics with the attribute path, so bad input never crashes.
 */
import { decode, encode, ExtData } from '@msgpack/msgpack';
import { error, type AttrPath, type Diagnostic } from './diagnostics';
import { DynamicValue, Unknown, typeName, type Refinements, type TfType, type TfValue } from './types';

const PLAIN_UNKNOWN = new ExtData(0, new Uint8Array([0]));

/** Raised when a value does not fit its type while encoding (a provider bug, reported as a diagnostic). */
export class EncodeError extends Error {
  constructor(
    message: string,
    readonly path: AttrPath,
  ) {
    super(message);
    this.name = 'EncodeError';
  }
}

/** Encodes an integer-keyed msgpack map (the refinement payload); JS objects would give string keys. */
export function encodeIntKeyMap(entries: Array<[number, unknown]>): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([0x80 | entries.length])];
  for (const [k, v] of entries) parts.push(new Uint8Array([k]), encode(v));
  return Buffer.concat(parts);
}

function refinedUnknown(r: Refinements): ExtData {
  const m: Array<[number, unknown]> = [];
  if (r.nullness !== undefined) m.push([1, r.nullness]);
  if (r.stringPrefix !== undefined) m.push([2, r.stringPrefix]);
  if (r.numberLower) m.push([3, r.numberLower]);
  if (r.numberUpper) m.push([4, r.numberUpper]);
  if (r.lengthLower !== undefined) m.push([5, r.lengthLower]);
  if (r.lengthUpper !== undefined) m.push([6, r.lengthUpper]);
  if (m.length === 0) return PLAIN_UNKNOWN;
  return new ExtData(12, encodeIntKeyMap(m));
}

/** Converts a value to the structure @msgpack/msgpack encodes, checking it against `type`. */
function toWire(type: TfType, v: TfValue | undefined, path: AttrPath): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Unknown) return v.refinements ? refinedUnknown(v.refinements) : PLAIN_UNKNOWN;
  if (type === 'dynamic') {
    if (!(v instanceof DynamicValue))
      throw new EncodeError('a dynamic value needs its type (DynamicValue)', path);
    if (v.value instanceof Unknown) return PLAIN_UNKNOWN;
    return [new TextEncoder().encode(JSON.stringify(v.type)), toWire(v.type, v.value, path)];
  }
  if (type === 'string') {
    if (typeof v !== 'string') throw new EncodeError(`expected a string, got ${describe(v)}`, path);
    return v.normalize('NFC');
  }
  if (type === 'number') {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new EncodeError(`expected a number, got ${describe(v)}`, path);
    return v;
  }
  if (type === 'bool') {
    if (typeof v !== 'boolean') throw new EncodeError(`expected a bool, got ${describe(v)}`, path);
    return v;
  }
  const [kind, inner] = type;
  switch (kind) {
    case 'list':
    case 'set':
      if (!Array.isArray(v)) throw new EncodeError(`expected a ${kind}, got ${describe(v)}`, path);
      return v.map((x, i) => toWire(inner, x, [...path, i]));
    case 'tuple':
      if (!Array.isArray(v) || v.length !== inner.length)
        throw new EncodeError(`expected ${typeName(type)}`, path);
      return v.map((x, i) => toWire(inner[i], x, [...path, i]));
    case 'map': {
      if (typeof v !== 'object' || Array.isArray(v) || v instanceof DynamicValue) {
        throw new EncodeError(`expected a map, got ${describe(v)}`, path);
      }
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = toWire(inner, x, [...path, { key: k }]);
      return out;
    }
    case 'object': {
      if (typeof v !== 'object' || Array.isArray(v) || v instanceof DynamicValue) {
        throw new EncodeError(`expected an object, got ${describe(v)}`, path);
      }
      for (const k of Object.keys(v)) {
        if (!(k in inner)) throw new EncodeError(`unexpected attribute "${k}"`, [...path, k]);
      }
      // Every attribute of the type is present; absent ones are nil (spec §5.2).
      const out: Record<string, unknown> = {};
      for (const [k, t] of Object.entries(inner)) out[k] = toWire(t, v[k], [...path, k]);
      return out;
    }
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'binary data';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Encodes a value of `type` as msgpack. */
export function encodeValue(type: TfType, value: TfValue): Uint8Array {
  return encode(toWire(type, value, []));
}

function parseRefinements(data: Uint8Array): Refinements | undefined {
  let raw: unknown;
  try {
    raw = decode(data);
  } catch {
    return undefined;
  }
  if (raw === null || typeof raw !== 'object') return undefined;
  const m = raw as Record<string, unknown>;
  const r: Refinements = {};
  if (typeof m['1'] === 'boolean') r.nullness = m['1'];
  if (typeof m['2'] === 'string') r.stringPrefix = m['2'];
  const bound = (x: unknown): [number, boolean] | undefined =>
    Array.isArray(x) && x.length === 2 && typeof x[0] === 'number' && typeof x[1] === 'boolean'
      ? [x[0], x[1]]
      : undefined;
  r.numberLower = bound(m['3']);
  r.numberUpper = bound(m['4']);
  if (typeof m['5'] === 'number') r.lengthLower = m['5'];
  if (typeof m['6'] === 'number') r.lengthUpper = m['6'];
  for (const k of Object.keys(r) as Array<keyof Refinements>) if (r[k] === undefined) delete r[k];
  return Object.keys(r).length > 0 ? r : undefined;
}

function isPlainMap(raw: unknown): raw is Record<string, unknown> {
  return (
    raw !== null &&
    typeof raw === 'object' &&
    !Array.isArray(raw) &&
    !(raw instanceof Uint8Array) &&
    !(raw instanceof ExtData) &&
    !(raw instanceof Date)
  );
}

/**
 * Converts decoded msgpack (or parsed JSON when `json` is set) to a value of `type`, collecting type errors.
 * In JSON form a dynamic value is `{"type": T, "value": V}` (spec §5.4).
 */
export function fromRaw(
  type: TfType,
  raw: unknown,
  path: AttrPath,
  diags: Diagnostic[],
  json = false,
): TfValue {
  const bad = (what: string): TfValue => {
    diags.push(
      error(
        'Invalid value from Terraform',
        `Expected ${what} at ${path.length ? pathText(path) : 'the top level'}, got ${describe(raw)}.`,
        path,
      ),
    );
    return null;
  };
  if (raw === null || raw === undefined) return null;
  if (raw instanceof ExtData) {
    return new Unknown(
      raw.type === 12 && raw.data instanceof Uint8Array ? parseRefinements(raw.data) : undefined,
    );
  }
  // The default codec turns extension type -1 into a Date; Terraform treats every extension as unknown.
  if (raw instanceof Date) return new Unknown();
  if (type === 'dynamic') {
    if (json) {
      if (!isPlainMap(raw) || !('type' in raw)) return bad('a dynamic value {"type", "value"}');
      const t = raw.type as TfType;
      if (!isValidType(t)) return bad('a valid type constraint');
      return new DynamicValue(t, fromRaw(t, raw.value, path, diags, json));
    }
    if (!Array.isArray(raw) || raw.length !== 2 || !(raw[0] instanceof Uint8Array)) {
      return bad('a dynamic value [type JSON, value]');
    }
    let t: unknown;
    try {
      t = JSON.parse(new TextDecoder().decode(raw[0]));
    } catch {
      return bad('a JSON type constraint in a dynamic value');
    }
    if (!isValidType(t)) return bad('a valid type constraint in a dynamic value');
    return new DynamicValue(t, fromRaw(t, raw[1], path, diags, json));
  }
  if (type === 'string') return typeof raw === 'string' ? raw : bad('a string');
  if (type === 'number') {
    if (typeof raw === 'number') return raw;
    if (typeof raw === 'bigint') return Number(raw);
    // Numbers beyond float64 travel as decimal strings (spec §5.2).
    if (typeof raw === 'string' && raw.trim() !== '' && Number.isFinite(Number(raw))) return Number(raw);
    return bad('a number');
  }
  if (type === 'bool') return typeof raw === 'boolean' ? raw : bad('a bool');
  const [kind, inner] = type;
  switch (kind) {
    case 'list':
    case 'set':
      if (!Array.isArray(raw)) return bad(`a ${kind}`);
      return raw.map((x, i) => fromRaw(inner, x, [...path, i], diags, json));
    case 'tuple':
      if (!Array.isArray(raw) || raw.length !== inner.length)
        return bad(`a tuple of ${inner.length} elements`);
      return raw.map((x, i) => fromRaw(inner[i], x, [...path, i], diags, json));
    case 'map': {
      if (!isPlainMap(raw)) return bad('a map');
      const out: Record<string, TfValue> = {};
      for (const [k, x] of Object.entries(raw))
        out[k] = fromRaw(inner, x, [...path, { key: k }], diags, json);
      return out;
    }
    case 'object': {
      if (!isPlainMap(raw)) return bad('an object');
      const out: Record<string, TfValue> = {};
      for (const k of Object.keys(raw)) {
        if (!(k in inner)) {
          diags.push(
            error('Unsupported attribute', `An attribute named "${k}" is not expected here.`, [...path, k]),
          );
        }
      }
      for (const [k, t] of Object.entries(inner)) out[k] = fromRaw(t, raw[k], [...path, k], diags, json);
      return out;
    }
  }
  return bad(typeName(type));
}

function pathText(path: AttrPath): string {
  return path
    .map((s) => (typeof s === 'string' ? `.${s}` : typeof s === 'number' ? `[${s}]` : `["${s.key}"]`))
    .join('')
    .replace(/^\./, '');
}

/** Checks that `t` is a well-formed type constraint (it may come from the client). */
export function isValidType(t: unknown): t is TfType {
  if (t === 'string' || t === 'number' || t === 'bool' || t === 'dynamic') return true;
  if (!Array.isArray(t) || t.length !== 2) return false;
  const [kind, inner] = t;
  if (kind === 'list' || kind === 'set' || kind === 'map') return isValidType(inner);
  if (kind === 'tuple') return Array.isArray(inner) && inner.every(isValidType);
  if (kind === 'object') {
    return (
      inner !== null &&
      typeof inner === 'object' &&
      !Array.isArray(inner) &&
      Object.values(inner).every(isValidType)
    );
  }
  return false;
}

/** Decodes msgpack bytes as a value of `type`; malformed bytes become a diagnostic. */
export function decodeValue(type: TfType, bytes: Uint8Array, diags: Diagnostic[]): TfValue {
  let raw: unknown;
  try {
    raw = decode(bytes);
  } catch (e) {
    diags.push(
      error('Invalid msgpack from Terraform', `The value could not be decoded: ${(e as Error).message}`),
    );
    return null;
  }
  return fromRaw(type, raw, [], diags);
}

/** Decodes a `DynamicValue` message: msgpack when present, else JSON (spec §5). */
export function decodeDynamic(
  type: TfType,
  dv: { msgpack?: Uint8Array | null; json?: Uint8Array | null } | null | undefined,
  diags: Diagnostic[],
): TfValue {
  if (!dv) return null;
  if (dv.msgpack && dv.msgpack.length > 0) return decodeValue(type, dv.msgpack, diags);
  if (dv.json && dv.json.length > 0) {
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(dv.json).toString('utf8'));
    } catch (e) {
      diags.push(
        error('Invalid JSON from Terraform', `The value could not be parsed: ${(e as Error).message}`),
      );
      return null;
    }
    return fromRaw(type, raw, [], diags, true);
  }
  return null;
}
