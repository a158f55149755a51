/**
 * The stores every API suite runs on. Both, always: when PostgreSQL is unavailable the postgres runs fail with
 * the harness's message (see test/support/postgres.ts), they are never skipped.
 */
export const STORES: Array<'sqlite' | 'postgres'> = ['sqlite', 'postgres'];
