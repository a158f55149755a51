/**
 * The Phase provider: configuration compatible with the official provider (`host`, `phase_token`,
 * `skip_tls_verification`; env PHASE_HOST, PHASE_TOKEN, PHASE_SERVICE_TOKEN, PHASE_PAT_TOKEN) and the list of
 * resources, data sources and ephemeral resources.
 */
import { error, type Diagnostic } from './framework/diagnostics';
import { buildProviderService, type ProviderDef } from './framework/provider';
import { containsUnknown, type TfObject } from './framework/types';
import { appDataSource, roleDataSource, serviceAccountDataSource } from './data-sources/lookups';
import { secretsDataSource } from './data-sources/secrets';
import { serviceAccountTokenEphemeral } from './ephemeral/service-account-token';
import { appResource } from './resources/app';
import { environmentResource } from './resources/environment';
import { externalIdentityResource, serviceAccountIdentityResource } from './resources/external-identity';
import { networkPolicyAttachmentResource, networkPolicyResource } from './resources/network-policy';
import { roleResource } from './resources/role';
import { secretResource } from './resources/secret';
import { serviceAccountResource } from './resources/service-account';
import { serviceAccountAccessResource } from './resources/service-account-access';
import { serviceAccountTokenResource } from './resources/service-account-token';
import type { Client } from './phase/common';
import { errorToDiagnostics } from './phase/errors';
import { bool, str } from './phase/values';

/** The official provider's default host (Phase Cloud's API). */
export const DEFAULT_HOST = 'https://api.phase.dev';
export const TOKEN_ENV_VARS = ['PHASE_TOKEN', 'PHASE_SERVICE_TOKEN', 'PHASE_PAT_TOKEN'] as const;

/** Resolves host and token from the configuration, then the environment (configuration wins). */
export function resolveSettings(
  config: TfObject,
  env: NodeJS.ProcessEnv = process.env,
): { host: string; token: string | undefined; tokenSource: string; skipTls: boolean } {
  const host = str(config, 'host') || env.PHASE_HOST || DEFAULT_HOST;
  let token = str(config, 'phase_token') || undefined;
  let tokenSource = 'phase_token';
  if (!token) {
    for (const v of TOKEN_ENV_VARS) {
      if (env[v]) {
        token = env[v];
        tokenSource = v;
        break;
      }
    }
  }
  return { host, token, tokenSource, skipTls: bool(config, 'skip_tls_verification') ?? false };
}

export const providerDef: ProviderDef<Client> = {
  schema: {
    version: 0,
    block: {
      description: 'Phase secrets, apps, roles, service accounts and tokens (phase-bridge).',
      attributes: {
        host: {
          type: 'string',
          optional: true,
          description:
            'Phase host. Defaults to `PHASE_HOST`, then Phase Cloud (`https://api.phase.dev`). Other hosts get `/service/public` appended.',
        },
        phase_token: {
          type: 'string',
          optional: true,
          sensitive: true,
          description:
            'A `pss_user:` (personal access) or `pss_service:` token. Defaults to `PHASE_TOKEN`, `PHASE_SERVICE_TOKEN`, then `PHASE_PAT_TOKEN`.',
        },
        skip_tls_verification: {
          type: 'bool',
          optional: true,
          description:
            'Skip TLS certificate checks for a self-hosted host with a self-signed certificate. Default false.',
        },
      },
    },
  },

  async configure(config, _tfVersion, diags: Diagnostic[]) {
    // During plan the configuration may depend on values known only at apply (e.g. an ephemeral token).
    if (containsUnknown(config)) return undefined;
    const s = resolveSettings(config);
    if (!s.token) {
      diags.push(
        error(
          'Missing Phase token',
          'Set phase_token in the provider block, or one of the environment variables PHASE_TOKEN, PHASE_SERVICE_TOKEN or PHASE_PAT_TOKEN.',
          ['phase_token'],
        ),
      );
      return undefined;
    }
    // The HTTP client (and zod) load only when a configured provider needs them: keeps start-up fast.
    const { PhaseClient } = require('../core/client') as typeof import('../core/client');
    try {
      return new PhaseClient({
        host: s.host,
        token: s.token,
        skipTlsVerification: s.skipTls,
        userAgent: 'phase-bridge-terraform',
      });
    } catch (e) {
      const d = errorToDiagnostics(e, 'configure', 'provider');
      if (s.tokenSource !== 'phase_token')
        for (const x of d) x.detail += ` (token taken from ${s.tokenSource})`;
      diags.push(...d);
      return undefined;
    }
  },

  resources: [
    appResource,
    environmentResource,
    roleResource,
    serviceAccountResource,
    serviceAccountAccessResource,
    serviceAccountTokenResource,
    externalIdentityResource,
    serviceAccountIdentityResource,
    networkPolicyResource,
    networkPolicyAttachmentResource,
    secretResource,
  ],
  dataSources: [secretsDataSource, appDataSource, roleDataSource, serviceAccountDataSource],
  ephemeralResources: [serviceAccountTokenEphemeral],
  errorToDiagnostics,
};

/** The tfplugin6.Provider handlers for this provider. */
export function providerService(): ReturnType<typeof buildProviderService<Client>> {
  return buildProviderService(providerDef);
}
