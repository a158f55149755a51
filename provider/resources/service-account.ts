/** `phase_service_account`: a service account with server-side key management. */
import type { ResourceDef } from '../framework/provider';
import { createdAt, deleteIgnoringGone, idAttr, orNullIfGone, updatedAt, type Client } from '../phase/common';
import { maxLength, need, notBlank } from '../phase/values';

export const serviceAccountResource: ResourceDef<Client> = {
  typeName: 'phase_service_account',
  importIdFormat: '<service_account_id>',
  schema: {
    version: 0,
    block: {
      description:
        'A service account. Name and role update in place. The API mints an initial token on creation; the provider ' +
        'revokes it at once, because nobody could hold it: manage tokens with `phase_service_account_token`.',
      attributes: {
        id: idAttr('service account'),
        name: {
          type: 'string',
          required: true,
          description: 'Name (at most 64 characters).',
          validators: [notBlank, maxLength(64)],
        },
        role_id: {
          type: 'string',
          required: true,
          description:
            'Role id (for example from the `phase_role` data source). Roles with global access (Owner, Admin) are refused.',
        },
        role_name: { type: 'string', computed: true, description: 'Name of the role.' },
        created_at: createdAt,
        updated_at: updatedAt,
      },
    },
  },

  async create(client, planned) {
    const sa = await client.createServiceAccount({
      name: need(planned, 'name'),
      role_id: need(planned, 'role_id'),
    });
    // The initial token is shown once and would never expire; nobody holds it, so revoke it.
    await deleteIgnoringGone(() => client.deleteServiceAccountToken(sa.id, sa.initialToken.id));
    return {
      ...planned,
      id: sa.id,
      role_name: sa.role?.name ?? null,
      created_at: sa.createdAt ?? null,
      updated_at: sa.updatedAt ?? null,
    };
  },

  async read(client, state) {
    const sa = await orNullIfGone(() => client.getServiceAccount(need(state, 'id')));
    if (!sa) return null;
    return {
      ...state,
      name: sa.name,
      role_id: sa.role?.id ?? null,
      role_name: sa.role?.name ?? null,
      created_at: sa.createdAt ?? null,
      updated_at: sa.updatedAt ?? null,
    };
  },

  async update(client, prior, planned) {
    const sa = await client.updateServiceAccount(need(prior, 'id'), {
      name: need(planned, 'name'),
      role_id: need(planned, 'role_id'),
    });
    return { ...planned, role_name: sa.role?.name ?? null, updated_at: sa.updatedAt ?? null };
  },

  async delete(client, state) {
    await deleteIgnoringGone(() => client.deleteServiceAccount(need(state, 'id')));
  },

  importState(id) {
    return { id };
  },
};
