/** `phase_environment`: an environment inside an app (custom environments need a paid plan upstream). */
import type { ResourceDef } from '../framework/provider';
import { createdAt, deleteIgnoringGone, idAttr, orNullIfGone, updatedAt, type Client } from '../phase/common';
import { maxLength, need, splitImportId } from '../phase/values';
import { error } from '../framework/diagnostics';
import type { Validator } from '../framework/schema';

const envName: Validator = (v, path) =>
  typeof v === 'string' && !/^[a-zA-Z0-9\-_]{1,64}$/.test(v)
    ? [
        error(
          'Invalid environment name',
          'Only letters, numbers, hyphens and underscores are allowed (at most 64 characters).',
          path,
        ),
      ]
    : [];

export const environmentResource: ResourceDef<Client> = {
  typeName: 'phase_environment',
  importIdFormat: '<app_id>:<environment_id>',
  schema: {
    version: 0,
    block: {
      description:
        'An environment of a Phase app. Renaming updates it in place; moving it to another app re-creates it.',
      attributes: {
        id: idAttr('environment'),
        app_id: {
          type: 'string',
          required: true,
          description: 'The app the environment belongs to.',
          planModifiers: ['requiresReplace'],
        },
        name: {
          type: 'string',
          required: true,
          description: 'Environment name.',
          validators: [envName, maxLength(64)],
        },
        env_type: {
          type: 'string',
          computed: true,
          description: '`dev`, `staging`, `prod` or `custom`.',
          planModifiers: ['useStateForUnknown'],
        },
        index: {
          type: 'number',
          computed: true,
          description: 'Display order within the app.',
          planModifiers: ['useStateForUnknown'],
        },
        created_at: createdAt,
        updated_at: updatedAt,
      },
    },
  },

  async create(client, planned) {
    const env = await client.createEnvironment(need(planned, 'app_id'), need(planned, 'name'));
    return {
      ...planned,
      id: env.id,
      env_type: env.envType,
      index: env.index ?? null,
      created_at: env.createdAt ?? null,
      updated_at: env.updatedAt ?? null,
    };
  },

  async read(client, state) {
    const env = await orNullIfGone(() => client.getEnvironment(need(state, 'id')));
    if (!env) return null;
    return {
      ...state,
      name: env.name,
      env_type: env.envType,
      index: env.index ?? null,
      created_at: env.createdAt ?? null,
      updated_at: env.updatedAt ?? null,
    };
  },

  async update(client, prior, planned) {
    const env = await client.updateEnvironment(need(prior, 'id'), need(planned, 'name'));
    return { ...planned, updated_at: env.updatedAt ?? null };
  },

  async delete(client, state) {
    await deleteIgnoringGone(() => client.deleteEnvironment(need(state, 'id')));
  },

  importState(id) {
    const [appId, envId] = splitImportId(id, ['app_id', 'environment_id'], '3f0c…:9b1e…');
    return { id: envId, app_id: appId };
  },
};
