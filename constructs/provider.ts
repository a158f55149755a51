import type { Construct } from 'constructs';
import { TerraformProvider } from './cdktf';

/** Registry address of the phase-bridge provider (installed offline by `phase-bridge provider install`). */
export const PROVIDER_SOURCE = 'phase-bridge/phase';

export interface PhaseProviderConfig {
  /** Phase host; defaults to `PHASE_HOST`, then Phase Cloud. Self-hosted hosts get `/service/public` appended. */
  readonly host?: string;
  /** A `pss_user:` or `pss_service:` token; defaults to `PHASE_TOKEN`, `PHASE_SERVICE_TOKEN`, `PHASE_PAT_TOKEN`. */
  readonly phaseToken?: string;
  /** Skip TLS verification for a self-hosted instance with a self-signed certificate. */
  readonly skipTlsVerification?: boolean;
  /** Provider version constraint written to `required_providers`. */
  readonly version?: string;
  readonly alias?: string;
}

/** The `phase` provider block. */
export class PhaseProvider extends TerraformProvider {
  static readonly tfResourceType = 'phase';

  constructor(
    scope: Construct,
    id: string,
    private readonly config: PhaseProviderConfig = {},
  ) {
    super(scope, id, {
      terraformResourceType: 'phase',
      terraformGeneratorMetadata: { providerName: 'phase', providerVersionConstraint: config.version },
      terraformProviderSource: PROVIDER_SOURCE,
    });
    this.alias = config.alias;
  }

  protected override synthesizeAttributes(): Record<string, unknown> {
    return compact({
      host: this.config.host,
      phase_token: this.config.phaseToken,
      skip_tls_verification: this.config.skipTlsVerification,
      alias: this.alias,
    });
  }
}

/** Drops undefined entries: Terraform JSON treats an absent attribute as null. */
export function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
