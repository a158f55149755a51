import { Construct } from 'constructs';
import { parseDuration } from '../core/duration';
import { TerraformOutput } from './cdktf';
import { serviceAccountToken } from './provider';
import { validate } from './validation';

export interface PhaseTokenProps {
  /**
   * Token name, shown in the console and the audit log.
   * @default the construct id
   */
  readonly name?: string;
  /**
   * Lifetime: seconds, or a duration such as `"90d"` or `"720h"`.
   * @default never expires (unless `expiresAt` is given)
   */
  readonly expiresIn?: number | string;
  /**
   * Absolute expiry, an RFC 3339 timestamp with a timezone (or a Date). Give this or `expiresIn`, not both.
   * @default never expires (unless `expiresIn` is given)
   */
  readonly expiresAt?: string | Date;
  /**
   * Replace the token once it is older than this duration (for example `"720h"`). The new token is created before
   * the old one is revoked, without a lifecycle block of your own. Must be shorter than the token's lifetime.
   * @default no rotation
   */
  readonly rotateAfter?: string;
  /**
   * When the token is replaced (a rotation) or destroyed, keep it valid this much longer (for example `"1h"`, at most
   * 7 days) so running workloads can move to the new token; it then expires on the server. A phase-bridge extension:
   * Phase ignores it and revokes at once. Takes effect from the apply after it is first set.
   * @default revoked at once
   */
  readonly revokeGrace?: string;
}

/** What a token construct needs from its account. */
export interface TokenOwner extends Construct {
  /** The service account id. */
  readonly id: string;
}

/**
 * A service-account token. `token` and `bearerToken` are sensitive: pass them to another resource (a Kubernetes
 * secret, say) or to a sensitive output; they are stored in Terraform state, so keep state encrypted or use workload
 * identity instead.
 */
export class PhaseToken extends Construct {
  /** The level-1 `phase_service_account_token` resource. */
  readonly resource: serviceAccountToken.ServiceAccountToken;

  constructor(scope: Construct, id: string, account: TokenOwner, props: PhaseTokenProps = {}) {
    super(scope, id);
    const lifetime = lifetimeSeconds(props.expiresIn);
    const expiresAt = props.expiresAt instanceof Date ? props.expiresAt.toISOString() : props.expiresAt;
    this.resource = new serviceAccountToken.ServiceAccountToken(this, 'token', {
      serviceAccountId: account.id,
      name: props.name ?? id,
      expiresIn: lifetime,
      expiresAt,
      rotateAfter: props.rotateAfter,
      revokeGrace: props.revokeGrace,
      lifecycle: props.rotateAfter ? { createBeforeDestroy: true } : undefined,
    });
    validate(this, () => {
      const problems: string[] = [];
      if (props.expiresIn !== undefined && props.expiresAt !== undefined) {
        problems.push("give 'expiresIn' or 'expiresAt', not both.");
      }
      if (props.expiresIn !== undefined && lifetime === undefined) {
        problems.push(
          `expiresIn '${String(props.expiresIn)}' is not a positive number of seconds or a duration like "90d".`,
        );
      }
      const at = expiresAt === undefined ? undefined : Date.parse(expiresAt);
      if (expiresAt !== undefined && (at === undefined || Number.isNaN(at))) {
        problems.push(`expiresAt '${expiresAt}' is not an RFC 3339 timestamp.`);
      } else if (at !== undefined && at <= Date.now()) {
        problems.push(`expiresAt '${expiresAt}' is in the past.`);
      }
      if (props.rotateAfter !== undefined) {
        const rotate = parseDuration(props.rotateAfter);
        const life =
          lifetime !== undefined ? lifetime * 1000 : at !== undefined ? at - Date.now() : undefined;
        if (rotate === undefined)
          problems.push(`rotateAfter '${props.rotateAfter}' is not a duration like "720h" or "30d".`);
        else if (life !== undefined && rotate >= life) {
          problems.push(
            `rotateAfter '${props.rotateAfter}' is not shorter than the token's lifetime, so the token would expire before it is replaced.`,
          );
        }
      }
      if (props.revokeGrace !== undefined) {
        const grace = parseDuration(props.revokeGrace);
        if (grace === undefined)
          problems.push(`revokeGrace '${props.revokeGrace}' is not a duration like "1h" or "30m".`);
        else if (grace > MAX_REVOKE_GRACE_MS)
          problems.push(`revokeGrace '${props.revokeGrace}' is longer than 7 days; use at most "7d".`);
      }
      return problems;
    });
  }

  /** The full `pss_service:v2:...` token (sensitive). */
  get token(): string {
    return this.resource.token;
  }

  /** `ServiceAccount <hex>`: send as `Authorization: Bearer <bearerToken>` (sensitive). */
  get bearerToken(): string {
    return this.resource.bearerToken;
  }

  /** The token id (not secret). */
  get id(): string {
    return this.resource.id;
  }

  /** When the token expires (RFC 3339), or empty when it does not. */
  get expiresAt(): string {
    return this.resource.expiresAt;
  }

  /** A sensitive stack output holding the token (`terraform output -raw <name>`). */
  toOutput(name: string): TerraformOutput {
    const out = new TerraformOutput(this, 'output', { value: this.token, sensitive: true });
    out.overrideLogicalId(name);
    return out;
  }
}

/** The longest `revokeGrace` the server keeps a token for: 7 days. */
const MAX_REVOKE_GRACE_MS = 7 * 86_400_000;

/** Whole seconds from a number of seconds or a duration (`"90d"`), or undefined when it is neither. */
export function lifetimeSeconds(v: number | string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : undefined;
  const ms = /^\d+$/.test(v.trim()) ? Number(v) * 1000 : parseDuration(v);
  return ms !== undefined && ms >= 1000 ? Math.floor(ms / 1000) : undefined;
}
