/**
 * `phase-bridge quickstart` (what `npm start` runs): the embedded server on SQLite, initialised on first run.
 * The owner token is written once to `.phase-bridge/owner-token` (mode 0600) and never printed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { createServer, findOrganisation } from '../server';
import { DEFAULT_DATA_DIR, initIfNeeded, resolvePaths } from '../server/cli';
import { loadServerSecret } from '../server/config';

export interface QuickstartOptions {
  dataDir: string;
  host: string;
  port: string;
}

export function register(program: Command): void {
  program
    .command('quickstart')
    .description('initialise (first run) and serve the embedded Phase-compatible server on SQLite')
    .option('--data-dir <dir>', 'where the database, server key and owner token live', DEFAULT_DATA_DIR)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (env PORT)', process.env.PORT ?? '8080')
    .action(async (o: QuickstartOptions) => quickstart(o));
}

export async function quickstart(o: QuickstartOptions): Promise<void> {
  const tokenFile = join(o.dataDir, 'owner-token');
  const paths = resolvePaths({ dataDir: o.dataDir });
  const init = await initIfNeeded({
    dataDir: o.dataDir,
    tokenFile: existsSync(tokenFile) ? undefined : tokenFile,
  });
  const srv = await createServer({
    database: paths.database,
    serverSecret: loadServerSecret(paths.keyFile),
    logLevel: 'warn',
  });
  if (!(await findOrganisation(srv.store.db))) throw new Error(`no organisation in ${paths.database}`);
  const { url } = await srv.listen(Number(o.port), o.host);
  const say = (s = '') => process.stdout.write(`${s}\n`);
  say(`phase-bridge server listening on ${url} (SQLite: ${paths.database})`);
  say(
    init.created
      ? `New organisation created. Owner token written to ${tokenFile} (mode 0600).`
      : `Owner token: ${tokenFile}`,
  );
  say();
  say('Try it:');
  say(`  TOKEN=$(cut -d: -f3 ${tokenFile})`);
  say(`  curl -s -H "Authorization: Bearer User $TOKEN" ${url}/v1/apps/`);
  say(`  curl -s -X POST -H "Authorization: Bearer User $TOKEN" -H 'Content-Type: application/json' \\`);
  say(`       -d '{"name":"demo"}' ${url}/v1/apps/`);
  say();
  say(
    'Docs: docs/server.md (API and extensions), docs/provider/ (Terraform), docs/agent.md (sidecar). Ctrl-C stops.',
  );
  const stop = () =>
    srv.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
