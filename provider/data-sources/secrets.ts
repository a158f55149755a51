/**
 * `phase_secrets`: the official provider's data source (same schema and behaviour): every secret of an
 * environment as a sensitive map, filtered by `path` (default `/`, `""` = every path), `key` and `tags`;
 * an active personal override replaces the value.
 */
import type { DataSourceDef } from '../framework/provider';
import type { Client } from '../phase/common';
import { need, str, strList } from '../phase/values';
import { normalisePath } from '../resources/secret';

export const secretsDataSource: DataSourceDef<Client> = {
  typeName: 'phase_secrets',
  schema: {
    version: 0,
    block: {
      description: 'Reads the secrets of an environment into a map of key to value.',
      attributes: {
        id: { type: 'string', computed: true, description: 'Identifier of this read.' },
        app_id: { type: 'string', required: true, description: 'The ID of the Phase App.' },
        env: { type: 'string', required: true, description: 'The environment name.' },
        path: {
          type: 'string',
          optional: true,
          computed: true,
          description: 'The path to fetch secrets from (default `/`; `""` for every path).',
        },
        key: { type: 'string', optional: true, description: 'The key of a specific secret to fetch.' },
        tags: { type: ['list', 'string'], optional: true, description: 'Tags to filter by (any of them).' },
        secrets: {
          type: ['map', 'string'],
          computed: true,
          sensitive: true,
          description: 'Secret values by key.',
        },
      },
    },
  },

  async read(client, config) {
    const appId = need(config, 'app_id');
    const env = need(config, 'env');
    const path = str(config, 'path') ?? '/';
    const key = str(config, 'key');
    const tags = strList(config, 'tags') ?? [];
    const list = await client.listSecrets({ appId, env, key: key || undefined, tags });
    const all = path === '';
    const wanted = all ? '' : normalisePath(path);
    const secrets: Record<string, string> = {};
    for (const s of list) {
      if (!all && s.path !== wanted) continue;
      secrets[s.key] = s.override && s.override.isActive ? s.override.value : s.value;
    }
    return { ...config, path, secrets, id: `${appId}-${env}-${path}-${key ?? ''}-${tags.join(',')}` };
  },
};
