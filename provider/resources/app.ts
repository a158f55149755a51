/** `phase_app`: an application (always server-side encrypted when created through the API). */
import type { ResourceDef } from '../framework/provider';
import type { TfObject } from '../framework/types';
import { createdAt, deleteIgnoringGone, idAttr, orNullIfGone, updatedAt, type Client } from '../phase/common';
import { maxLength, need, notBlank, str, strList, textOrNull } from '../phase/values';

async function environmentIds(
  client: Client,
  appId: string,
): Promise<{ names: string[]; ids: Record<string, string> }> {
  const envs = await client.listEnvironments(appId);
  envs.sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
  return { names: envs.map((e) => e.name), ids: Object.fromEntries(envs.map((e) => [e.name, e.id])) };
}

export const appResource: ResourceDef<Client> = {
  typeName: 'phase_app',
  importIdFormat: '<app_id>',
  schema: {
    version: 0,
    block: {
      description: 'A Phase application with its environments. Apps created here use server-side encryption.',
      attributes: {
        id: idAttr('app'),
        name: {
          type: 'string',
          required: true,
          description: 'App name (at most 64 characters).',
          validators: [notBlank, maxLength(64)],
        },
        description: {
          type: 'string',
          optional: true,
          description: 'Free-text description.',
          validators: [maxLength(10000)],
        },
        environments: {
          type: ['list', 'string'],
          optional: true,
          computed: true,
          description:
            'Environments created with the app, in order (default `Development`, `Staging`, `Production`). Changing the list re-creates the app; manage later environments with `phase_environment`.',
          planModifiers: ['requiresReplace', 'useStateForUnknown'],
        },
        environment_ids: {
          type: ['map', 'string'],
          computed: true,
          description: 'Environment ids by name, for every environment of the app.',
          // Renaming the app leaves its environments alone; new ones show up on the next refresh.
          planModifiers: ['useStateForUnknown'],
        },
        sse_enabled: {
          type: 'bool',
          computed: true,
          description: 'Whether server-side encryption is on.',
          planModifiers: ['useStateForUnknown'],
        },
        created_at: createdAt,
        updated_at: updatedAt,
      },
    },
  },

  async create(client, planned) {
    const app = await client.createApp({
      name: need(planned, 'name'),
      description: str(planned, 'description'),
      environments: strList(planned, 'environments'),
    });
    const envs = [...app.environments].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    return {
      ...planned,
      id: app.id,
      environments: envs.map((e) => e.name),
      environment_ids: Object.fromEntries(envs.map((e) => [e.name, e.id])),
      sse_enabled: app.sseEnabled,
      created_at: app.createdAt ?? null,
      updated_at: app.updatedAt ?? null,
    };
  },

  async read(client, state) {
    const id = need(state, 'id');
    const app = await orNullIfGone(() => client.getApp(id));
    if (!app) return null;
    const envs = await environmentIds(client, id);
    return {
      ...state,
      name: app.name,
      description: textOrNull(app.description, state.description),
      // The creation-time list is kept; after an import it is filled from the server.
      environments: state.environments ?? envs.names,
      environment_ids: envs.ids,
      sse_enabled: app.sseEnabled,
      created_at: app.createdAt ?? null,
      updated_at: app.updatedAt ?? null,
    };
  },

  async update(client, prior, planned) {
    const id = need(prior, 'id');
    const app = await client.updateApp(id, {
      name: need(planned, 'name'),
      description: str(planned, 'description') ?? '',
    });
    const envs = await environmentIds(client, id);
    return {
      ...planned,
      environment_ids: envs.ids,
      sse_enabled: app.sseEnabled,
      updated_at: app.updatedAt ?? null,
    };
  },

  async delete(client, state) {
    await deleteIgnoringGone(() => client.deleteApp(need(state, 'id')));
  },

  importState(id): TfObject {
    return { id };
  },
};
