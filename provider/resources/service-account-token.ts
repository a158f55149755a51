/**
 * `phase_service_account_token`: a token of a service account, with expiry and built-in rotation.
 * `rotate_after` plans a replacement once the token is older than that duration, so rotation needs no
 * `time_rotating` resource; `revoke_grace` keeps a replaced token valid a while longer (phase-bridge extension).
 * The token value is kept in state (sensitive), like every managed credential.
 */
import { parseDuration } from '../../core/duration';
import type { ResourceDef } from '../framework/provider';
import { error, warning } from '../framework/diagnostics';
import { isUnknown, type TfObject } from '../framework/types';
import type { Validator } from '../framework/schema';
import { createdAt, deleteIgnoringGone, idAttr, orNullIfGone, type Client } from '../phase/common';
import {
  duration,
  maxLength,
  need,
  notBlank,
  num,
  positiveInteger,
  rfc3339,
  splitImportId,
  str,
} from '../phase/values';

/** The longest `revoke_grace` the server accepts (`?grace_seconds=`): 7 days. */
export const MAX_REVOKE_GRACE_MS = 7 * 86_400_000;

const atMostSevenDays: Validator = (v, path) => {
  const ms = typeof v === 'string' ? parseDuration(v) : undefined;
  return ms !== undefined && ms > MAX_REVOKE_GRACE_MS
    ? [
        error(
          'Grace too long',
          `revoke_grace "${String(v)}" is longer than 7 days ("168h" or "7d" at most).`,
          path,
        ),
      ]
    : [];
};

/** `revoke_grace` in whole seconds, or undefined when it is not set. */
export function graceSeconds(state: TfObject): number | undefined {
  const g = str(state, 'revoke_grace');
  const ms = g ? parseDuration(g) : undefined;
  return ms === undefined ? undefined : Math.min(Math.floor(ms / 1000), MAX_REVOKE_GRACE_MS / 1000);
}

/** True when the token's age has reached `rotate_after`. */
export function rotationDue(createdAtIso: string, rotateAfter: string, now = Date.now()): boolean {
  const ms = parseDuration(rotateAfter);
  const created = Date.parse(createdAtIso);
  if (ms === undefined || Number.isNaN(created)) return false;
  return now >= created + ms;
}

/** Keeps the configured spelling of `expires_at` when the server reports the same instant differently. */
function sameInstant(a: string | undefined, b: string | null | undefined): boolean {
  return !!a && !!b && Date.parse(a) === Date.parse(b);
}

export const serviceAccountTokenResource: ResourceDef<Client> = {
  typeName: 'phase_service_account_token',
  importIdFormat: '<service_account_id>:<token_id>',
  schema: {
    version: 0,
    block: {
      description:
        'A service-account token. Any change to its arguments (except `rotate_after` and `revoke_grace`) mints a new ' +
        'token. A token that expired or was revoked outside Terraform is planned for re-creation.',
      attributes: {
        id: idAttr('token'),
        service_account_id: {
          type: 'string',
          required: true,
          description: 'The service account.',
          planModifiers: ['requiresReplace'],
        },
        name: {
          type: 'string',
          required: true,
          description: 'Token name (at most 64 characters).',
          validators: [notBlank, maxLength(64)],
          planModifiers: ['requiresReplace'],
        },
        expires_at: {
          type: 'string',
          optional: true,
          computed: true,
          description:
            'Expiry as an RFC 3339 timestamp with a timezone. Computed from `expires_in` when that is used; null = never expires.',
          validators: [rfc3339],
          planModifiers: ['requiresReplace', 'useStateForUnknown'],
        },
        expires_in: {
          type: 'number',
          optional: true,
          description: 'Lifetime in seconds from creation (alternative to `expires_at`).',
          validators: [positiveInteger],
          planModifiers: ['requiresReplace'],
        },
        rotate_after: {
          type: 'string',
          optional: true,
          description:
            'Plan a replacement once the token is older than this duration (e.g. `"720h"`, `"30d"`). Combine with ' +
            '`lifecycle { create_before_destroy = true }` so the new token exists before the old one is revoked.',
          validators: [duration],
        },
        revoke_grace: {
          type: 'string',
          optional: true,
          description:
            'When the token is destroyed or replaced, keep it valid this much longer (e.g. `"1h"`, at most 7 days) so ' +
            'its users can move to the new token; it then expires on the server. A phase-bridge extension: real Phase ' +
            'ignores it and revokes at once. Takes effect from the apply after it is set.',
          validators: [duration, atMostSevenDays],
        },
        token: {
          type: 'string',
          computed: true,
          sensitive: true,
          description: 'The full `pss_service:v2:...` token. Stored in state.',
          planModifiers: ['useStateForUnknown'],
        },
        bearer_token: {
          type: 'string',
          computed: true,
          sensitive: true,
          description:
            'The REST API token `ServiceAccount <hex>` (send as `Authorization: Bearer <bearer_token>`). Stored in state.',
          planModifiers: ['useStateForUnknown'],
        },
        created_at: createdAt,
      },
    },
  },

  validate(config, diags) {
    if (
      config.expires_at !== null &&
      config.expires_in !== null &&
      !isUnknown(config.expires_at) &&
      !isUnknown(config.expires_in)
    ) {
      diags.push(
        error('Conflicting arguments', 'Set either expires_at or expires_in, not both.', ['expires_in']),
      );
    }
    const at = str(config, 'expires_at');
    if (at && !Number.isNaN(Date.parse(at)) && Date.parse(at) <= Date.now()) {
      diags.push(error('Expiry in the past', `expires_at "${at}" is not in the future.`, ['expires_at']));
    }
    const rot = str(config, 'rotate_after');
    const ttl = num(config, 'expires_in');
    const rotMs = rot ? parseDuration(rot) : undefined;
    if (rotMs !== undefined && ttl !== undefined && rotMs >= ttl * 1000) {
      diags.push(
        warning(
          'Token expires before rotation',
          'rotate_after is not shorter than expires_in: the token will expire before Terraform rotates it.',
          ['rotate_after'],
        ),
      );
    }
  },

  modifyPlan({ prior, planned }) {
    if (!prior) return;
    const rot = str(planned, 'rotate_after');
    const created = str(prior, 'created_at');
    if (rot && created && rotationDue(created, rot)) return [['created_at']];
  },

  async create(client, planned) {
    const saId = need(planned, 'service_account_id');
    const expiresAt = str(planned, 'expires_at');
    const expiresIn = num(planned, 'expires_in');
    const t = await client.createServiceAccountToken(saId, {
      name: need(planned, 'name'),
      ...(expiresAt ? { expires_at: expiresAt } : expiresIn ? { expires_in: expiresIn } : {}),
    });
    return {
      ...planned,
      id: t.id,
      expires_at: expiresAt ?? t.expiresAt ?? null,
      token: t.token,
      bearer_token: t.bearerToken,
      created_at: t.createdAt ?? new Date().toISOString(),
    };
  },

  async read(client, state) {
    const saId = need(state, 'service_account_id');
    const id = need(state, 'id');
    const sa = await orNullIfGone(() => client.getServiceAccount(saId));
    const t = sa?.tokens.find((x) => x.id === id);
    if (!t) return null;
    // An expired token is as good as gone: plan a new one.
    if (t.expiresAt && Date.parse(t.expiresAt) <= Date.now()) return null;
    const prior = str(state, 'expires_at');
    return {
      ...state,
      name: t.name,
      expires_at: sameInstant(prior, t.expiresAt) ? (prior as string) : (t.expiresAt ?? null),
      created_at: sameInstant(str(state, 'created_at'), t.createdAt)
        ? state.created_at
        : (t.createdAt ?? state.created_at),
    };
  },

  /** Only `rotate_after` and `revoke_grace` change in place, and they live in state alone. */
  async update(_client, _prior, planned) {
    return planned;
  },

  /** Revokes the token, or with `revoke_grace` (stored in state, so a replacement uses it too) lets it expire later. */
  async delete(client, state) {
    const grace = graceSeconds(state);
    await deleteIgnoringGone(() =>
      client.deleteServiceAccountToken(
        need(state, 'service_account_id'),
        need(state, 'id'),
        grace ? { graceSeconds: grace } : {},
      ),
    );
  },

  importState(id): TfObject {
    const [saId, tokenId] = splitImportId(id, ['service_account_id', 'token_id'], '6a1f…:0c9d…');
    return { id: tokenId, service_account_id: saId };
  },
};
