/**
 * Table types shared by the SQLite and PostgreSQL stores. One schema for both dialects: timestamps are ISO-8601
 * text (fixed width, so text order is time order), booleans are 0/1 integers, JSON is text.
 */

export type AccountType = 'member' | 'service_account';

export interface OrganisationTable {
  id: string;
  name: string;
  created_at: string;
  updated_at: string;
}

export interface RoleTable {
  id: string;
  org_id: string;
  name: string;
  description: string | null;
  color: string;
  /** JSON text; ignored for default roles (the built-in map is used). */
  permissions: string;
  is_default: number;
  created_at: string;
  updated_at: string;
}

export interface MemberTable {
  id: string;
  org_id: string;
  email: string;
  username: string;
  full_name: string | null;
  role_id: string | null;
  /** Ed25519 public key hex. */
  identity_key: string;
  server_wrapped_keyring: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export interface UserTokenTable {
  id: string;
  member_id: string;
  name: string;
  /** SHA-256 of the bearer value; the plaintext is never stored. */
  token_hash: string;
  identity_key: string;
  wrapped_key_share: string;
  created_at: string;
  expires_at: string | null;
  deleted_at: string | null;
  last_used_at: string | null;
}

export interface ServiceAccountTable {
  id: string;
  org_id: string;
  name: string;
  role_id: string | null;
  identity_key: string;
  server_wrapped_keyring: string | null;
  server_wrapped_recovery: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export interface SaTokenTable {
  id: string;
  sa_id: string;
  name: string;
  token_hash: string;
  identity_key: string;
  wrapped_key_share: string;
  created_by_member: string | null;
  created_by_sa: string | null;
  created_at: string;
  expires_at: string | null;
  deleted_at: string | null;
  last_used_at: string | null;
}

export interface AppTable {
  id: string;
  org_id: string;
  name: string;
  description: string | null;
  sse_enabled: number;
  created_at: string;
  updated_at: string;
}

/** Direct app membership (members and service accounts); `paths` is the path-restriction extension (JSON). */
export interface AppMembershipTable {
  app_id: string;
  account_type: AccountType;
  account_id: string;
  paths: string | null;
  created_at: string;
}

export interface EnvironmentTable {
  id: string;
  app_id: string;
  name: string;
  env_type: string;
  sort_index: number;
  identity_key: string;
  wrapped_seed: string;
  wrapped_salt: string;
  created_at: string;
  updated_at: string;
}

export interface ServerEnvKeyTable {
  environment_id: string;
  identity_key: string;
  wrapped_seed: string;
  wrapped_salt: string;
  created_at: string;
}

/** The access grant: an account holds an environment when a row exists. */
export interface EnvironmentKeyTable {
  id: string;
  environment_id: string;
  account_type: AccountType;
  account_id: string;
  identity_key: string;
  wrapped_seed: string;
  wrapped_salt: string;
  created_at: string;
  updated_at: string;
}

export interface FolderTable {
  id: string;
  environment_id: string;
  path: string;
  created_at: string;
}

export interface SecretTable {
  id: string;
  environment_id: string;
  folder_id: string | null;
  path: string;
  key: string;
  key_digest: string;
  value: string;
  comment: string;
  version: number;
  type: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export interface TagTable {
  id: string;
  org_id: string;
  name: string;
  color: string;
}

export interface SecretTagTable {
  secret_id: string;
  tag_id: string;
}

export interface PersonalSecretTable {
  id: string;
  secret_id: string;
  member_id: string;
  value: string;
  is_active: number;
  created_at: string;
  updated_at: string;
}

export interface NetworkPolicyTable {
  id: string;
  org_id: string;
  name: string;
  /** JSON array of IPs and CIDRs. */
  allowed_ips: string;
  is_global: number;
  created_at: string;
  updated_at: string;
}

export interface NetworkPolicyAttachmentTable {
  policy_id: string;
  account_type: AccountType;
  account_id: string;
}

export interface AuditEventTable {
  id: string;
  org_id: string;
  timestamp: string;
  /** C, R, U, D or A (access change). */
  event_type: string;
  resource_type: string;
  resource_id: string | null;
  actor_type: string | null;
  actor_id: string | null;
  token_id: string | null;
  app_id: string | null;
  environment_id: string | null;
  key_digest: string | null;
  path: string | null;
  /** JSON text: non-secret details (names, digests of a list read). Never a secret value. */
  detail: string | null;
  ip_address: string | null;
  user_agent: string | null;
}

export interface InviteTable {
  id: string;
  org_id: string;
  invitee_email: string;
  role_id: string | null;
  invited_by_member: string | null;
  invited_by_sa: string | null;
  valid: number;
  created_at: string;
  expires_at: string;
}

/** An external identity (phase-external-identities.md §1): a platform credential that may log in as service accounts. */
export interface ExternalIdentityTable {
  id: string;
  org_id: string;
  /** `oidc` (ours) or `aws_iam`. */
  provider: string;
  name: string;
  description: string | null;
  /** Provider-specific JSON (camelCase keys, as Phase stores them). */
  config: string;
  token_name_pattern: string | null;
  default_ttl_seconds: number;
  max_ttl_seconds: number;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export interface ExternalIdentityAttachmentTable {
  identity_id: string;
  service_account_id: string;
  created_at: string;
}

export interface DB {
  organisations: OrganisationTable;
  roles: RoleTable;
  members: MemberTable;
  user_tokens: UserTokenTable;
  service_accounts: ServiceAccountTable;
  sa_tokens: SaTokenTable;
  apps: AppTable;
  app_memberships: AppMembershipTable;
  environments: EnvironmentTable;
  server_env_keys: ServerEnvKeyTable;
  environment_keys: EnvironmentKeyTable;
  folders: FolderTable;
  secrets: SecretTable;
  tags: TagTable;
  secret_tags: SecretTagTable;
  personal_secrets: PersonalSecretTable;
  network_policies: NetworkPolicyTable;
  network_policy_attachments: NetworkPolicyAttachmentTable;
  audit_events: AuditEventTable;
  invites: InviteTable;
  external_identities: ExternalIdentityTable;
  external_identity_attachments: ExternalIdentityAttachmentTable;
}
