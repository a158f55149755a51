/**
 * The provider framework: resources, data sources and ephemeral resources are declared with a schema and a few
 * async functions; this module implements every tfplugin6.Provider RPC on top of them (spec §6, §7).
 * Handlers never throw to gRPC: every failure becomes a diagnostic.
 */
import {
  DiagnosticsError,
  error,
  hasErrors,
  toWire,
  type AttrPath,
  type Diagnostic,
  type WireDiagnostic,
} from './diagnostics';
import { decodeDynamic, encodeValue, EncodeError, fromRaw } from './msgpack';
import { completeObject, fillComputed, planObject } from './plan';
import { blockType, checkSchema, schemaToWire, validateBlock, writeOnlySet, type SchemaDef } from './schema';
import { containsUnknown, isObjectValue, type TfObject, type TfType, type TfValue } from './types';

export interface PlanContext {
  prior: TfObject | null;
  planned: TfObject;
  config: TfObject;
  /** Paths already found to force replacement. */
  requiresReplace: AttrPath[];
}

export interface ResourceDef<C> {
  typeName: string;
  schema: SchemaDef;
  /** How `terraform import` ids look, for messages and docs. */
  importIdFormat?: string;
  /** Checks beyond single attributes (conflicting or dependent arguments). Values may be unknown. */
  validate?(config: TfObject, diags: Diagnostic[]): void;
  /** Adjusts the plan (e.g. a time-based replacement); returns extra paths that force replacement. */
  modifyPlan?(ctx: PlanContext): AttrPath[] | void;
  create(client: C, planned: TfObject, config: TfObject): Promise<TfObject>;
  /** Returns null when the remote object is gone, so Terraform plans to create it again. */
  read(client: C, state: TfObject): Promise<TfObject | null>;
  update(client: C, prior: TfObject, planned: TfObject, config: TfObject): Promise<TfObject>;
  delete(client: C, state: TfObject): Promise<void>;
  /** Turns an import id into a partial state that `read` can complete. */
  importState?(id: string): TfObject;
}

export interface DataSourceDef<C> {
  typeName: string;
  schema: SchemaDef;
  validate?(config: TfObject, diags: Diagnostic[]): void;
  read(client: C, config: TfObject): Promise<TfObject>;
}

export interface EphemeralOpenResult {
  result: TfObject;
  private?: Buffer;
  renewAt?: Date;
}

export interface EphemeralDef<C> {
  typeName: string;
  schema: SchemaDef;
  validate?(config: TfObject, diags: Diagnostic[]): void;
  open(client: C, config: TfObject): Promise<EphemeralOpenResult>;
  renew?(client: C, priv: Buffer | undefined): Promise<{ private?: Buffer; renewAt?: Date }>;
  close(client: C, priv: Buffer | undefined): Promise<void>;
}

export interface ProviderDef<C> {
  schema: SchemaDef;
  validate?(config: TfObject, diags: Diagnostic[]): void;
  /** Builds the client from the provider configuration (values may be unknown during plan). */
  configure(config: TfObject, terraformVersion: string, diags: Diagnostic[]): Promise<C | undefined>;
  resources: ResourceDef<C>[];
  dataSources: DataSourceDef<C>[];
  ephemeralResources: EphemeralDef<C>[];
  /** Turns an error thrown by a handler into diagnostics (API errors, typed errors). */
  errorToDiagnostics(e: unknown, op: string, typeName: string): Diagnostic[];
}

type Wire = Record<string, unknown>;
interface DynamicWire {
  msgpack?: Uint8Array | null;
  json?: Uint8Array | null;
}

/** Builds the handler table for the tfplugin6.Provider service. */
export function buildProviderService<C>(def: ProviderDef<C>): Record<string, (req: Wire) => Promise<Wire>> {
  const resources = new Map(def.resources.map((r) => [r.typeName, r]));
  const dataSources = new Map(def.dataSources.map((r) => [r.typeName, r]));
  const ephemerals = new Map(def.ephemeralResources.map((r) => [r.typeName, r]));
  let client: C | undefined;
  let configureDiags: Diagnostic[] = [];
  let schemaCache: Wire | undefined;

  const problems = [
    ...checkSchema(def.schema, 'provider'),
    ...def.resources.flatMap((r) => checkSchema(r.schema, r.typeName)),
    ...def.dataSources.flatMap((r) => checkSchema(r.schema, r.typeName)),
    ...def.ephemeralResources.flatMap((r) => checkSchema(r.schema, r.typeName)),
  ];
  if (problems.length > 0) throw new Error(`invalid provider schema: ${problems.join('; ')}`);

  const encode = (type: TfType, v: TfValue): { msgpack: Uint8Array } => ({ msgpack: encodeValue(type, v) });

  const needClient = (): C => {
    if (client === undefined) {
      throw new DiagnosticsError(
        configureDiags.length > 0
          ? configureDiags
          : [
              error(
                'Provider not configured',
                'The provider must be configured before resources can be managed.',
              ),
            ],
      );
    }
    return client;
  };

  const unknownType = (kind: string, name: string): Wire => ({
    diagnostics: [toWire(error(`Unknown ${kind} type`, `This provider has no ${kind} named "${name}".`))],
  });

  /** Runs a handler; converts thrown errors into the response's diagnostics field. */
  const guard = async (
    op: string,
    typeName: string,
    diagField: string,
    fn: (diags: Diagnostic[]) => Promise<Wire>,
  ): Promise<Wire> => {
    const diags: Diagnostic[] = [];
    try {
      const out = await fn(diags);
      const existing = (out[diagField] as WireDiagnostic[] | undefined) ?? [];
      return { ...out, [diagField]: [...existing, ...diags.map(toWire)] };
    } catch (e) {
      const extra =
        e instanceof DiagnosticsError
          ? e.diagnostics
          : e instanceof EncodeError
            ? [
                error(
                  'Provider produced an invalid value',
                  `${e.message}. This is a bug in the provider.`,
                  e.path,
                ),
              ]
            : def.errorToDiagnostics(e, op, typeName);
      return { [diagField]: [...diags, ...extra].map(toWire) };
    }
  };

  /** Runs a resource operation so its errors are reported with the operation's name (create, update, delete). */
  const named = async <T>(op: string, typeName: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof DiagnosticsError || e instanceof EncodeError) throw e;
      throw new DiagnosticsError(def.errorToDiagnostics(e, op, typeName));
    }
  };

  const decodeObj = (type: TfType, dv: DynamicWire | undefined, diags: Diagnostic[]): TfValue => {
    const v = decodeDynamic(type, dv, diags);
    if (hasErrors(diags)) throw new DiagnosticsError(diags.splice(0));
    return v;
  };

  const validateConfig = (
    schema: SchemaDef,
    config: TfValue,
    diags: Diagnostic[],
    extra?: (c: TfObject, d: Diagnostic[]) => void,
  ): void => {
    validateBlock(schema.block, config, [], diags);
    if (isObjectValue(config) && extra) extra(config, diags);
  };

  const writeOnlyNull = (schema: SchemaDef, obj: TfObject): TfObject => {
    const out = { ...obj };
    for (const [name, a] of Object.entries(schema.block.attributes)) if (a.writeOnly) out[name] = null;
    return out;
  };

  const getSchema = (): Wire => {
    if (!schemaCache) {
      const map = <T extends { typeName: string; schema: SchemaDef }>(list: T[]): Record<string, Wire> =>
        Object.fromEntries(list.map((r) => [r.typeName, schemaToWire(r.schema)]));
      schemaCache = {
        provider: schemaToWire(def.schema),
        resource_schemas: map(def.resources),
        data_source_schemas: map(def.dataSources),
        ephemeral_resource_schemas: map(def.ephemeralResources),
        functions: {},
        server_capabilities: {
          plan_destroy: false,
          get_provider_schema_optional: false,
          move_resource_state: false,
        },
        diagnostics: [],
      };
    }
    return schemaCache;
  };

  return {
    GetMetadata: async () => ({
      server_capabilities: {
        plan_destroy: false,
        get_provider_schema_optional: false,
        move_resource_state: false,
      },
      diagnostics: [],
      resources: def.resources.map((r) => ({ type_name: r.typeName })),
      data_sources: def.dataSources.map((r) => ({ type_name: r.typeName })),
      ephemeral_resources: def.ephemeralResources.map((r) => ({ type_name: r.typeName })),
      functions: [],
    }),

    GetProviderSchema: async () => getSchema(),

    GetFunctions: async () => ({ functions: {}, diagnostics: [] }),

    ValidateProviderConfig: (req) =>
      guard('validate', 'provider', 'diagnostics', async (diags) => {
        const config = decodeObj(blockType(def.schema.block), req.config as DynamicWire, diags);
        validateConfig(def.schema, config, diags, def.validate);
        return {};
      }),

    ConfigureProvider: (req) =>
      guard('configure', 'provider', 'diagnostics', async (diags) => {
        const config = decodeObj(blockType(def.schema.block), req.config as DynamicWire, diags);
        const local: Diagnostic[] = [];
        client = await def.configure(
          completeObject(def.schema.block, config),
          String(req.terraform_version ?? ''),
          local,
        );
        configureDiags = local;
        diags.push(...local);
        return {};
      }),

    ValidateResourceConfig: (req) => {
      const name = String(req.type_name);
      const r = resources.get(name);
      if (!r) return Promise.resolve(unknownType('resource', name));
      return guard('validate', name, 'diagnostics', async (diags) => {
        const config = decodeObj(blockType(r.schema.block), req.config as DynamicWire, diags);
        validateConfig(r.schema, config, diags, r.validate);
        const caps = req.client_capabilities as { write_only_attributes_allowed?: boolean } | undefined;
        for (const attr of writeOnlySet(r.schema.block, config)) {
          if (!caps?.write_only_attributes_allowed) {
            diags.push(
              error(
                'Write-only attribute not supported',
                `"${attr}" is write-only, which needs Terraform 1.11 or newer. Upgrade Terraform or use the non-write-only argument.`,
                [attr],
              ),
            );
          }
        }
        return {};
      });
    },

    ValidateDataResourceConfig: (req) => {
      const name = String(req.type_name);
      const r = dataSources.get(name);
      if (!r) return Promise.resolve(unknownType('data source', name));
      return guard('validate', name, 'diagnostics', async (diags) => {
        const config = decodeObj(blockType(r.schema.block), req.config as DynamicWire, diags);
        validateConfig(r.schema, config, diags, r.validate);
        return {};
      });
    },

    ValidateEphemeralResourceConfig: (req) => {
      const name = String(req.type_name);
      const r = ephemerals.get(name);
      if (!r) return Promise.resolve(unknownType('ephemeral resource', name));
      return guard('validate', name, 'diagnostics', async (diags) => {
        const config = decodeObj(blockType(r.schema.block), req.config as DynamicWire, diags);
        validateConfig(r.schema, config, diags, r.validate);
        return {};
      });
    },

    UpgradeResourceState: (req) => {
      const name = String(req.type_name);
      const r = resources.get(name);
      if (!r) return Promise.resolve(unknownType('resource', name));
      return guard('upgrade', name, 'diagnostics', async (diags) => {
        const type = blockType(r.schema.block);
        const raw = req.raw_state as { json?: Uint8Array } | undefined;
        let parsed: unknown = null;
        if (raw?.json && raw.json.length > 0) {
          try {
            parsed = JSON.parse(Buffer.from(raw.json).toString('utf8'));
          } catch (e) {
            throw new DiagnosticsError([
              error('Invalid stored state', `The state JSON does not parse: ${(e as Error).message}`),
            ]);
          }
        }
        // Attributes removed from the schema are dropped; missing ones become null.
        const value = fromRaw(type, dropUnknownKeys(type, parsed), [], diags, true);
        if (hasErrors(diags)) throw new DiagnosticsError(diags.splice(0));
        return {
          upgraded_state: encode(type, value === null ? null : completeObject(r.schema.block, value)),
        };
      });
    },

    ReadResource: (req) => {
      const name = String(req.type_name);
      const r = resources.get(name);
      if (!r) return Promise.resolve(unknownType('resource', name));
      return guard('read', name, 'diagnostics', async (diags) => {
        const type = blockType(r.schema.block);
        const current = decodeObj(type, req.current_state as DynamicWire, diags);
        if (!isObjectValue(current)) return { new_state: encode(type, null), private: req.private };
        const next = await r.read(needClient(), completeObject(r.schema.block, current));
        return {
          new_state: encode(
            type,
            next === null ? null : writeOnlyNull(r.schema, completeObject(r.schema.block, next)),
          ),
          private: req.private,
        };
      });
    },

    PlanResourceChange: (req) => {
      const name = String(req.type_name);
      const r = resources.get(name);
      if (!r) return Promise.resolve(unknownType('resource', name));
      return guard('plan', name, 'diagnostics', async (diags) => {
        const type = blockType(r.schema.block);
        const prior = decodeObj(type, req.prior_state as DynamicWire, diags);
        const proposed = decodeObj(type, req.proposed_new_state as DynamicWire, diags);
        const config = decodeObj(type, req.config as DynamicWire, diags);
        if (!isObjectValue(proposed)) {
          return {
            planned_state: encode(type, null),
            requires_replace: [],
            planned_private: req.prior_private,
          };
        }
        const priorObj = isObjectValue(prior) ? completeObject(r.schema.block, prior) : null;
        const configObj = completeObject(r.schema.block, config);
        let { planned, requiresReplace } = planObject(
          r.schema.block,
          priorObj,
          completeObject(r.schema.block, proposed),
          configObj,
        );
        const extra = r.modifyPlan?.({ prior: priorObj, planned, config: configObj, requiresReplace }) ?? [];
        if (extra.length > 0 && requiresReplace.length === 0 && priorObj !== null) {
          // A replacement forces every computed value to be new.
          planned = fillComputed(r.schema.block, null, planned, configObj, true);
        }
        requiresReplace = [...requiresReplace, ...extra];
        return {
          planned_state: encode(type, writeOnlyNull(r.schema, planned)),
          requires_replace: requiresReplace.map(pathToWire),
          planned_private: req.prior_private,
          legacy_type_system: false,
        };
      });
    },

    ApplyResourceChange: (req) => {
      const name = String(req.type_name);
      const r = resources.get(name);
      if (!r) return Promise.resolve(unknownType('resource', name));
      return guard('apply', name, 'diagnostics', async (diags) => {
        const type = blockType(r.schema.block);
        const prior = decodeObj(type, req.prior_state as DynamicWire, diags);
        const planned = decodeObj(type, req.planned_state as DynamicWire, diags);
        const config = decodeObj(type, req.config as DynamicWire, diags);
        const c = needClient();
        if (!isObjectValue(planned)) {
          if (isObjectValue(prior))
            await named('delete', name, () => r.delete(c, completeObject(r.schema.block, prior)));
          return { new_state: encode(type, null), legacy_type_system: false };
        }
        const plannedObj = completeObject(r.schema.block, planned);
        const configObj = completeObject(r.schema.block, config);
        const op = isObjectValue(prior) ? 'update' : 'create';
        const result = await named(op, name, () =>
          isObjectValue(prior)
            ? r.update(c, completeObject(r.schema.block, prior), plannedObj, configObj)
            : r.create(c, plannedObj, configObj),
        );
        // Known planned values are promises to Terraform: keep them exactly (semantic equality).
        const out = completeObject(r.schema.block, result);
        for (const [k, v] of Object.entries(plannedObj)) if (!containsUnknown(v)) out[k] = v;
        const stillUnknown = Object.keys(out).filter((k) => containsUnknown(out[k]));
        if (stillUnknown.length > 0) {
          throw new DiagnosticsError([
            error(
              'Provider produced an incomplete result',
              `${stillUnknown.join(', ')} stayed unknown after ${op}. This is a bug in the provider.`,
            ),
          ]);
        }
        return {
          new_state: encode(type, writeOnlyNull(r.schema, out)),
          private: req.planned_private,
          legacy_type_system: false,
        };
      });
    },

    ImportResourceState: (req) => {
      const name = String(req.type_name);
      const r = resources.get(name);
      if (!r) return Promise.resolve(unknownType('resource', name));
      return guard('import', name, 'diagnostics', async () => {
        if (!r.importState) {
          throw new DiagnosticsError([error('Import not supported', `${name} cannot be imported.`)]);
        }
        const state = completeObject(r.schema.block, r.importState(String(req.id ?? '')));
        return {
          imported_resources: [
            { type_name: name, state: encode(blockType(r.schema.block), state), private: Buffer.alloc(0) },
          ],
        };
      });
    },

    MoveResourceState: async () => ({
      diagnostics: [
        toWire(
          error('Move not supported', 'This provider does not support moving state between resource types.'),
        ),
      ],
    }),

    ReadDataSource: (req) => {
      const name = String(req.type_name);
      const r = dataSources.get(name);
      if (!r) return Promise.resolve(unknownType('data source', name));
      return guard('read', name, 'diagnostics', async (diags) => {
        const type = blockType(r.schema.block);
        const config = completeObject(r.schema.block, decodeObj(type, req.config as DynamicWire, diags));
        const state = completeObject(r.schema.block, await r.read(needClient(), config));
        // Configured values stay exactly as written.
        for (const [k, v] of Object.entries(config)) if (v !== null) state[k] = v;
        return { state: encode(type, state) };
      });
    },

    OpenEphemeralResource: (req) => {
      const name = String(req.type_name);
      const r = ephemerals.get(name);
      if (!r) return Promise.resolve(unknownType('ephemeral resource', name));
      return guard('open', name, 'diagnostics', async (diags) => {
        const type = blockType(r.schema.block);
        const config = completeObject(r.schema.block, decodeObj(type, req.config as DynamicWire, diags));
        const res = await r.open(needClient(), config);
        const result = completeObject(r.schema.block, res.result);
        for (const [k, v] of Object.entries(config)) if (v !== null) result[k] = v;
        const out: Wire = { result: encode(type, result) };
        if (res.private) out.private = res.private;
        if (res.renewAt) out.renew_at = toTimestamp(res.renewAt);
        return out;
      });
    },

    RenewEphemeralResource: (req) => {
      const name = String(req.type_name);
      const r = ephemerals.get(name);
      if (!r) return Promise.resolve(unknownType('ephemeral resource', name));
      return guard('renew', name, 'diagnostics', async () => {
        if (!r.renew) return {};
        const res = await r.renew(
          needClient(),
          req.private ? Buffer.from(req.private as Uint8Array) : undefined,
        );
        const out: Wire = {};
        if (res.private) out.private = res.private;
        if (res.renewAt) out.renew_at = toTimestamp(res.renewAt);
        return out;
      });
    },

    CloseEphemeralResource: (req) => {
      const name = String(req.type_name);
      const r = ephemerals.get(name);
      if (!r) return Promise.resolve(unknownType('ephemeral resource', name));
      return guard('close', name, 'diagnostics', async () => {
        await r.close(needClient(), req.private ? Buffer.from(req.private as Uint8Array) : undefined);
        return {};
      });
    },

    StopProvider: async () => ({ Error: '' }),
  };
}

function toTimestamp(d: Date): { seconds: number; nanos: number } {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

function pathToWire(path: AttrPath): Wire {
  return {
    steps: path.map((s) =>
      typeof s === 'string'
        ? { attribute_name: s }
        : typeof s === 'number'
          ? { element_key_int: s }
          : { element_key_string: s.key },
    ),
  };
}

/** Removes object keys the type does not know (state written by an older schema). */
function dropUnknownKeys(type: TfType, raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object' || typeof type === 'string') return raw;
  const [kind, inner] = type;
  if (kind === 'object' && !Array.isArray(raw)) {
    const out: Record<string, unknown> = {};
    for (const [k, t] of Object.entries(inner))
      if (k in (raw as object)) out[k] = dropUnknownKeys(t, (raw as Record<string, unknown>)[k]);
    return out;
  }
  if ((kind === 'list' || kind === 'set') && Array.isArray(raw))
    return raw.map((x) => dropUnknownKeys(inner, x));
  if (kind === 'map' && !Array.isArray(raw)) {
    return Object.fromEntries(
      Object.entries(raw as Record<string, unknown>).map(([k, x]) => [k, dropUnknownKeys(inner, x)]),
    );
  }
  return raw;
}
