/**
 * The one hand-written piece under the generated bindings: maps a construct's camelCase configuration to the
 * provider's snake_case attributes and nested blocks, through the table the generator writes for each type.
 */

/** camelCase property → Terraform attribute, and nested blocks with their own tables. */
export interface BlockSpec {
  attributes: Record<string, string>;
  blocks: Record<string, { name: string; spec: BlockSpec }>;
}

/**
 * Configuration in Terraform's shape. Undefined properties are left out (Terraform JSON reads an absent attribute as
 * null); tokens pass through untouched for cdktf to resolve.
 */
export function toTerraform(spec: BlockSpec, config: object): Record<string, unknown> {
  const c = config as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [prop, attr] of Object.entries(spec.attributes)) {
    if (c[prop] !== undefined) out[attr] = c[prop];
  }
  for (const [prop, { name, spec: inner }] of Object.entries(spec.blocks)) {
    const v = c[prop];
    if (v === undefined) continue;
    out[name] = Array.isArray(v)
      ? v.map((item) => (isPlainObject(item) ? toTerraform(inner, item) : item))
      : isPlainObject(v)
        ? toTerraform(inner, v)
        : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is object {
  return v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;
}
