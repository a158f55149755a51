/**
 * PostgreSQL for the test run. Jest's global setup calls `startPostgres()` (unless `PHASE_BRIDGE_TEST_PG_URL` is
 * already set, e.g. by CI running `node dist/scripts/pg-cluster.js start`) and exports the URL to the workers.
 * The cluster logic lives in scripts/pg-cluster.ts so the built CLI script and the tests share one implementation.
 */
export { startPostgres, findPgBinaries, PostgresUnavailableError } from '../../scripts/pg-cluster';
export type { PostgresCluster } from '../../scripts/pg-cluster';

export const PG_URL_ENV = 'PHASE_BRIDGE_TEST_PG_URL';

/**
 * The test cluster's URL. Throws (so suites FAIL, never skip) when global setup could not start PostgreSQL.
 */
export function testPgUrl(): string {
  const url = process.env[PG_URL_ENV];
  if (!url) {
    const cause = process.env.PHASE_BRIDGE_TEST_PG_ERROR;
    throw new Error(
      `${PG_URL_ENV} is not set: jest global setup did not start PostgreSQL` +
        (cause ? ` (${cause}). ` : ' (see its error above). ') +
        'Install the Debian package `postgresql`, or start one with `node dist/scripts/pg-cluster.js start`.',
    );
  }
  return url;
}
