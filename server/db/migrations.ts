/**
 * Versioned schema migrations, run on every start (kysely's Migrator records applied versions in
 * `kysely_migration` and takes a lock, so several processes starting on one PostgreSQL do not race).
 * Never edit a released migration: add a new one.
 *
 * Each migration is a list of statements, one a line, run in order through kysely's schema builder:
 * - `table NAME: COLUMN TYPE, ... [| primary key NAME (COLUMNS)] [| unique NAME (COLUMNS)]`, where TYPE is `text`,
 *   `integer` or `ts` (a timestamp, stored as ISO text), `!` after it means NOT NULL (`!unique`: NOT NULL UNIQUE),
 *   and `pk` alone is a text primary key; columns are added in the order listed;
 * - `index NAME on TABLE (COLUMNS)`;
 * - `sql STATEMENT`, for what the builder cannot say (a partial unique index).
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

function columnList(s: string): string[] {
  return s.split(',').map((c) => c.trim());
}

/** `NAME (a, b)` → [NAME, [a, b]]. */
function namedColumns(s: string): [string, never[]] {
  const m = /^(\w+) \(([^)]*)\)$/.exec(s.trim());
  if (!m) throw new Error(`migration: cannot read '${s}'`);
  return [m[1], columnList(m[2]) as never[]];
}

async function createTable(db: Kysely<unknown>, line: string): Promise<void> {
  const [head, ...constraints] = line.split('|');
  const [name, columns] = head.split(':');
  let b = db.schema.createTable(name.trim());
  for (const entry of columnList(columns)) {
    const [column, spec] = entry.split(' ');
    if (spec === 'pk') {
      b = b.addColumn(column, 'text', (c) => c.primaryKey());
      continue;
    }
    const [type, modifier] = spec.split('!');
    const dataType = type === 'integer' ? 'integer' : 'text';
    if (modifier === undefined) b = b.addColumn(column, dataType);
    else if (modifier === 'unique') b = b.addColumn(column, dataType, (c) => c.notNull().unique());
    else b = b.addColumn(column, dataType, (c) => c.notNull());
  }
  for (const c of constraints.map((x) => x.trim())) {
    if (c.startsWith('primary key ')) b = b.addPrimaryKeyConstraint(...namedColumns(c.slice(12)));
    else if (c.startsWith('unique ')) b = b.addUniqueConstraint(...namedColumns(c.slice(7)));
    else throw new Error(`migration: unknown constraint '${c}'`);
  }
  await b.execute();
}

/** A migration from its statements (see the top of this file). */
function schemaMigration(statements: string): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      for (const raw of statements.split('\n')) {
        const line = raw.trim();
        if (line === '') continue;
        const [kind, rest] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)];
        if (kind === 'table') await createTable(db, rest);
        else if (kind === 'index') {
          const [name, on] = rest.split(' on ');
          const [table, columns] = namedColumns(on);
          await db.schema.createIndex(name).on(table).columns(columns).execute();
        } else if (kind === 'sql') await sql.raw(rest).execute(db);
        else throw new Error(`migration: unknown statement '${line}'`);
      }
    },
  };
}

const m001 = schemaMigration(`
  table organisations: id pk, name text!, created_at ts!, updated_at ts!
  table roles: id pk, org_id text!, name text!, description text, color text!, permissions text!, is_default integer!, created_at ts!, updated_at ts!
  index roles_org on roles (org_id, created_at)
  table members: id pk, org_id text!, email text!, username text!, full_name text, role_id text, identity_key text!, server_wrapped_keyring text!, created_at ts!, updated_at ts!, deleted_at ts
  index members_org on members (org_id, email)
  table user_tokens: id pk, member_id text!, name text!, token_hash text!unique, identity_key text!, wrapped_key_share text!, created_at ts!, expires_at ts, deleted_at ts, last_used_at ts
  table sa_tokens: id pk, sa_id text!, name text!, token_hash text!unique, identity_key text!, wrapped_key_share text!, created_by_member text, created_by_sa text, created_at ts!, expires_at ts, deleted_at ts, last_used_at ts
  index sa_tokens_sa on sa_tokens (sa_id)
  index user_tokens_member on user_tokens (member_id)
  table service_accounts: id pk, org_id text!, name text!, role_id text, identity_key text!, server_wrapped_keyring text, server_wrapped_recovery text, created_at ts!, updated_at ts!, deleted_at ts
  table apps: id pk, org_id text!, name text!, description text, sse_enabled integer!, created_at ts!, updated_at ts!
  table app_memberships: app_id text!, account_type text!, account_id text!, paths text, created_at ts! | primary key app_memberships_pk (app_id, account_type, account_id)
  index app_memberships_account on app_memberships (account_type, account_id)
  table environments: id pk, app_id text!, name text!, env_type text!, sort_index integer!, identity_key text!, wrapped_seed text!, wrapped_salt text!, created_at ts!, updated_at ts!
  index environments_app on environments (app_id)
  table server_env_keys: environment_id pk, identity_key text!, wrapped_seed text!, wrapped_salt text!, created_at ts!
  table environment_keys: id pk, environment_id text!, account_type text!, account_id text!, identity_key text!, wrapped_seed text!, wrapped_salt text!, created_at ts!, updated_at ts! | unique environment_keys_unique (environment_id, account_type, account_id)
  index environment_keys_account on environment_keys (account_type, account_id)
  table folders: id pk, environment_id text!, path text!, created_at ts! | unique folders_unique (environment_id, path)
  table secrets: id pk, environment_id text!, folder_id text, path text!, key text!, key_digest text!, value text!, comment text!, version integer!, type text!, created_at ts!, updated_at ts!, deleted_at ts
  index secrets_env on secrets (environment_id, key_digest)
  sql CREATE UNIQUE INDEX secrets_live_unique ON secrets (environment_id, path, key_digest) WHERE deleted_at IS NULL
  table tags: id pk, org_id text!, name text!, color text! | unique tags_unique (org_id, name)
  table secret_tags: secret_id text!, tag_id text! | primary key secret_tags_pk (secret_id, tag_id)
  table personal_secrets: id pk, secret_id text!, member_id text!, value text!, is_active integer!, created_at ts!, updated_at ts! | unique personal_secrets_unique (secret_id, member_id)
  table network_policies: id pk, org_id text!, name text!, allowed_ips text!, is_global integer!, created_at ts!, updated_at ts!
  table network_policy_attachments: policy_id text!, account_type text!, account_id text! | primary key npa_pk (policy_id, account_type, account_id)
  table audit_events: id pk, org_id text!, timestamp ts!, event_type text!, resource_type text!, resource_id text, actor_type text, actor_id text, token_id text, app_id text, environment_id text, key_digest text, path text, detail text, ip_address text, user_agent text
  index audit_events_time on audit_events (org_id, timestamp)
`);

const m002 = schemaMigration(`
  table invites: id pk, org_id text!, invitee_email text!, role_id text, invited_by_member text, invited_by_sa text, valid integer!, created_at ts!, expires_at ts!
  index invites_org on invites (org_id, invitee_email)
`);

const m003 = schemaMigration(`
  table external_identities: id pk, org_id text!, provider text!, name text!, description text, config text!, token_name_pattern text, default_ttl_seconds integer!, max_ttl_seconds integer!, created_at ts!, updated_at ts!, deleted_at ts
  index external_identities_org on external_identities (org_id)
  table external_identity_attachments: identity_id text!, service_account_id text!, created_at ts! | primary key external_identity_attachments_pk (identity_id, service_account_id)
  index external_identity_attachments_sa on external_identity_attachments (service_account_id)
`);

/** All migrations, in order. Names sort lexically, so keep the zero-padded prefix. */
export const MIGRATIONS: Record<string, Migration> = {
  '001_initial': m001,
  '002_invites': m002,
  '003_external_identities': m003,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
