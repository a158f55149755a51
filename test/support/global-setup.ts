/** Jest global setup: shared infrastructure for suites (a throw-away PostgreSQL for the postgres store). */
import { PG_URL_ENV, startPostgres, type PostgresCluster } from './postgres';

export default async function globalSetup(): Promise<void> {
  if (process.env[PG_URL_ENV]) return;
  try {
    const pg = await startPostgres();
    (globalThis as { __phaseBridgePg?: PostgresCluster }).__phaseBridgePg = pg;
    process.env[PG_URL_ENV] = pg.url;
  } catch (err) {
    // Suites that need PostgreSQL fail with this message (testPgUrl); the others still run.
    const msg = err instanceof Error ? err.message : String(err);
    process.env.PHASE_BRIDGE_TEST_PG_ERROR = msg;
    process.stderr.write(`\nglobal setup: could not start PostgreSQL: ${msg}\n`);
  }
}
