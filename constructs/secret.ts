import type { Construct } from 'constructs';
import type { TerraformMetaArguments } from './cdktf';
import { PhaseResource } from './resource';

export interface PhaseSecretConfig extends TerraformMetaArguments {
  readonly appId: string;
  /** Environment name, e.g. `Production` (matched case-insensitively). */
  readonly env: string;
  readonly key: string;
  /** The value; it is stored in state. Prefer `valueWo` on Terraform >= 1.11. */
  readonly value?: string;
  /** Write-only value: never in plan or state. Bump `valueWoVersion` to push a new one. */
  readonly valueWo?: string;
  readonly valueWoVersion?: number;
  readonly comment?: string;
  /** Default `/`. */
  readonly path?: string;
  readonly tags?: string[];
}

/** `phase_secret`: one secret in a server-side-encrypted app (the official provider's resource, plus `value_wo`). */
export class PhaseSecret extends PhaseResource<PhaseSecretConfig> {
  static readonly tfResourceType = 'phase_secret';

  constructor(scope: Construct, id: string, config: PhaseSecretConfig) {
    super(scope, id, PhaseSecret.tfResourceType, config);
  }

  protected attributes(): Record<string, unknown> {
    const c = this.config;
    return {
      app_id: c.appId,
      env: c.env,
      key: c.key,
      value: c.value,
      value_wo: c.valueWo,
      value_wo_version: c.valueWoVersion,
      comment: c.comment,
      path: c.path,
      tags: c.tags,
    };
  }
}
