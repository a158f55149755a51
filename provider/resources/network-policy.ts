/** `phase_network_policy` and `phase_network_policy_attachment` (phase-bridge extension of the REST API). */
import type { ResourceDef } from '../framework/provider';
import type { TfObject } from '../framework/types';
import { createdAt, deleteIgnoringGone, idAttr, orNullIfGone, updatedAt, type Client } from '../phase/common';
import {
  bool,
  ipList,
  maxLength,
  need,
  notBlank,
  oneOf,
  splitImportId,
  stableList,
  strList,
} from '../phase/values';
import type { NetworkPolicy } from '../../core/schemas';
import type { AccountType } from '../../core/client';

function policyState(p: NetworkPolicy, prior: TfObject): TfObject {
  return {
    ...prior,
    id: p.id,
    name: p.name,
    allowed_ips: stableList(p.allowedIps, prior.allowed_ips ?? null),
    is_global: p.isGlobal,
    created_at: p.createdAt ?? null,
    updated_at: p.updatedAt ?? null,
  };
}

export const networkPolicyResource: ResourceDef<Client> = {
  typeName: 'phase_network_policy',
  importIdFormat: '<policy_id>',
  schema: {
    version: 0,
    block: {
      description:
        'A network access policy: the IP addresses and ranges accounts may call the API from. A global policy applies ' +
        'to every account; otherwise attach it with `phase_network_policy_attachment`.',
      attributes: {
        id: idAttr('network policy'),
        name: {
          type: 'string',
          required: true,
          description: 'Policy name.',
          validators: [notBlank, maxLength(64)],
        },
        allowed_ips: {
          type: ['set', 'string'],
          required: true,
          description: 'IPv4/IPv6 addresses or CIDR ranges, e.g. `["10.0.0.0/24", "2001:db8::/32"]`.',
          validators: [ipList],
        },
        is_global: {
          type: 'bool',
          optional: true,
          computed: true,
          default: false,
          description: 'Apply to every account of the organisation. Default false.',
        },
        created_at: createdAt,
        updated_at: updatedAt,
      },
    },
  },

  async create(client, planned) {
    const p = await client.createNetworkPolicy({
      name: need(planned, 'name'),
      allowedIps: strList(planned, 'allowed_ips') ?? [],
      isGlobal: bool(planned, 'is_global') ?? false,
    });
    return policyState(p, planned);
  },

  async read(client, state) {
    const p = await orNullIfGone(() => client.getNetworkPolicy(need(state, 'id')));
    return p ? policyState(p, state) : null;
  },

  async update(client, prior, planned) {
    const p = await client.updateNetworkPolicy(need(prior, 'id'), {
      name: need(planned, 'name'),
      allowedIps: strList(planned, 'allowed_ips') ?? [],
      isGlobal: bool(planned, 'is_global') ?? false,
    });
    return policyState(p, planned);
  },

  async delete(client, state) {
    await deleteIgnoringGone(() => client.deleteNetworkPolicy(need(state, 'id')));
  },

  importState(id) {
    return { id };
  },
};

export const networkPolicyAttachmentResource: ResourceDef<Client> = {
  typeName: 'phase_network_policy_attachment',
  importIdFormat: '<policy_id>:<account_id>',
  schema: {
    version: 0,
    block: {
      description:
        'Attaches a network policy to a service account or a member. Every change re-creates the attachment.',
      attributes: {
        id: {
          type: 'string',
          computed: true,
          description: '`<policy_id>:<account_id>`.',
          planModifiers: ['useStateForUnknown'],
        },
        policy_id: {
          type: 'string',
          required: true,
          description: 'The network policy.',
          planModifiers: ['requiresReplace'],
        },
        account_type: {
          type: 'string',
          optional: true,
          computed: true,
          default: 'service_account',
          description: '`service_account` (default) or `member`.',
          validators: [oneOf('service_account', 'member')],
          planModifiers: ['requiresReplace'],
        },
        account_id: {
          type: 'string',
          required: true,
          description: 'Service account id or organisation member id.',
          planModifiers: ['requiresReplace'],
        },
      },
    },
  },

  async create(client, planned) {
    const policyId = need(planned, 'policy_id');
    const accountId = need(planned, 'account_id');
    await client.attachNetworkPolicy(policyId, {
      account_type: need(planned, 'account_type') as AccountType,
      account_id: accountId,
    });
    return { ...planned, id: `${policyId}:${accountId}` };
  },

  async read(client, state) {
    const policyId = need(state, 'policy_id');
    const accountId = need(state, 'account_id');
    const p = await orNullIfGone(() => client.getNetworkPolicy(policyId));
    const att = p?.attachments.find((a) => a.accountId === accountId);
    if (!att) return null;
    return { ...state, id: `${policyId}:${accountId}`, account_type: att.accountType };
  },

  async update(_client, _prior, planned) {
    return planned;
  },

  async delete(client, state) {
    await deleteIgnoringGone(() =>
      client.detachNetworkPolicy(need(state, 'policy_id'), {
        account_type: need(state, 'account_type') as AccountType,
        account_id: need(state, 'account_id'),
      }),
    );
  },

  importState(id) {
    const [policyId, accountId] = splitImportId(id, ['policy_id', 'account_id'], '5d2e…:6a1f…');
    return { id, policy_id: policyId, account_id: accountId, account_type: 'service_account' };
  },
};
