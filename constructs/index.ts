/**
 * CDKTF constructs for Phase-style apps, service accounts and tokens (`import ... from 'phase-bridge/constructs'`).
 * The level-1 bindings generated from the provider schema are `phase-bridge/constructs/provider`.
 */
export { PhaseProvider, type PhaseProviderProps } from './phase-provider';
export {
  PhaseApp,
  DEFAULT_ENVIRONMENTS,
  type PhaseAppProps,
  type PhaseEnvironmentRef,
  type PhaseSecretProps,
  type PhaseSecretsOptions,
} from './app';
export {
  PhaseRole,
  GLOBAL_ROLES,
  type PhaseRoleProps,
  type PhaseAction,
  type PhaseOrgPermissions,
  type PhaseAppPermissions,
  type ManagedRoleName,
  type RoleRef,
} from './role';
export {
  PhaseServiceAccount,
  type PhaseServiceAccountProps,
  type PhaseGrantOptions,
  type PhaseTrustOptions,
  type PhaseTrustKubernetesOptions,
  type PhaseTrustOidcOptions,
  type PhaseTrustAwsOptions,
} from './service-account';
export { PhaseToken, type PhaseTokenProps } from './token';
export { PhaseNetworkPolicy, type PhaseNetworkPolicyProps } from './network-policy';
export { agentSidecar, AGENT_RESOURCES, type AgentSidecar, type AgentSidecarProps } from './sidecar';
export { WorkloadIdentity, type WorkloadIdentityProps, type WorkloadAppAccess } from './workload';
