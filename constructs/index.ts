/** CDKTF constructs over the phase-bridge Terraform provider (`source = "phase-bridge/phase"`). */
export { PhaseProvider, PROVIDER_SOURCE, type PhaseProviderConfig } from './provider';
export { PhaseApp, PhaseEnvironment, type PhaseAppConfig, type PhaseEnvironmentConfig } from './app';
export {
  PhaseServiceAccount,
  PhaseServiceAccountAccess,
  type AppAccess,
  type PhaseServiceAccountConfig,
  type PhaseServiceAccountAccessConfig,
} from './service-account';
export {
  PhaseServiceAccountToken,
  PhaseEphemeralServiceAccountToken,
  type PhaseServiceAccountTokenConfig,
  type PhaseEphemeralServiceAccountTokenConfig,
} from './token';
export { PhaseSecret, type PhaseSecretConfig } from './secret';
export {
  WorkloadIdentity,
  PhaseRoleLookup,
  type WorkloadIdentityProps,
  type WorkloadAppAccess,
} from './workload';
