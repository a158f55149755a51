/** Programmatic API and command line of the phase-bridge control plane (what `bin/` uses). */
export { register, DEFAULT_DATA_DIR, initIfNeeded, resolvePaths } from './cli';
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
