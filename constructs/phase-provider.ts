import type { Construct } from 'constructs';
import { provider } from './provider';

export interface PhaseProviderProps {
  /**
   * The Phase host: Phase Cloud, a self-hosted Phase, or a phase-bridge server (`http://127.0.0.1:8080`).
   * @default the `PHASE_HOST` environment variable at plan time, then Phase Cloud
   */
  readonly host?: string;
  /**
   * A personal access token (`pss_user:`) or service token (`pss_service:`). Keep it in `PHASE_TOKEN` in the
   * environment instead: a token given here is written into the synthesised JSON (and so into your repository if
   * you commit `cdktf.out`).
   * @default the `PHASE_TOKEN` environment variable (then `PHASE_SERVICE_TOKEN`, `PHASE_PAT_TOKEN`) at plan time
   */
  readonly token?: string;
  /**
   * Skip TLS certificate checks, for a self-hosted host with a self-signed certificate.
   * @default false
   */
  readonly skipTlsVerification?: boolean;
  /**
   * Alias, to configure the provider twice in one stack (for example two Phase organisations).
   * @default no alias
   */
  readonly alias?: string;
  /**
   * Version constraint written to `required_providers` (cdktf-cli requires one).
   * @default `~> MAJOR.MINOR` of the phase-bridge release the bindings were generated for (e.g. `~> 0.1`)
   */
  readonly version?: string;
}

/** The `phase` provider: where apps, service accounts and tokens are created, and with which credentials. */
export class PhaseProvider extends provider.PhaseProvider {
  constructor(scope: Construct, id: string, props: PhaseProviderProps = {}) {
    super(scope, id, {
      host: props.host,
      phaseToken: props.token,
      skipTlsVerification: props.skipTlsVerification,
      alias: props.alias,
      version: props.version,
    });
  }
}
