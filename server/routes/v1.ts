/** The `/v1` router: every Phase management endpoint plus phase-bridge's extensions. */
import { Router } from 'express';
import { authenticate } from '../auth';
import type { ServerContext } from '../context';
import { registerApps } from './apps';
import { registerExtensions } from './extensions';
import { registerIdentities } from './identities';
import { registerInvites } from './invites';
import { registerMembers } from './members';
import { registerRoles } from './roles';
import { registerServiceAccounts } from './service-accounts';
import { registerV1Secrets } from './v1-secrets';

export function v1Router(ctx: ServerContext): Router {
  const r = Router({ strict: true, caseSensitive: true });
  const auth = authenticate(ctx);
  registerApps(r, ctx, auth);
  registerServiceAccounts(r, ctx, auth);
  registerV1Secrets(r, ctx, auth);
  registerRoles(r, ctx, auth);
  registerInvites(r, ctx, auth);
  registerMembers(r, ctx, auth);
  registerExtensions(r, ctx, auth);
  registerIdentities(r, ctx, auth);
  return r;
}
