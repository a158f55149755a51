/** Programmatic API of the phase-bridge control plane. */
export { createServer, type PhaseBridgeServer } from './app';
export { initOrganisation, createMemberWithToken, mintMemberToken, findOrganisation } from './org';
export type { InitOrganisationOptions, InitOrganisationResult, CreateMemberOptions } from './org';
export { openStore, parseDatabaseUrl, type Store, type StoreKind } from './db/store';
export {
  loadServerSecret,
  ensureKeyFile,
  parseRateLimit,
  SERVER_SECRET_ENV,
  DEFAULT_DATABASE,
  DEFAULT_KEY_FILE,
  type ServerConfig,
} from './config';
