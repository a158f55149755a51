/**
 * Versioned schema migrations, run on every start (kysely's Migrator records applied versions in
 * `kysely_migration` and takes a lock, so several processes starting on one PostgreSQL do not race).
 * Never edit a released migration: add a new one.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

const ts = 'text';

const m001: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('organisations')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('roles')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('color', 'text', (c) => c.notNull())
      .addColumn('permissions', 'text', (c) => c.notNull())
      .addColumn('is_default', 'integer', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('roles_org').on('roles').columns(['org_id', 'created_at']).execute();

    await db.schema
      .createTable('members')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('email', 'text', (c) => c.notNull())
      .addColumn('username', 'text', (c) => c.notNull())
      .addColumn('full_name', 'text')
      .addColumn('role_id', 'text')
      .addColumn('identity_key', 'text', (c) => c.notNull())
      .addColumn('server_wrapped_keyring', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addColumn('deleted_at', ts)
      .execute();
    await db.schema.createIndex('members_org').on('members').columns(['org_id', 'email']).execute();

    for (const table of ['user_tokens', 'sa_tokens'] as const) {
      let b = db.schema
        .createTable(table)
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn(table === 'user_tokens' ? 'member_id' : 'sa_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('identity_key', 'text', (c) => c.notNull())
        .addColumn('wrapped_key_share', 'text', (c) => c.notNull());
      if (table === 'sa_tokens') {
        b = b.addColumn('created_by_member', 'text').addColumn('created_by_sa', 'text');
      }
      await b
        .addColumn('created_at', ts, (c) => c.notNull())
        .addColumn('expires_at', ts)
        .addColumn('deleted_at', ts)
        .addColumn('last_used_at', ts)
        .execute();
    }
    await db.schema.createIndex('sa_tokens_sa').on('sa_tokens').column('sa_id').execute();
    await db.schema.createIndex('user_tokens_member').on('user_tokens').column('member_id').execute();

    await db.schema
      .createTable('service_accounts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('role_id', 'text')
      .addColumn('identity_key', 'text', (c) => c.notNull())
      .addColumn('server_wrapped_keyring', 'text')
      .addColumn('server_wrapped_recovery', 'text')
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addColumn('deleted_at', ts)
      .execute();

    await db.schema
      .createTable('apps')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('sse_enabled', 'integer', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('app_memberships')
      .addColumn('app_id', 'text', (c) => c.notNull())
      .addColumn('account_type', 'text', (c) => c.notNull())
      .addColumn('account_id', 'text', (c) => c.notNull())
      .addColumn('paths', 'text')
      .addColumn('created_at', ts, (c) => c.notNull())
      .addPrimaryKeyConstraint('app_memberships_pk', ['app_id', 'account_type', 'account_id'])
      .execute();
    await db.schema
      .createIndex('app_memberships_account')
      .on('app_memberships')
      .columns(['account_type', 'account_id'])
      .execute();

    await db.schema
      .createTable('environments')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('app_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('env_type', 'text', (c) => c.notNull())
      .addColumn('sort_index', 'integer', (c) => c.notNull())
      .addColumn('identity_key', 'text', (c) => c.notNull())
      .addColumn('wrapped_seed', 'text', (c) => c.notNull())
      .addColumn('wrapped_salt', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('environments_app').on('environments').column('app_id').execute();

    await db.schema
      .createTable('server_env_keys')
      .addColumn('environment_id', 'text', (c) => c.primaryKey())
      .addColumn('identity_key', 'text', (c) => c.notNull())
      .addColumn('wrapped_seed', 'text', (c) => c.notNull())
      .addColumn('wrapped_salt', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('environment_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('environment_id', 'text', (c) => c.notNull())
      .addColumn('account_type', 'text', (c) => c.notNull())
      .addColumn('account_id', 'text', (c) => c.notNull())
      .addColumn('identity_key', 'text', (c) => c.notNull())
      .addColumn('wrapped_seed', 'text', (c) => c.notNull())
      .addColumn('wrapped_salt', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addUniqueConstraint('environment_keys_unique', ['environment_id', 'account_type', 'account_id'])
      .execute();
    await db.schema
      .createIndex('environment_keys_account')
      .on('environment_keys')
      .columns(['account_type', 'account_id'])
      .execute();

    await db.schema
      .createTable('folders')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('environment_id', 'text', (c) => c.notNull())
      .addColumn('path', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addUniqueConstraint('folders_unique', ['environment_id', 'path'])
      .execute();

    await db.schema
      .createTable('secrets')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('environment_id', 'text', (c) => c.notNull())
      .addColumn('folder_id', 'text')
      .addColumn('path', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('key_digest', 'text', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addColumn('comment', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addColumn('deleted_at', ts)
      .execute();
    await db.schema
      .createIndex('secrets_env')
      .on('secrets')
      .columns(['environment_id', 'key_digest'])
      .execute();
    // Concurrent writers (several processes) cannot create two live secrets at one (environment, path, digest).
    await sql`CREATE UNIQUE INDEX secrets_live_unique ON secrets (environment_id, path, key_digest) WHERE deleted_at IS NULL`.execute(
      db,
    );

    await db.schema
      .createTable('tags')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('color', 'text', (c) => c.notNull())
      .addUniqueConstraint('tags_unique', ['org_id', 'name'])
      .execute();
    await db.schema
      .createTable('secret_tags')
      .addColumn('secret_id', 'text', (c) => c.notNull())
      .addColumn('tag_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('secret_tags_pk', ['secret_id', 'tag_id'])
      .execute();

    await db.schema
      .createTable('personal_secrets')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('secret_id', 'text', (c) => c.notNull())
      .addColumn('member_id', 'text', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addColumn('is_active', 'integer', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addUniqueConstraint('personal_secrets_unique', ['secret_id', 'member_id'])
      .execute();

    await db.schema
      .createTable('network_policies')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('allowed_ips', 'text', (c) => c.notNull())
      .addColumn('is_global', 'integer', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('network_policy_attachments')
      .addColumn('policy_id', 'text', (c) => c.notNull())
      .addColumn('account_type', 'text', (c) => c.notNull())
      .addColumn('account_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('npa_pk', ['policy_id', 'account_type', 'account_id'])
      .execute();

    await db.schema
      .createTable('audit_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('timestamp', ts, (c) => c.notNull())
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('resource_type', 'text', (c) => c.notNull())
      .addColumn('resource_id', 'text')
      .addColumn('actor_type', 'text')
      .addColumn('actor_id', 'text')
      .addColumn('token_id', 'text')
      .addColumn('app_id', 'text')
      .addColumn('environment_id', 'text')
      .addColumn('key_digest', 'text')
      .addColumn('path', 'text')
      .addColumn('detail', 'text')
      .addColumn('ip_address', 'text')
      .addColumn('user_agent', 'text')
      .execute();
    await db.schema
      .createIndex('audit_events_time')
      .on('audit_events')
      .columns(['org_id', 'timestamp'])
      .execute();
  },
};

const m002: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('invites')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('invitee_email', 'text', (c) => c.notNull())
      .addColumn('role_id', 'text')
      .addColumn('invited_by_member', 'text')
      .addColumn('invited_by_sa', 'text')
      .addColumn('valid', 'integer', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('expires_at', ts, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('invites_org').on('invites').columns(['org_id', 'invitee_email']).execute();
  },
};

const m003: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('external_identities')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull())
      .addColumn('provider', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('config', 'text', (c) => c.notNull())
      .addColumn('token_name_pattern', 'text')
      .addColumn('default_ttl_seconds', 'integer', (c) => c.notNull())
      .addColumn('max_ttl_seconds', 'integer', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addColumn('updated_at', ts, (c) => c.notNull())
      .addColumn('deleted_at', ts)
      .execute();
    await db.schema.createIndex('external_identities_org').on('external_identities').column('org_id').execute();
    await db.schema
      .createTable('external_identity_attachments')
      .addColumn('identity_id', 'text', (c) => c.notNull())
      .addColumn('service_account_id', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addPrimaryKeyConstraint('external_identity_attachments_pk', ['identity_id', 'service_account_id'])
      .execute();
    await db.schema
      .createIndex('external_identity_attachments_sa')
      .on('external_identity_attachments')
      .column('service_account_id')
      .execute();
  },
};

/** All migrations, in order. Names sort lexically, so keep the zero-padded prefix. */
export const MIGRATIONS: Record<string, Migration> = {
  '001_initial': m001,
  '002_invites': m002,
  '003_external_identities': m003,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
