/**
 * Schema-driven planning (spec §6.3): from Terraform's proposed new state to a planned state that obeys
 * Terraform's validity rules, plus the attribute paths whose change forces replacement.
 */
import type { AttrPath } from './diagnostics';
import type { BlockDef } from './schema';
import { UNKNOWN, isObjectValue, typedEqual, type TfObject, type TfValue } from './types';
import { blockType } from './schema';

/** Applies defaults and nulls write-only attributes: what the configuration asks for, before computed values. */
function baseValues(block: BlockDef, proposed: TfObject, config: TfObject): TfObject {
  const out: TfObject = { ...proposed };
  for (const [name, a] of Object.entries(block.attributes)) {
    const cfg = config[name] ?? null;
    if (a.writeOnly) out[name] = null;
    else if (a.computed && cfg === null && a.default !== undefined) out[name] = a.default;
  }
  return out;
}

/** True when any attribute a person can set differs between `a` and `b`. */
function configurableChanged(block: BlockDef, a: TfObject, b: TfObject): boolean {
  for (const [name, def] of Object.entries(block.attributes)) {
    if (def.writeOnly || !(def.required || def.optional)) continue;
    if (!typedEqual(def.type, a[name], b[name])) return true;
  }
  const t = blockType(block);
  if (typeof t !== 'string' && t[0] === 'object') {
    for (const name of Object.keys(block.blocks ?? {})) {
      if (!typedEqual(t[1][name], a[name], b[name])) return true;
    }
  }
  return false;
}

export interface PlanResult {
  planned: TfObject;
  requiresReplace: AttrPath[];
}

/**
 * Plans one object. `prior` null means create. Computed attributes the configuration leaves null become unknown
 * on create and on any change (unless `useStateForUnknown`), and keep their prior value otherwise.
 */
export function planObject(
  block: BlockDef,
  prior: TfObject | null,
  proposed: TfObject,
  config: TfObject,
): PlanResult {
  const base = baseValues(block, proposed, config);
  const changed = prior === null || configurableChanged(block, base, prior);
  const requiresReplace: AttrPath[] = [];
  if (prior !== null) {
    for (const [name, a] of Object.entries(block.attributes)) {
      if (a.planModifiers?.includes('requiresReplace') && !typedEqual(a.type, base[name], prior[name])) {
        requiresReplace.push([name]);
      }
    }
    const t = blockType(block);
    for (const [name, nb] of Object.entries(block.blocks ?? {})) {
      if (
        nb.requiresReplace &&
        typeof t !== 'string' &&
        t[0] === 'object' &&
        !typedEqual(t[1][name], base[name], prior[name])
      ) {
        requiresReplace.push([name]);
      }
    }
  }
  return {
    planned: fillComputed(block, requiresReplace.length > 0 ? null : prior, base, config, changed),
    requiresReplace,
  };
}

/** Sets computed attributes per the rules above; `prior` null plans a fresh object (create or replacement). */
export function fillComputed(
  block: BlockDef,
  prior: TfObject | null,
  base: TfObject,
  config: TfObject,
  changed: boolean,
): TfObject {
  const out: TfObject = { ...base };
  for (const [name, a] of Object.entries(block.attributes)) {
    if (!a.computed || (config[name] ?? null) !== null || a.default !== undefined) continue;
    if (prior === null) out[name] = UNKNOWN;
    else if (a.planModifiers?.includes('useStateForUnknown')) out[name] = prior[name] ?? null;
    else out[name] = changed ? UNKNOWN : (prior[name] ?? null);
  }
  return out;
}

/** Replaces null attributes of `obj` per schema so it has every key (missing nested values stay null). */
export function completeObject(block: BlockDef, obj: TfValue): TfObject {
  const src = isObjectValue(obj) ? obj : {};
  const out: TfObject = {};
  for (const name of Object.keys(block.attributes)) out[name] = src[name] ?? null;
  for (const name of Object.keys(block.blocks ?? {})) out[name] = src[name] ?? null;
  return out;
}
