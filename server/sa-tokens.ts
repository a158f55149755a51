/** Service-account tokens minted by the server (phase-rest-api.md §2.3), for the REST API and for identity logins. */
import { mintAccountToken, tokenHash, unwrapServerKeyring } from '../core/mint';
import type { ServerContext } from './context';
import type { ServiceAccountTable } from './db/schema';
import { badRequest, newId, nowIso } from './http';
import type { Db } from './keys';

/** Who asks for the token: recorded as its creator. */
export interface TokenCreator {
  kind: 'member' | 'service_account';
  accountId: string;
}

/** Mints and stores an SA token (§2.3). Only the hash of the bearer value is kept. */
export async function mintSaToken(
  db: Db,
  ctx: ServerContext,
  p: TokenCreator,
  sa: ServiceAccountTable,
  name: string,
  expiresAt: string | null,
) {
  if (!sa.server_wrapped_keyring) {
    throw badRequest(
      'Service account does not have server-side key management enabled. Tokens cannot be minted via the API.',
    );
  }
  const keyring = unwrapServerKeyring(sa.server_wrapped_keyring, ctx.server);
  const minted = mintAccountToken('service_account', keyring);
  const row = {
    id: newId(),
    sa_id: sa.id,
    name,
    token_hash: tokenHash(minted.tokenValue),
    identity_key: minted.identityKey,
    wrapped_key_share: minted.wrappedKeyShare,
    created_by_member: p.kind === 'member' ? p.accountId : null,
    created_by_sa: p.kind === 'service_account' ? p.accountId : null,
    created_at: nowIso(),
    expires_at: expiresAt,
    deleted_at: null,
    last_used_at: null,
  };
  await db.insertInto('sa_tokens').values(row).execute();
  return {
    id: row.id,
    name,
    created_at: row.created_at,
    expires_at: expiresAt,
    token: minted.token,
    bearer_token: minted.bearerToken,
  };
}
