/**
 * Declarative schemas: resources, data sources and ephemeral resources declare their attributes here, and the
 * framework derives the wire schema, the msgpack type, planning and validation from the declaration.
 */
import { error, type AttrPath, type Diagnostic } from './diagnostics';
import { containsUnknown, isObjectValue, type TfType, type TfValue } from './types';

/** Plan modifiers (spec §6.3): how an attribute behaves when Terraform plans a change. */
export type PlanModifier =
  /** A change to this attribute destroys and re-creates the resource. */
  | 'requiresReplace'
  /** A computed attribute keeps its prior value instead of becoming unknown on update. */
  | 'useStateForUnknown';

/** Checks a known, non-null configuration value; returns problems as diagnostics at `path`. */
export type Validator = (value: TfValue, path: AttrPath) => Diagnostic[];

export interface AttributeDef {
  type: TfType;
  description: string;
  required?: boolean;
  optional?: boolean;
  computed?: boolean;
  sensitive?: boolean;
  /** Never stored in plan or state (Terraform ≥ 1.11, spec §6.6). */
  writeOnly?: boolean;
  deprecated?: boolean;
  /** Planned when the configuration leaves an optional+computed attribute null. */
  default?: TfValue;
  planModifiers?: PlanModifier[];
  validators?: Validator[];
}

export type NestingMode = 'SINGLE' | 'LIST' | 'SET' | 'MAP' | 'GROUP';

export interface NestedBlockDef {
  nesting: NestingMode;
  block: BlockDef;
  minItems?: number;
  maxItems?: number;
  /** Any change inside the block replaces the resource. */
  requiresReplace?: boolean;
}

export interface BlockDef {
  description?: string;
  attributes: Record<string, AttributeDef>;
  blocks?: Record<string, NestedBlockDef>;
}

export interface SchemaDef {
  version: number;
  block: BlockDef;
}

/** The object type a block's values have on the wire. */
export function blockType(block: BlockDef): TfType {
  const attrs: Record<string, TfType> = {};
  for (const [name, a] of Object.entries(block.attributes)) attrs[name] = a.type;
  for (const [name, nb] of Object.entries(block.blocks ?? {})) {
    const inner = blockType(nb.block);
    attrs[name] =
      nb.nesting === 'LIST'
        ? ['list', inner]
        : nb.nesting === 'SET'
          ? ['set', inner]
          : nb.nesting === 'MAP'
            ? ['map', inner]
            : inner;
  }
  return ['object', attrs];
}

/** JSON type constraint bytes for `Schema.Attribute.type`. */
function typeBytes(t: TfType): Buffer {
  return Buffer.from(JSON.stringify(t), 'utf8');
}

/** The tfplugin6.Schema.Block message (proto-loader field names). */
function blockToWire(block: BlockDef): Record<string, unknown> {
  return {
    version: 0,
    description: block.description ?? '',
    description_kind: 'MARKDOWN',
    deprecated: false,
    attributes: Object.entries(block.attributes).map(([name, a]) => ({
      name,
      type: typeBytes(a.type),
      description: a.description,
      description_kind: 'MARKDOWN',
      required: !!a.required,
      optional: !!a.optional,
      computed: !!a.computed,
      sensitive: !!a.sensitive,
      deprecated: !!a.deprecated,
      write_only: !!a.writeOnly,
    })),
    block_types: Object.entries(block.blocks ?? {}).map(([name, nb]) => ({
      type_name: name,
      block: blockToWire(nb.block),
      nesting: nb.nesting,
      min_items: nb.minItems ?? 0,
      max_items: nb.maxItems ?? 0,
    })),
  };
}

export function schemaToWire(s: SchemaDef): Record<string, unknown> {
  return { version: s.version, block: blockToWire(s.block) };
}

/**
 * Checks the declaration itself: exactly one of required / optional / computed / optional+computed, and
 * write-only only where Terraform allows it. Run by the protocol tests over every schema.
 */
export function checkSchema(s: SchemaDef, where: string): string[] {
  const problems: string[] = [];
  const walk = (b: BlockDef, prefix: string, inSet: boolean): void => {
    for (const [name, a] of Object.entries(b.attributes)) {
      const p = `${where}.${prefix}${name}`;
      const flags = [a.required, a.optional, a.computed].filter(Boolean).length;
      if (a.required && (a.optional || a.computed))
        problems.push(`${p}: required excludes optional and computed`);
      if (flags === 0) problems.push(`${p}: needs required, optional or computed`);
      if (a.writeOnly && (a.computed || inSet))
        problems.push(`${p}: write-only cannot be computed or inside a set`);
      if (a.default !== undefined && !(a.optional && a.computed))
        problems.push(`${p}: a default needs optional+computed`);
    }
    for (const [name, nb] of Object.entries(b.blocks ?? {}))
      walk(nb.block, `${prefix}${name}.`, inSet || nb.nesting === 'SET');
  };
  walk(s.block, '', false);
  return problems;
}

/** Reports configured values that are not allowed: required nulls and failing validators. */
export function validateBlock(block: BlockDef, config: TfValue, path: AttrPath, diags: Diagnostic[]): void {
  if (!isObjectValue(config)) return;
  const obj = config;
  for (const [name, a] of Object.entries(block.attributes)) {
    const v = obj[name] ?? null;
    const p = [...path, name];
    if (v === null) {
      if (a.required)
        diags.push(error('Missing required argument', `The argument "${name}" is required.`, p));
      continue;
    }
    if (a.computed && !a.optional && !a.required) {
      diags.push(
        error('Invalid configuration', `"${name}" is computed by the provider and cannot be set.`, p),
      );
      continue;
    }
    if (isKnownDeep(v)) for (const val of a.validators ?? []) diags.push(...val(v, p));
  }
  for (const [name, nb] of Object.entries(block.blocks ?? {})) {
    const v = obj[name] ?? null;
    const p = [...path, name];
    if (Array.isArray(v)) {
      if (nb.maxItems && v.length > nb.maxItems) {
        diags.push(error('Too many blocks', `At most ${nb.maxItems} "${name}" block(s) are allowed.`, p));
      }
      if (nb.minItems && v.length < nb.minItems && !v.some(containsUnknown)) {
        diags.push(error('Too few blocks', `At least ${nb.minItems} "${name}" block(s) are required.`, p));
      }
      v.forEach((el, i) => validateBlock(nb.block, el, [...p, i], diags));
    } else if (isObjectValue(v) && nb.nesting !== 'MAP') {
      validateBlock(nb.block, v, p, diags);
    } else if (isObjectValue(v)) {
      for (const [k, el] of Object.entries(v)) validateBlock(nb.block, el, [...p, { key: k }], diags);
    }
  }
}

function isKnownDeep(v: TfValue): boolean {
  return !containsUnknown(v);
}

/** Names of write-only attributes that hold a value (top level only; write-only is not allowed in sets). */
export function writeOnlySet(block: BlockDef, config: TfValue): string[] {
  if (!isObjectValue(config)) return [];
  const obj = config;
  return Object.entries(block.attributes)
    .filter(([name, a]) => a.writeOnly && (obj[name] ?? null) !== null)
    .map(([name]) => name);
}
