/**
 * Errors as Terraform diagnostics a person can act on: what failed, the upstream's own message, and what to do
 * (which token to check, which permission the token's role lacks).
 */
import { ApiError, NetworkError, ResponseValidationError } from '../../core/api-errors';
import { PhaseBridgeError, TokenFormatError } from '../../core/errors';
import { error, type Diagnostic } from '../framework/diagnostics';

type Action = 'create' | 'read' | 'update' | 'delete';

/** The Phase permission each type needs (spec: phase-rest-api.md §5.2, §10). */
const PERMISSION: Record<string, (a: Action) => string> = {
  phase_app: (a) => `Apps:${a} (organisation permissions)`,
  phase_environment: (a) => `Environments:${a} (app permissions) and access to the app's environments`,
  phase_role: (a) => `Roles:${a} (organisation permissions)`,
  phase_service_account: (a) => `ServiceAccounts:${a} (organisation permissions)`,
  phase_service_account_access: (a) =>
    a === 'read'
      ? 'ServiceAccounts:read (organisation permissions)'
      : 'ServiceAccounts:update (organisation permissions) and access to every app and environment granted',
  phase_service_account_token: (a) =>
    a === 'read'
      ? 'ServiceAccounts:read (organisation permissions)'
      : `ServiceAccountTokens:${a === 'update' ? 'create' : a} (organisation permissions); only global-access roles (Owner, Admin) may mint tokens for organisation-level service accounts`,
  phase_network_policy: (a) => `NetworkAccessPolicies:${a} (organisation permissions)`,
  phase_network_policy_attachment: (a) =>
    `NetworkAccessPolicies:${a === 'read' ? 'read' : 'update'} (organisation permissions)`,
  phase_secret: (a) => `Secrets:${a} (app permissions) and access to the environment`,
  phase_secrets: () => 'Secrets:read (app permissions) and access to the environment',
};

function actionFor(op: string): Action {
  if (op === 'create' || op === 'open') return 'create';
  if (op === 'update') return 'update';
  if (op === 'delete' || op === 'close') return 'delete';
  return 'read';
}

export function permissionFor(typeName: string, op: string): string | undefined {
  return PERMISSION[typeName]?.(actionFor(op));
}

export function errorToDiagnostics(e: unknown, op: string, typeName: string): Diagnostic[] {
  const what = typeName === 'provider' ? 'Configuring the provider' : `${op} of ${typeName}`;
  if (e instanceof ApiError) {
    const upstream = e.phaseError
      ? `Phase said: "${e.phaseError}".`
      : `Phase answered HTTP ${e.status} without a message.`;
    switch (e.status) {
      case 401:
        return [
          error(
            'Authentication failed',
            `${what} was rejected. ${upstream} Either the token is missing, unknown, expired or revoked ` +
              '(check phase_token in the provider block or the PHASE_TOKEN, PHASE_SERVICE_TOKEN or PHASE_PAT_TOKEN ' +
              'environment variable, and that host points at the server that issued the token), or it is a ' +
              'service-account token without access to this app or environment (see phase_service_account_access).',
          ),
        ];
      case 403: {
        const perm = permissionFor(typeName, op);
        return [
          error(
            'Permission denied',
            `${what} is not allowed for this token. ${upstream}` +
              (perm ? ` The token's role needs ${perm}.` : '') +
              ' A network access policy can also deny the request from this IP address.',
          ),
        ];
      }
      case 404:
        return [
          error(
            'Not found',
            `${what} failed: the object does not exist or belongs to another organisation. ${upstream}`,
          ),
        ];
      case 409:
        return [
          error('Conflict', `${what} failed because it conflicts with an existing object. ${upstream}`),
        ];
      case 400:
      case 422:
        return [error('Invalid request', `${what} failed validation. ${upstream}`)];
      case 429:
        return [error('Rate limited', `${what} was throttled after retries. ${upstream} Try again later.`)];
      default:
        return [
          error(
            e.status >= 500 ? 'Phase server error' : 'Phase API error',
            `${what} failed with HTTP ${e.status}. ${upstream}`,
          ),
        ];
    }
  }
  if (e instanceof NetworkError) {
    return [
      error(
        'Cannot reach Phase',
        `${what} failed: ${e.message}. Check host (or PHASE_HOST) and the network.`,
      ),
    ];
  }
  if (e instanceof ResponseValidationError) {
    return [error('Unexpected response from Phase', `${what} failed: ${e.message}. Is host a Phase server?`)];
  }
  if (e instanceof TokenFormatError) {
    return [
      error('Invalid phase_token', `${e.message}. Expected a pss_user:... or pss_service:... token.`, [
        'phase_token',
      ]),
    ];
  }
  if (e instanceof PhaseBridgeError) return [error('Provider error', `${what} failed: ${e.message}`)];
  return [error('Unexpected provider error', `${what} failed: ${(e as Error)?.message ?? String(e)}`)];
}
