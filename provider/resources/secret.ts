/**
 * `phase_secret`: one secret in an app environment, with the official provider's attributes (app_id, env, key,
 * value, comment, path, tags, override; computed version, created_at, updated_at; import id
 * `app_id:env:path:key`) plus a write-only `value_wo` / `value_wo_version` pair that keeps the value out of
 * plan and state (Terraform ≥ 1.11).
 */
import { ConflictError, ForbiddenError } from '../../core/api-errors';
import type { SecretScope, SseSecretInput } from '../../core/client';
import type { SseSecret } from '../../core/schemas';
import { DiagnosticsError, error } from '../framework/diagnostics';
import type { ResourceDef } from '../framework/provider';
import { isObjectValue, isUnknown, type TfObject, type TfValue } from '../framework/types';
import { deleteIgnoringGone, idAttr, orNullIfGone, updatedAt, createdAt, type Client } from '../phase/common';
import { bool, need, notBlank, num, stableList, str, strList, textOrNull } from '../phase/values';
import { canonicalSecretPath } from '../../core/secret-path';

function scope(o: TfObject): SecretScope {
  return { appId: need(o, 'app_id'), env: need(o, 'env') };
}

/** Path as the server stores it (core's canonical form; dot segments are refused with a diagnostic). */
export const normalisePath = (p: string | undefined): string => canonicalSecretPath(p);

function overrideFrom(o: TfObject): { value: string; isActive: boolean } | undefined {
  const list = Array.isArray(o.override) ? o.override.filter(isObjectValue) : [];
  if (list.length === 0) return undefined;
  return { value: str(list[0], 'value') ?? '', isActive: bool(list[0], 'is_active') ?? false };
}

function secretState(s: SseSecret, prior: TfObject, opts: { keepValueNull: boolean }): TfObject {
  const tags =
    s.tags.length === 0 && (prior.tags === null || prior.tags === undefined)
      ? null
      : stableList(s.tags, prior.tags ?? null);
  return {
    ...prior,
    id: s.id,
    // The server upper-cases keys; keep the configured spelling when it is the same key.
    key: typeof prior.key === 'string' && prior.key.toUpperCase() === s.key.toUpperCase() ? prior.key : s.key,
    value: opts.keepValueNull ? null : unresolved(prior.value, s.value),
    comment: textOrNull(s.comment, prior.comment ?? null),
    // Keep the configured spelling of the same path ("backend/" is stored as "/backend").
    path: typeof prior.path === 'string' && normalisePath(prior.path) === s.path ? prior.path : s.path,
    tags,
    override: s.override ? [{ value: s.override.value, is_active: s.override.isActive }] : [],
    version: s.version ?? null,
    created_at: s.createdAt ?? null,
    updated_at: s.updatedAt ?? null,
  };
}

/**
 * Real Phase has no raw read and always resolves `${...}` references: when the configured value holds references
 * and the server's value holds none, keep the configured one rather than plan a change (and store the resolution).
 */
function unresolved(prior: TfValue | undefined, server: string): string {
  return typeof prior === 'string' && prior.includes('${') && !server.includes('${') ? prior : server;
}

/** The secret with this id (or, after an import, this key at this path). */
async function find(client: Client, state: TfObject): Promise<SseSecret | undefined> {
  // Raw values (references as written): resolved ones would plan as drift and copy other secrets into state.
  const list = await client.listSecrets({ ...scope(state), key: need(state, 'key'), raw: true });
  const id = str(state, 'id');
  if (id) return list.find((s) => s.id === id);
  const path = normalisePath(str(state, 'path'));
  return list.find((s) => s.path === path);
}

export const secretResource: ResourceDef<Client> = {
  typeName: 'phase_secret',
  importIdFormat: '<app_id>:<env>:<path>:<key>',
  schema: {
    version: 0,
    block: {
      description:
        'A secret in an environment of a server-side-encrypted app. Compatible with the official Phase provider. ' +
        'Set exactly one of `value` (stored in state, sensitive) or `value_wo` (write-only, never stored).',
      attributes: {
        id: idAttr('secret'),
        app_id: {
          type: 'string',
          required: true,
          description: 'The app id.',
          planModifiers: ['requiresReplace'],
        },
        env: {
          type: 'string',
          required: true,
          description: 'Environment name (case-insensitive), e.g. `Development`.',
          planModifiers: ['requiresReplace'],
        },
        key: {
          type: 'string',
          required: true,
          description: 'Secret key; the server stores it upper-case.',
          validators: [notBlank],
        },
        value: {
          type: 'string',
          optional: true,
          sensitive: true,
          description: 'Secret value (stored in state, marked sensitive).',
        },
        value_wo: {
          type: 'string',
          optional: true,
          sensitive: true,
          writeOnly: true,
          description:
            'Write-only secret value: sent to Phase, never stored in plan or state. Change `value_wo_version` to push a new value.',
        },
        value_wo_version: {
          type: 'number',
          optional: true,
          description: 'Any change writes `value_wo` again (the write-only value itself is never compared).',
        },
        comment: { type: 'string', optional: true, description: 'Comment shown next to the secret.' },
        path: {
          type: 'string',
          optional: true,
          computed: true,
          default: '/',
          description: 'Folder path, default `/`.',
        },
        tags: {
          type: ['list', 'string'],
          optional: true,
          description: 'Tag names (created in the organisation if missing).',
        },
        version: {
          type: 'number',
          computed: true,
          description: 'Secret version, incremented by every update.',
        },
        created_at: createdAt,
        updated_at: updatedAt,
      },
      blocks: {
        override: {
          nesting: 'SET',
          maxItems: 1,
          block: {
            description: 'Personal override of the value (personal access tokens only).',
            attributes: {
              value: { type: 'string', required: true, sensitive: true, description: 'Override value.' },
              is_active: { type: 'bool', required: true, description: 'Whether the override is active.' },
            },
          },
        },
      },
    },
  },

  validate(config, diags) {
    const v = config.value;
    const wo = config.value_wo;
    const set = (x: TfValue): boolean => x !== null;
    if (isUnknown(v) || isUnknown(wo)) return;
    if (set(v) && set(wo))
      diags.push(error('Conflicting arguments', 'Set either value or value_wo, not both.', ['value_wo']));
    if (!set(v) && !set(wo))
      diags.push(
        error('Missing value', 'Set value, or value_wo for a value that never reaches state.', ['value']),
      );
    if (set(config.value_wo_version) && !set(wo)) {
      diags.push(
        error(
          'value_wo_version without value_wo',
          'value_wo_version only has an effect together with value_wo.',
          ['value_wo_version'],
        ),
      );
    }
  },

  async create(client, planned, config) {
    const useWo = planned.value === null;
    const input: SseSecretInput = {
      key: need(planned, 'key'),
      value: (useWo ? str(config, 'value_wo') : str(planned, 'value')) ?? '',
      comment: str(planned, 'comment') ?? '',
      path: str(planned, 'path') ?? '/',
      ...(strList(planned, 'tags') ? { tags: strList(planned, 'tags') } : {}),
      ...(overrideFrom(planned) ? { override: overrideFrom(planned) } : {}),
    };
    let created: SseSecret | undefined;
    try {
      [created] = await client.createSecrets(scope(planned), [input]);
    } catch (e) {
      // Like the official provider: an existing secret with this key is taken over and updated.
      if (!(e instanceof ConflictError)) throw e;
      const existing = (await client.listSecrets({ ...scope(planned), key: input.key })).find(
        (s) => s.path === normalisePath(input.path),
      );
      if (!existing) throw e;
      [created] = await client.updateSecrets(scope(planned), [{ id: existing.id, ...input }]);
    }
    if (!created) throw new Error('Phase returned no secret for the create request');
    return secretState(created, planned, { keepValueNull: useWo });
  },

  async read(client, state) {
    let s: SseSecret | undefined | null;
    try {
      s = await orNullIfGone(() => find(client, state));
    } catch (e) {
      // The environment itself was deleted: Phase cannot resolve it (403), so the secret is gone too.
      if (e instanceof ForbiddenError && /^Environment context required/.test(e.phaseError)) return null;
      throw e;
    }
    if (!s) return null;
    // With value_wo the value is never read back; after an import (no id yet) the value is filled in.
    const keepValueNull = state.value === null && state.id !== null;
    return secretState(s, state, { keepValueNull });
  },

  async update(client, prior, planned, config) {
    const useWo = planned.value === null;
    const woChanged = useWo && num(prior, 'value_wo_version') !== num(planned, 'value_wo_version');
    const value = useWo
      ? woChanged || prior.value !== null
        ? str(config, 'value_wo')
        : undefined
      : str(planned, 'value');
    const [updated] = await client.updateSecrets(scope(planned), [
      {
        id: need(prior, 'id'),
        key: need(planned, 'key'),
        ...(value !== undefined ? { value } : {}),
        comment: str(planned, 'comment') ?? '',
        path: str(planned, 'path') ?? '/',
        tags: strList(planned, 'tags') ?? [],
        ...(overrideFrom(planned) ? { override: overrideFrom(planned) } : {}),
      },
    ]);
    if (!updated) throw new Error('Phase returned no secret for the update request');
    return secretState(updated, planned, { keepValueNull: useWo });
  },

  async delete(client, state) {
    await deleteIgnoringGone(() => client.deleteSecrets(scope(state), [need(state, 'id')]));
  },

  importState(id) {
    const parts = id.split(':');
    if (parts.length < 4 || parts.slice(0, 2).some((p) => p === '') || parts[parts.length - 1] === '') {
      throw new DiagnosticsError([
        error(
          'Invalid import id',
          `Expected "<app_id>:<env>:<path>:<key>" (for example "3f0c…:Production:/:DATABASE_URL"), got "${id}".`,
        ),
      ]);
    }
    const [appId, env] = parts;
    const key = parts[parts.length - 1];
    const path = parts.slice(2, -1).join(':');
    return { app_id: appId, env, path: normalisePath(path), key };
  },
};
