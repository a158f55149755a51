/** Jest global setup: shared infrastructure for suites (PostgreSQL is started here once the store lands). */
export default async function globalSetup(): Promise<void> {}
