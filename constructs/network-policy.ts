import { Construct } from 'constructs';
import { networkPolicy, networkPolicyAttachment } from './provider';
import type { PhaseServiceAccount } from './service-account';
import { idPart, validate } from './validation';

export interface PhaseNetworkPolicyProps {
  /** Policy name, at most 64 characters. */
  readonly name: string;
  /** IPv4/IPv6 addresses and CIDR ranges the attached accounts may connect from. */
  readonly allowedIps: string[];
  /**
   * Apply to every account of the organisation (Enterprise plans in Phase).
   * @default false: only attached accounts
   */
  readonly isGlobal?: boolean;
}

const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/;

/** A rough, synth-time check; the provider and the server validate exactly. */
function plausibleEntry(e: string): boolean {
  const [addr, prefix, ...rest] = e.trim().split('/');
  if (rest.length) return false;
  const v4 = IPV4.test(addr) && addr.split('.').every((o) => Number(o) <= 255);
  const v6 = addr.includes(':') && /^[0-9a-fA-F:.]+$/.test(addr);
  if (!v4 && !v6) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (v4 ? 32 : 128));
}

/**
 * A network access policy (a phase-bridge extension over REST; Phase manages these in its console). Accounts attached
 * to a policy may connect only from its addresses.
 */
export class PhaseNetworkPolicy extends Construct {
  /** The level-1 `phase_network_policy` resource. */
  readonly resource: networkPolicy.NetworkPolicy;

  constructor(scope: Construct, id: string, props: PhaseNetworkPolicyProps) {
    super(scope, id);
    this.resource = new networkPolicy.NetworkPolicy(this, 'policy', {
      name: props.name,
      allowedIps: props.allowedIps,
      isGlobal: props.isGlobal,
    });
    validate(this, () => {
      const problems: string[] = [];
      if (props.allowedIps.length === 0)
        problems.push("'allowedIps' is empty; list at least one address or range.");
      for (const e of props.allowedIps) {
        if (!plausibleEntry(e)) problems.push(`'${e}' is not an IPv4/IPv6 address or CIDR range.`);
      }
      return problems;
    });
  }

  /** The policy id (a token until apply). */
  get id(): string {
    return this.resource.id;
  }

  /** Confines a service account to this policy's addresses. */
  attach(account: PhaseServiceAccount): networkPolicyAttachment.NetworkPolicyAttachment {
    return new networkPolicyAttachment.NetworkPolicyAttachment(this, `attach-${idPart(account.node.path)}`, {
      policyId: this.id,
      accountType: 'service_account',
      accountId: account.id,
    });
  }
}
