/**
 * `phase-bridge quickstart` (what `npm start` runs): declare, deploy and serve on the embedded server.
 *  1. serve the Phase-compatible server on SQLite (initialised on first run; owner token in a 0600 file);
 *  2. declare an app, secrets and a workload identity in TypeScript (bin/quickstart-stack.ts, as examples/cdktf) and deploy them with the real
 *     terraform binary through the phase-bridge provider;
 *  3. serve the workload's secrets from the sidecar agent on localhost, decrypted locally with the minted token.
 * Without terraform (>= 1.11) it says so and serves step 1 only. One quickstart per data directory (a second one is
 * refused at once, naming the first one's pid and ports: bin/quickstart-lock.ts); `--down` undoes it all
 * (bin/quickstart-down.ts).
 */
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { configFromOptions } from '../agent/cli';
import { startAgent, type AgentHandle } from '../agent/agent';
import { createServer, findOrganisation } from '../server';
import { DEFAULT_DATA_DIR, initIfNeeded, resolvePaths } from '../server/cli';
import { loadServerSecret } from '../server/config';
import { deployQuickstart, terraformVersion } from './deploy';
import { quickstartDown } from './quickstart-down';
import {
  acquireLock,
  busyPortsMessage,
  QuickstartBusyError,
  runningMessage,
  runningQuickstart,
} from './quickstart-lock';

export interface QuickstartOptions {
  dataDir: string;
  host: string;
  port: string;
  agentPort: string;
  deploy: boolean;
  down?: boolean;
}

export function register(program: Command): void {
  program
    .command('quickstart')
    .description(
      'serve the embedded server, deploy the example stack with terraform, and serve its secrets from the agent',
    )
    .option('--data-dir <dir>', 'where the database, keys, tokens and terraform state live', DEFAULT_DATA_DIR)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'server port (env PORT)', process.env.PORT ?? '8080')
    .option('--agent-port <port>', 'agent port', '8787')
    .option('--no-deploy', 'serve the server only (skip terraform and the agent)')
    .option(
      '--down',
      'stop the quickstart running on --data-dir, destroy what it deployed, and remove the data directory (`npm run down`)',
    )
    .action(async (o: QuickstartOptions) => quickstart(o));
}

const say = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

export async function quickstart(o: QuickstartOptions): Promise<void> {
  if (o.down) return quickstartDown({ dataDir: o.dataDir, say });
  const port = portNumber('--port', o.port);
  const agentPort = portNumber('--agent-port', o.agentPort);
  // Before anything slow (and before writing anything): another quickstart on this data directory, or the ports
  // taken. The lock then keeps a concurrent start out.
  const other = runningQuickstart(o.dataDir);
  if (other) throw new QuickstartBusyError(await runningMessage(o.dataDir, other));
  const busy = await busyPortsMessage({ dataDir: o.dataDir, host: o.host, port, agentPort });
  if (busy) throw new QuickstartBusyError(busy);
  secureDataDir(o.dataDir);
  await acquireLock({ dataDir: o.dataDir, host: o.host, port, agentPort });
  const tokenFile = join(o.dataDir, 'owner-token');
  const paths = resolvePaths({ dataDir: o.dataDir });
  // An existing token file over an empty database is refused with a clear message rather than overwritten.
  const init = await initIfNeeded({ dataDir: o.dataDir, tokenFile });
  const srv = await createServer({
    database: paths.database,
    serverSecret: loadServerSecret(paths.keyFile),
    logLevel: 'warn',
  });
  if (!(await findOrganisation(srv.store.db))) throw new Error(`no organisation in ${paths.database}`);
  const { url } = await srv.listen(port, o.host).catch(async (e: NodeJS.ErrnoException) => {
    await srv.close();
    if (e.code !== 'EADDRINUSE') throw e;
    throw new QuickstartBusyError(
      (await busyPortsMessage({ dataDir: o.dataDir, host: o.host, port, agentPort })) ?? e.message,
    );
  });
  // Filled in once the agent starts; the signal handlers are installed before that.
  const running: { agent?: AgentHandle } = {};
  const stop = (): void => {
    void (async () => {
      await running.agent?.close();
      await srv.close();
    })().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  say(`1. Server: ${url} (SQLite: ${paths.database})`);
  say(
    init.created
      ? `   New organisation; owner token written to ${tokenFile} (mode 0600).`
      : `   Owner token: ${tokenFile}`,
  );
  say(`   TOKEN=$(cut -d: -f3 ${tokenFile}); curl -s -H "Authorization: Bearer User $TOKEN" ${url}/v1/apps/`);

  if (!o.deploy) return;
  const tfv = terraformVersion();
  if (!tfv) {
    say();
    say('terraform (>= 1.11) was not found on PATH, so the declare/deploy/serve steps are skipped.');
    say('Install Terraform and run `npm start` again; the server keeps running. Ctrl-C stops.');
    return;
  }
  say(
    `2. Deploying the quickstart stack (app "quickstart", secrets, workload identity; as examples/cdktf) with ` +
      `terraform ${tfv}...`,
  );
  const ownerToken = readFileSync(tokenFile, 'utf8').trim();
  const deployed = await deployQuickstart({
    dataDir: o.dataDir,
    url,
    ownerToken,
    log: (line) => say(`   ${line}`),
  });
  for (const line of deployed.changes) say(`   ${line}`);
  say(`   Applied; Terraform state: ${deployed.stateFile} (mode 0600, one per data directory).`);
  say(`   The workload's token is in ${deployed.agentTokenFile} (mode 0600).`);

  const cfg = configFromOptions(
    {
      host: url,
      tokenFile: deployed.agentTokenFile,
      app: 'quickstart',
      env: 'Development',
      port: o.agentPort,
      dataDir: join(o.dataDir, 'agent'),
      logLevel: 'warn',
    },
    {},
  );
  const agent = await startAgent(cfg).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EADDRINUSE') throw e; // taken since the check above
    throw new QuickstartBusyError(
      (await busyPortsMessage({ dataDir: o.dataDir, host: o.host, port, agentPort, agentOnly: true })) ??
        e.message,
    );
  });
  running.agent = agent;
  await waitReady(agent);
  say(`3. Agent: ${agent.url} serves the quickstart app's Development secrets, decrypted locally.`);
  say(`   CT=$(cat ${cfg.clientTokenFile})`);
  say(`   curl -s -H "X-Phase-Agent-Token: $CT" ${agent.url}/v1/secrets/GREETING`);
  say(`   curl -s -H "X-Phase-Agent-Token: $CT" "${agent.url}/v1/env?format=dotenv"`);
  say();
  say(
    'Docs: docs/server.md, docs/provider/, docs/agent.md. Ctrl-C stops; `npm run down` stops it and removes what it made.',
  );
}

function portNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535)
    throw new Error(`${flag} takes a port number (1-65535), not ${value}`);
  return n;
}

/**
 * The data directory holds the database, the server key, tokens and the Terraform state: created 0700. One created
 * by someone else with group or other access is tightened, with a line saying so.
 */
function secureDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32') return; // no POSIX modes to tighten
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  chmodSync(dir, 0o700);
  say(`Data directory ${dir} was mode 0${mode.toString(8)}; set to 0700 (it holds tokens and keys).`);
}

/** Waits (bounded) for the agent's first sync so the printed commands work right away. */
async function waitReady(agent: AgentHandle): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${agent.url}/readyz`, {
      headers: { 'X-Phase-Agent-Token': agent.clientToken },
    }).catch(() => undefined);
    if (r?.ok) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  say('   (the agent has not finished its first sync yet; see its /v1/status)');
}
