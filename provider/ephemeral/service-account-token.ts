/**
 * Ephemeral `phase_service_account_token` (Terraform ≥ 1.10): a short-lived token minted when Terraform opens
 * the resource and deleted when it closes it. The value never reaches plan or state. Terraform opens it in
 * every phase that needs it (plan and apply), so each phase gets its own token.
 */
import { DiagnosticsError, error } from '../framework/diagnostics';
import type { EphemeralDef } from '../framework/provider';
import { deleteIgnoringGone, type Client } from '../phase/common';
import { maxLength, need, notBlank, num, positiveInteger, str } from '../phase/values';

interface Handle {
  sa: string;
  id: string;
}

function parseHandle(priv: Buffer | undefined): Handle {
  try {
    const h = JSON.parse((priv ?? Buffer.alloc(0)).toString('utf8')) as Partial<Handle>;
    if (typeof h.sa === 'string' && typeof h.id === 'string') return { sa: h.sa, id: h.id };
  } catch {
    // fall through
  }
  throw new DiagnosticsError([
    error('Invalid ephemeral handle', 'Terraform passed private data this provider did not write.'),
  ]);
}

export const serviceAccountTokenEphemeral: EphemeralDef<Client> = {
  typeName: 'phase_service_account_token',
  schema: {
    version: 0,
    block: {
      description: 'A short-lived service-account token that exists only while Terraform runs.',
      attributes: {
        service_account_id: { type: 'string', required: true, description: 'The service account.' },
        name: {
          type: 'string',
          optional: true,
          computed: true,
          description: 'Token name (default `terraform-ephemeral`).',
          validators: [notBlank, maxLength(64)],
        },
        expires_in: {
          type: 'number',
          optional: true,
          computed: true,
          description:
            'Upper bound on the lifetime in seconds (default 3600); the token is deleted at close anyway.',
          validators: [positiveInteger],
        },
        id: { type: 'string', computed: true, description: 'Token id.' },
        token: {
          type: 'string',
          computed: true,
          sensitive: true,
          description: 'The full `pss_service:v2:...` token.',
        },
        bearer_token: {
          type: 'string',
          computed: true,
          sensitive: true,
          description: 'The REST API token `ServiceAccount <hex>`.',
        },
        expires_at: { type: 'string', computed: true, description: 'When the token expires at the latest.' },
      },
    },
  },

  async open(client, config) {
    const sa = need(config, 'service_account_id');
    const name = str(config, 'name') ?? 'terraform-ephemeral';
    const expiresIn = num(config, 'expires_in') ?? 3600;
    const t = await client.createServiceAccountToken(sa, { name, expires_in: expiresIn });
    const handle: Handle = { sa, id: t.id };
    return {
      result: {
        service_account_id: sa,
        name,
        expires_in: expiresIn,
        id: t.id,
        token: t.token,
        bearer_token: t.bearerToken,
        expires_at: t.expiresAt ?? null,
      },
      private: Buffer.from(JSON.stringify(handle)),
    };
  },

  async close(client, priv) {
    const h = parseHandle(priv);
    await deleteIgnoringGone(() => client.deleteServiceAccountToken(h.sa, h.id));
  },
};
