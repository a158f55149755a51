import type { Construct } from 'constructs';
import { TerraformElement, type TerraformMetaArguments } from './cdktf';
import { compact } from './provider';
import { PhaseResource } from './resource';

export interface PhaseServiceAccountTokenConfig extends TerraformMetaArguments {
  readonly serviceAccountId: string;
  readonly name: string;
  /** RFC 3339 expiry with a timezone; wins over `expiresIn`. */
  readonly expiresAt?: string;
  /** Lifetime in seconds from creation. */
  readonly expiresIn?: number;
  /** Plan a replacement once the token is older than this (e.g. `"720h"`, `"30d"`). */
  readonly rotateAfter?: string;
}

/**
 * `phase_service_account_token`: a long-lived token whose value is a sensitive computed attribute (it lands in
 * state). With `rotateAfter`, pair it with `lifecycle: { createBeforeDestroy: true }` so the new token exists before
 * the old one is revoked.
 */
export class PhaseServiceAccountToken extends PhaseResource<PhaseServiceAccountTokenConfig> {
  static readonly tfResourceType = 'phase_service_account_token';

  constructor(scope: Construct, id: string, config: PhaseServiceAccountTokenConfig) {
    super(scope, id, PhaseServiceAccountToken.tfResourceType, config);
  }

  /** The full `pss_service:v2:...` token (sensitive). */
  get token(): string {
    return this.getStringAttribute('token');
  }

  /** `ServiceAccount <hex>`: send as `Authorization: Bearer <bearerToken>` (sensitive). */
  get bearerToken(): string {
    return this.getStringAttribute('bearer_token');
  }

  get expiresAt(): string {
    return this.getStringAttribute('expires_at');
  }

  protected attributes(): Record<string, unknown> {
    const c = this.config;
    return {
      service_account_id: c.serviceAccountId,
      name: c.name,
      expires_at: c.expiresAt,
      expires_in: c.expiresIn,
      rotate_after: c.rotateAfter,
    };
  }
}

export interface PhaseEphemeralServiceAccountTokenConfig {
  readonly serviceAccountId: string;
  /** Token name; default `terraform-ephemeral`. */
  readonly name?: string;
  /** Upper bound on the lifetime in seconds (default 3600); the token is deleted when Terraform closes it. */
  readonly expiresIn?: number;
}

/**
 * The ephemeral `phase_service_account_token` (Terraform >= 1.10): minted when Terraform opens it, deleted when it
 * closes it, never written to state. cdktf 0.21 has no ephemeral class, so this is the documented escape hatch: a
 * `TerraformElement` that renders under the top-level `ephemeral` key. Its attributes may only feed provider
 * configuration, write-only attributes or other ephemeral values.
 */
export class PhaseEphemeralServiceAccountToken extends TerraformElement {
  static readonly tfResourceType = 'phase_service_account_token';

  constructor(
    scope: Construct,
    id: string,
    private readonly config: PhaseEphemeralServiceAccountTokenConfig,
  ) {
    super(scope, id, 'ephemeral');
  }

  private ref(attr: string): string {
    return `\${ephemeral.${PhaseEphemeralServiceAccountToken.tfResourceType}.${this.friendlyUniqueId}.${attr}}`;
  }

  get token(): string {
    return this.ref('token');
  }

  get bearerToken(): string {
    return this.ref('bearer_token');
  }

  override toTerraform(): Record<string, unknown> {
    return {
      ephemeral: {
        [PhaseEphemeralServiceAccountToken.tfResourceType]: {
          [this.friendlyUniqueId]: compact({
            service_account_id: this.config.serviceAccountId,
            name: this.config.name,
            expires_in: this.config.expiresIn,
          }),
        },
      },
    };
  }
}
