/**
 * `phase_service_account_access`: the complete set of apps and environments a service account can use
 * (declarative, like `PUT /v1/service-accounts/:id/access/`). One resource per service account.
 */
import type { ResourceDef } from '../framework/provider';
import { isObjectValue, type TfObject, type TfValue } from '../framework/types';
import { error } from '../framework/diagnostics';
import { deleteIgnoringGone, orNullIfGone, type Client } from '../phase/common';
import { need, str, strList } from '../phase/values';
import type { AccessGrant, ServiceAccountDetail } from '../../core/schemas';

function grantsFrom(planned: TfObject): AccessGrant {
  const apps = Array.isArray(planned.app) ? planned.app : [];
  return apps.filter(isObjectValue).map((a) => {
    const paths = strList(a, 'paths');
    return {
      id: need(a, 'app_id'),
      environments: strList(a, 'environments') ?? [],
      ...(paths && paths.length > 0 ? { paths } : {}),
    };
  });
}

/** The `app` blocks as the server reports them. Paths come per app (or per environment, merged). */
function appsFrom(sa: ServiceAccountDetail): TfObject[] {
  return sa.apps
    .filter((a) => a.environments.length > 0)
    .map((a) => {
      const appPaths = a.paths;
      const envPaths = a.environments.flatMap((e) => e.paths ?? []);
      const paths = [...new Set([...(appPaths ?? []), ...envPaths])];
      return {
        app_id: a.id,
        environments: a.environments.map((e) => e.id),
        paths: paths.length > 0 ? paths : null,
      } as TfObject;
    });
}

export const serviceAccountAccessResource: ResourceDef<Client> = {
  typeName: 'phase_service_account_access',
  importIdFormat: '<service_account_id>',
  schema: {
    version: 0,
    block: {
      description:
        'Which apps and environments a service account may use, optionally restricted to secret paths. ' +
        'Apps not listed are revoked; destroying the resource revokes all access. Only server-side-encrypted apps can be granted.',
      attributes: {
        id: {
          type: 'string',
          computed: true,
          description: 'Same as `service_account_id`.',
          planModifiers: ['useStateForUnknown'],
        },
        service_account_id: {
          type: 'string',
          required: true,
          description: 'The service account.',
          planModifiers: ['requiresReplace'],
        },
      },
      blocks: {
        app: {
          nesting: 'SET',
          block: {
            description: 'One app the service account can use.',
            attributes: {
              app_id: { type: 'string', required: true, description: 'App id.' },
              environments: {
                type: ['set', 'string'],
                required: true,
                description: 'Environment ids in that app (at least one).',
              },
              paths: {
                type: ['set', 'string'],
                optional: true,
                description:
                  'Restrict access to secrets under these paths (phase-bridge extension), e.g. `["/backend"]`.',
              },
            },
          },
        },
      },
    },
  },

  validate(config, diags) {
    const apps = Array.isArray(config.app) ? config.app : [];
    apps.forEach((a: TfValue, i) => {
      if (!isObjectValue(a)) return;
      const envs = a.environments;
      if (Array.isArray(envs) && envs.length === 0) {
        diags.push(
          error(
            'No environments',
            'Each app block needs at least one environment; remove the block to revoke the app.',
            ['app', i, 'environments'],
          ),
        );
      }
      const paths = a.paths;
      if (Array.isArray(paths) && paths.length === 0) {
        diags.push(
          error('Empty paths', 'Leave `paths` out to grant every path, or list at least one path.', [
            'app',
            i,
            'paths',
          ]),
        );
      }
      if (Array.isArray(paths)) {
        paths.forEach((p) => {
          if (typeof p === 'string' && !p.startsWith('/')) {
            diags.push(error('Invalid path', `Paths start with "/", got "${p}".`, ['app', i, 'paths']));
          }
        });
      }
    });
  },

  async create(client, planned) {
    const saId = need(planned, 'service_account_id');
    await client.setServiceAccountAccess(saId, grantsFrom(planned));
    return { ...planned, id: saId };
  },

  async read(client, state) {
    const saId = str(state, 'service_account_id') ?? need(state, 'id');
    const sa = await orNullIfGone(() => client.getServiceAccount(saId));
    if (!sa) return null;
    return { ...state, id: saId, service_account_id: saId, app: appsFrom(sa) };
  },

  async update(client, _prior, planned) {
    await client.setServiceAccountAccess(need(planned, 'service_account_id'), grantsFrom(planned));
    return planned;
  },

  async delete(client, state) {
    await deleteIgnoringGone(() => client.setServiceAccountAccess(need(state, 'service_account_id'), []));
  },

  importState(id) {
    return { id, service_account_id: id };
  },
};
