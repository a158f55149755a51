/** `phase_app`, `phase_role` and `phase_service_account` data sources: look an object up by id or by name. */
import { DiagnosticsError, error } from '../framework/diagnostics';
import type { DataSourceDef } from '../framework/provider';
import type { AttributeDef } from '../framework/schema';
import { isUnknown, type TfObject } from '../framework/types';
import type { Client } from '../phase/common';
import { str } from '../phase/values';
import { roleState } from '../resources/role';

const idOrName = (what: string): Record<string, AttributeDef> => ({
  id: {
    type: 'string',
    optional: true,
    computed: true,
    description: `The ${what} id. Set \`id\` or \`name\`.`,
  },
  name: {
    type: 'string',
    optional: true,
    computed: true,
    description: `The ${what} name (exact match). Set \`id\` or \`name\`.`,
  },
});

function checkIdOrName(config: TfObject, diags: import('../framework/diagnostics').Diagnostic[]): void {
  if (isUnknown(config.id) || isUnknown(config.name)) return;
  const n = [config.id, config.name].filter((v) => v !== null).length;
  if (n !== 1)
    diags.push(error('Invalid lookup', 'Set exactly one of id or name.', [n === 0 ? 'name' : 'id']));
}

/** Picks the single object matching the configured id or name, with a clear error otherwise. */
function pick<T extends { id: string; name: string }>(list: T[], config: TfObject, what: string): T {
  const id = str(config, 'id');
  const name = str(config, 'name');
  const found = list.filter((x) => (id ? x.id === id : x.name === name));
  if (found.length === 1) return found[0];
  const which = id ? `id "${id}"` : `name "${name}"`;
  throw new DiagnosticsError([
    found.length === 0
      ? error(`${what} not found`, `No ${what} with ${which} is visible to this token.`, [id ? 'id' : 'name'])
      : error(`Ambiguous ${what} name`, `${found.length} objects are named "${name}"; look it up by id.`, [
          'name',
        ]),
  ]);
}

export const appDataSource: DataSourceDef<Client> = {
  typeName: 'phase_app',
  validate: checkIdOrName,
  schema: {
    version: 0,
    block: {
      description: 'Looks up an app by id or name.',
      attributes: {
        ...idOrName('app'),
        description: { type: 'string', computed: true, description: 'Description.' },
        sse_enabled: {
          type: 'bool',
          computed: true,
          description: 'Whether server-side encryption is on (needed by `phase_secret`).',
        },
        environments: {
          type: ['list', 'string'],
          computed: true,
          description: 'Environment names in display order.',
        },
        environment_ids: { type: ['map', 'string'], computed: true, description: 'Environment ids by name.' },
        created_at: { type: 'string', computed: true, description: 'Creation time.' },
        updated_at: { type: 'string', computed: true, description: 'Last change.' },
      },
    },
  },
  async read(client, config) {
    const app = pick(await client.listApps(), config, 'app');
    const envs = app.sseEnabled ? await client.listEnvironments(app.id) : [];
    envs.sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    return {
      id: app.id,
      name: app.name,
      description: app.description ?? null,
      sse_enabled: app.sseEnabled,
      environments: envs.map((e) => e.name),
      environment_ids: Object.fromEntries(envs.map((e) => [e.name, e.id])),
      created_at: app.createdAt ?? null,
      updated_at: app.updatedAt ?? null,
    };
  },
};

export const roleDataSource: DataSourceDef<Client> = {
  typeName: 'phase_role',
  validate: checkIdOrName,
  schema: {
    version: 0,
    block: {
      description: 'Looks up a role (default or custom) by id or name, e.g. `name = "Service"`.',
      attributes: {
        ...idOrName('role'),
        description: { type: 'string', computed: true, description: 'Description.' },
        color: { type: 'string', computed: true, description: 'Display colour.' },
        is_default: { type: 'bool', computed: true, description: 'Whether this is a built-in role.' },
        permissions: {
          type: ['map', ['list', 'string']],
          computed: true,
          description: 'Organisation-level permissions.',
        },
        app_permissions: {
          type: ['map', ['list', 'string']],
          computed: true,
          description: 'App-level permissions.',
        },
        created_at: { type: 'string', computed: true, description: 'Creation time.' },
      },
    },
  },
  async read(client, config) {
    const role = pick(await client.listRoles(), config, 'role');
    const full = await client.getRole(role.id);
    return roleState({ ...role, ...full }, { description: '', color: '' });
  },
};

export const serviceAccountDataSource: DataSourceDef<Client> = {
  typeName: 'phase_service_account',
  validate: checkIdOrName,
  schema: {
    version: 0,
    block: {
      description: 'Looks up a service account by id or name.',
      attributes: {
        ...idOrName('service account'),
        role_id: { type: 'string', computed: true, description: 'Role id.' },
        role_name: { type: 'string', computed: true, description: 'Role name.' },
        app_ids: {
          type: ['list', 'string'],
          computed: true,
          description: 'Apps the service account can use.',
        },
        token_ids: {
          type: ['list', 'string'],
          computed: true,
          description: 'Ids of its live tokens (expired ones included).',
        },
        created_at: { type: 'string', computed: true, description: 'Creation time.' },
        updated_at: { type: 'string', computed: true, description: 'Last change.' },
      },
    },
  },
  async read(client, config) {
    const sa = pick(await client.listServiceAccounts(), config, 'service account');
    const detail = await client.getServiceAccount(sa.id);
    return {
      id: sa.id,
      name: sa.name,
      role_id: detail.role?.id ?? null,
      role_name: detail.role?.name ?? null,
      app_ids: detail.apps.map((a) => a.id),
      token_ids: detail.tokens.map((t) => t.id),
      created_at: detail.createdAt ?? null,
      updated_at: detail.updatedAt ?? null,
    };
  },
};
