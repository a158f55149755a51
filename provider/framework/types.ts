/**
 * Terraform type constraints and values as the provider framework sees them (spec §5.1).
 *
 * A type is written exactly as its JSON encoding in `Schema.Attribute.type`: `"string"`, `["list","string"]`,
 * `["object",{"a":"bool"}]`, and so on. Values are plain JavaScript: `null` for null, the `Unknown` class for
 * unknown values, arrays for list/set/tuple, plain objects for map/object, and `DynamicValue` for `dynamic`.
 */

export type PrimitiveType = 'string' | 'number' | 'bool' | 'dynamic';
export type TfType =
  | PrimitiveType
  | ['list', TfType]
  | ['set', TfType]
  | ['map', TfType]
  | ['object', { [name: string]: TfType }]
  | ['tuple', TfType[]];

/** Refinements Terraform may attach to an unknown value (extension type 12, spec §5.3). */
export interface Refinements {
  /** true = definitely null, false = definitely not null. */
  nullness?: boolean;
  stringPrefix?: string;
  numberLower?: [number, boolean];
  numberUpper?: [number, boolean];
  lengthLower?: number;
  lengthUpper?: number;
}

/** A value not known until apply. */
export class Unknown {
  constructor(readonly refinements?: Refinements) {}
}

/** The plain unknown value (encoded as `d4 00 00`). */
export const UNKNOWN = new Unknown();

/** A value of type `dynamic`: the concrete type travels with the value. */
export class DynamicValue {
  constructor(
    readonly type: TfType,
    readonly value: TfValue,
  ) {}
}

export type TfValue = null | Unknown | DynamicValue | string | number | boolean | TfValue[] | TfObject;
export interface TfObject {
  [name: string]: TfValue;
}

export function isUnknown(v: unknown): v is Unknown {
  return v instanceof Unknown;
}

/** True when the value or anything inside it is unknown. */
export function containsUnknown(v: TfValue): boolean {
  if (v instanceof Unknown) return true;
  if (v instanceof DynamicValue) return containsUnknown(v.value);
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v !== null && typeof v === 'object') return Object.values(v).some(containsUnknown);
  return false;
}

export function isObjectValue(v: TfValue | undefined): v is TfObject {
  return (
    v !== null &&
    typeof v === 'object' &&
    !Array.isArray(v) &&
    !(v instanceof Unknown) &&
    !(v instanceof DynamicValue)
  );
}

/** Structural equality; unknown equals nothing (not even another unknown), as Terraform compares plans. */
export function valuesEqual(a: TfValue | undefined, b: TfValue | undefined, setSemantics = false): boolean {
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  if (a instanceof Unknown || b instanceof Unknown) return false;
  if (a === null || b === null) return a === b;
  if (a instanceof DynamicValue || b instanceof DynamicValue) {
    if (!(a instanceof DynamicValue && b instanceof DynamicValue)) return false;
    return JSON.stringify(a.type) === JSON.stringify(b.type) && valuesEqual(a.value, b.value);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    if (setSemantics) {
      const used = new Set<number>();
      return a.every((x) => {
        const i = b.findIndex((y, j) => !used.has(j) && valuesEqual(x, y));
        if (i < 0) return false;
        used.add(i);
        return true;
      });
    }
    return a.every((x, i) => valuesEqual(x, b[i]));
  }
  if (typeof a === 'object' || typeof b === 'object') {
    if (typeof a !== 'object' || typeof b !== 'object') return false;
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) if (!valuesEqual(a[k] ?? null, b[k] ?? null)) return false;
    return true;
  }
  return a === b;
}

/** Equality under a type: sets compare without order, recursively. */
export function typedEqual(type: TfType, a: TfValue | undefined, b: TfValue | undefined): boolean {
  a = a ?? null;
  b = b ?? null;
  if (a instanceof Unknown || b instanceof Unknown) return false;
  if (a === null || b === null) return a === b;
  if (typeof type === 'string') return valuesEqual(a, b);
  const [kind, inner] = type;
  if (!Array.isArray(a) && (kind === 'list' || kind === 'set' || kind === 'tuple')) return false;
  switch (kind) {
    case 'list':
    case 'tuple': {
      const aa = a as TfValue[];
      const bb = b as TfValue[];
      if (!Array.isArray(bb) || aa.length !== bb.length) return false;
      return aa.every((x, i) =>
        typedEqual(kind === 'list' ? (inner as TfType) : (inner as TfType[])[i], x, bb[i]),
      );
    }
    case 'set': {
      const aa = a as TfValue[];
      const bb = b as TfValue[];
      if (!Array.isArray(bb) || aa.length !== bb.length) return false;
      const used = new Set<number>();
      return aa.every((x) => {
        const i = bb.findIndex((y, j) => !used.has(j) && typedEqual(inner as TfType, x, y));
        if (i < 0) return false;
        used.add(i);
        return true;
      });
    }
    case 'map':
    case 'object': {
      if (!isObjectValue(a) || !isObjectValue(b)) return false;
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const k of keys) {
        const t = kind === 'map' ? (inner as TfType) : (inner as Record<string, TfType>)[k];
        if (t === undefined) return false;
        if (!typedEqual(t, a[k], b[k])) return false;
      }
      return true;
    }
  }
}

/** Human-readable name of a type, for diagnostics. */
export function typeName(t: TfType): string {
  if (typeof t === 'string') return t;
  const [kind, inner] = t;
  if (kind === 'object')
    return `object({${Object.entries(inner)
      .map(([k, v]) => `${k}=${typeName(v)}`)
      .join(', ')}})`;
  if (kind === 'tuple') return `tuple([${(inner as TfType[]).map(typeName).join(', ')}])`;
  return `${kind}(${typeName(inner as TfType)})`;
}
