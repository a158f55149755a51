/**
 * CLI: `phase-bridge agent`, `phase-bridge agent-probe` and `phase-bridge run -- <command>`.
 * The service token is never accepted as a flag (argv is visible to every local user): use PHASE_SERVICE_TOKEN,
 * PHASE_TOKEN, --token-file or the config file.
 */
import { Command, Option } from 'commander';
import { PhaseBridgeError } from '../core/errors';
import { nodeTransport } from '../core/http';
import { join } from 'node:path';
import {
  buildConfig,
  defaultDataDir,
  envLayer,
  loginLayer,
  flagName,
  parseScopeFlag,
  readConfigFile,
  SETTINGS,
  type AgentConfig,
  type ConfigLayer,
  type Setting,
  type SettingFlag,
  parseDuration,
} from './config';
import { startAgent } from './agent';
import { runCommand } from './run';
import { CLIENT_TOKEN_HEADER } from './security';
import { checkDataDir, CLIENT_TOKEN_RULE, readTrustedFile } from './trust';

/** Markdown → plain text for `--help`. */
function plain(md: string): string {
  return md
    .replace(/\[([^\]]+)\]\([^)]+\)/g, '$1')
    .replace(/\*\*|`/g, '')
    .trim();
}

/** The commander option of a setting's flag: help from the settings table, with its variables and default. */
function optionOf(s: Setting, flag: SettingFlag): Option {
  const extra = [
    s.env?.length ? `env ${s.env.join(', ')}` : '',
    s.dflt && s.dflt !== '—' ? `default ${plain(s.dflt)}` : '',
  ].filter(Boolean);
  const o = new Option(
    flag.decl,
    `${flag.help ?? plain(s.doc)}${extra.length ? ` (${extra.join('; ')})` : ''}`,
  );
  if (flag.repeatable) o.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
  if (flag.choices) o.choices([...flag.choices]);
  if (flag.flagDefault !== undefined) o.default(flag.flagDefault);
  return o;
}

const FLAGGED = (SETTINGS as readonly Setting[]).flatMap((s) => (s.flag ? [{ s, flag: s.flag }] : []));

function addSettingOptions(cmd: Command, agentOnly: boolean): Command {
  for (const { s, flag } of FLAGGED) if (!!flag.agentOnly === agentOnly) cmd.addOption(optionOf(s, flag));
  return cmd;
}

function addCommonOptions(cmd: Command): Command {
  cmd.option(
    '--config <file>',
    'JSON config file (env PHASE_AGENT_CONFIG); flags and environment override it',
  );
  return addSettingOptions(cmd, false);
}

/** Builds and validates the configuration from defaults, the config file, the environment and the flags. */
export function configFromOptions(
  opts: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
  extra: Record<string, unknown> = {},
): AgentConfig {
  const layers: ConfigLayer[] = [loginLayer(env)];
  const file = (opts.config as string | undefined) ?? env.PHASE_AGENT_CONFIG;
  if (file) layers.push(readConfigFile(file));
  const envL = envLayer(env);
  const flags: ConfigLayer = { values: {}, source: {} };
  for (const { s, flag } of FLAGGED) {
    if (flag.custom) continue;
    const v = opts[new Option(flag.decl).attributeName()];
    if (v === undefined) continue;
    const value = flag.value
      ? flag.value(v)
      : flag.numeric && typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))
        ? Number(v)
        : v;
    if (value === undefined) continue;
    flags.values[s.key] = value;
    flags.source[s.key] = flagName(flag.decl);
  }
  if (opts.render !== undefined) {
    flags.values.render = { file: opts.render, format: opts.format, scope: opts.renderScope };
    flags.source.render = '--render';
  }
  // Scopes: --scope flags replace everything; single-scope flags merge field by field with PHASE_APP/PHASE_ENV/...
  const scopeFlags = opts.scope as string[] | undefined;
  const simple: Record<string, unknown> = {};
  for (const [opt, key] of [
    ['app', 'app'],
    ['appId', 'appId'],
    ['env', 'env'],
    ['path', 'path'],
    ['tags', 'tags'],
  ] as const) {
    if (opts[opt] !== undefined) simple[key] = opts[opt];
  }
  if (scopeFlags?.length) {
    flags.values.scopes = scopeFlags.map(parseScopeFlag);
    flags.source.scopes = '--scope';
  } else if (Object.keys(simple).length) {
    const fromEnv = (envL.values.scopes as Record<string, unknown>[] | undefined)?.[0] ?? {};
    flags.values.scopes = [{ ...fromEnv, ...simple }];
    flags.source.scopes = '--app/--app-id/--env/--path/--tags';
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) continue;
    flags.values[k] = v;
    flags.source[k] = `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  }
  layers.push(envL, flags);
  return buildConfig(layers);
}

/** Exit codes: 2 for a bad configuration or a path the agent will not trust (agent/trust.ts), 1 otherwise. */
function fail(err: unknown): never {
  const msg =
    err instanceof PhaseBridgeError ? err.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`phase-bridge: ${msg}\n`);
  process.exit(
    err instanceof PhaseBridgeError && (err.code === 'agent_config' || err.code === 'agent_path') ? 2 : 1,
  );
}

/** Registers `agent`, `agent-probe` and `run` on the `phase-bridge` program. */
export function register(program: Command): void {
  const agent = addSettingOptions(
    addCommonOptions(
      program
        .command('agent')
        .description(
          'run the sidecar agent: hold a service token, decrypt locally, serve secrets on localhost',
        )
        // `agent refresh --socket ...`: the options after a subcommand are the subcommand's own.
        .enablePositionalOptions(),
    ),
    true,
  ).action(async (opts: Record<string, unknown>) => {
    let cfg: AgentConfig;
    try {
      cfg = configFromOptions(opts, process.env);
    } catch (err) {
      fail(err);
    }
    let handle;
    try {
      handle = await startAgent(cfg);
    } catch (err) {
      fail(err);
    }
    if (cfg.once) {
      await handle.engine.firstSync;
      await handle.renderer?.flush();
      await handle.templates?.flush();
      const ok = handle.engine.ready();
      await handle.close();
      if (!ok) process.stderr.write('phase-bridge: the first sync did not succeed; see the log\n');
      process.exit(ok ? 0 : 1);
    }
    const stop = (): void => {
      void handle.close().then(() => process.exit(0));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // SIGHUP: sync now (the engine logs the request and its outcome), as `phase-bridge agent refresh` does.
    process.on('SIGHUP', () => void handle.engine.refresh('SIGHUP'));
  });

  agent
    .command('refresh')
    .description(
      'ask a running agent to sync now (POST /v1/refresh over its unix socket or loopback, with the client token)',
    )
    .option('--url <url>', 'agent URL (default http://127.0.0.1:8787)')
    .option('--socket <path>', "the agent's unix socket (wins over --url; env PHASE_AGENT_SOCKET)")
    .option(
      '--client-token-file <file>',
      'client token file (default <data-dir>/client-token; env PHASE_AGENT_CLIENT_TOKEN_FILE)',
    )
    .option('--data-dir <dir>', 'agent data directory (env PHASE_AGENT_DATA_DIR)')
    .option('--timeout <duration>', 'how long to wait for the sync', '60s')
    .action(
      async (opts: {
        url?: string;
        socket?: string;
        clientTokenFile?: string;
        dataDir?: string;
        timeout: string;
      }) => {
        try {
          const token = process.env.PHASE_AGENT_CLIENT_TOKEN || (await probeClientToken(opts));
          const socket = opts.socket ?? (opts.url ? undefined : process.env.PHASE_AGENT_SOCKET);
          const r = await askAgent({
            url: opts.url ?? DEFAULT_AGENT_URL,
            socket,
            method: 'POST',
            path: '/v1/refresh',
            token,
            timeoutMs: parseDuration(opts.timeout) ?? 60_000,
            code: 'agent_refresh',
          });
          let body: { status?: string; ms?: number; error?: string; scopes?: unknown[] } = {};
          try {
            body = JSON.parse(r.body);
          } catch {
            // reported below with the raw text
          }
          if (r.status === 200) {
            process.stdout.write(
              `phase-bridge: synced in ${body.ms ?? '?'} ms (${body.scopes?.length ?? 0} scope(s))\n`,
            );
            process.exit(0);
          }
          process.stderr.write(
            `phase-bridge: the agent answered ${r.status}${body.status ? ` (${body.status})` : ''}: ${(body.error ?? r.body).slice(0, 500)}\n`,
          );
          process.exit(1);
        } catch (err) {
          fail(err);
        }
      },
    );

  program
    .command('agent-probe')
    .description(
      'check a local agent: exit 0 when GET <path> answers 200 (for exec readiness/liveness probes)',
    )
    .option('--url <url>', 'agent URL (default http://127.0.0.1:8787)')
    .option('--socket <path>', "the agent's unix socket (wins over --url; env PHASE_AGENT_SOCKET)")
    .option('--path <path>', 'endpoint to check', '/readyz')
    .option(
      '--client-token-file <file>',
      'client token file (default <data-dir>/client-token; env PHASE_AGENT_CLIENT_TOKEN_FILE)',
    )
    .option('--data-dir <dir>', 'agent data directory (env PHASE_AGENT_DATA_DIR)')
    .option('--timeout <duration>', 'request timeout', '2s')
    .action(
      async (opts: {
        url?: string;
        socket?: string;
        path: string;
        clientTokenFile?: string;
        dataDir?: string;
        timeout: string;
      }) => {
        try {
          const token = process.env.PHASE_AGENT_CLIENT_TOKEN || (await probeClientToken(opts));
          const res = await askAgent({
            url: opts.url ?? DEFAULT_AGENT_URL,
            socket: opts.socket ?? (opts.url ? undefined : process.env.PHASE_AGENT_SOCKET),
            method: 'GET',
            path: opts.path,
            token,
            timeoutMs: parseDuration(opts.timeout) ?? 2000,
            code: 'agent_probe',
          });
          if (res.status !== 200) {
            process.stderr.write(
              `phase-bridge: ${opts.path} answered ${res.status}: ${res.body.slice(0, 500)}\n`,
            );
            process.exit(1);
          }
          process.exit(0);
        } catch (err) {
          fail(err);
        }
      },
    );

  addCommonOptions(
    program
      .command('run')
      .description('run a command with the secrets in its environment; restart or signal it when they change')
      .usage('[options] -- <command> [args...]'),
  )
    .addOption(
      new Option('--on-change <action>', 'on a secret change')
        .choices(['restart', 'signal', 'none'])
        .default('restart'),
    )
    .option('--signal <signal>', 'signal for --on-change signal', 'SIGHUP')
    .option('--debounce <duration>', 'changes within this window cause one restart or signal', '2s')
    .option('--kill-grace <duration>', 'SIGTERM-to-SIGKILL grace when restarting', '10s')
    .option('--shell', 'run the command through $SHELL -c (like phase run) instead of executing it directly')
    .option('--run-scope <name>', 'inject only this scope')
    .argument('<command...>', 'the command and its arguments (put them after --)')
    .passThroughOptions()
    .action(async (command: string[], opts: Record<string, unknown>) => {
      let cfg: AgentConfig;
      try {
        // `run` keeps no snapshot unless asked (--data-dir, --snapshot-file or a config file): several runs with
        // different tokens would otherwise share the default data directory's snapshot.
        const explicitData =
          opts.dataDir ??
          opts.snapshotFile ??
          opts.config ??
          process.env.PHASE_AGENT_CONFIG ??
          process.env.PHASE_AGENT_DATA_DIR;
        cfg = configFromOptions(opts, process.env, {
          logLevel: opts.logLevel ?? 'warn',
          snapshot: explicitData === undefined ? false : undefined,
        });
      } catch (err) {
        fail(err);
      }
      const sig = String(opts.signal).toUpperCase();
      const signal = (sig.startsWith('SIG') ? sig : `SIG${sig}`) as NodeJS.Signals;
      try {
        const code = await runCommand(cfg, command, {
          onChange: opts.onChange as 'restart' | 'signal' | 'none',
          signal,
          debounceMs: parseDuration(opts.debounce) ?? 2000,
          killGraceMs: parseDuration(opts.killGrace) ?? 10000,
          shell: opts.shell === true,
          scope: opts.runScope as string | undefined,
        });
        process.exit(code);
      } catch (err) {
        fail(err);
      }
    });
}

const DEFAULT_AGENT_URL = 'http://127.0.0.1:8787';

/**
 * One request to a local agent with the client token, over its unix socket or TCP (http or https), through core's
 * `node:http` transport. A failure to connect is a PhaseBridgeError with `code` that names where it looked.
 */
async function askAgent(o: {
  url: string;
  socket?: string;
  method: 'GET' | 'POST';
  path: string;
  token: string;
  timeoutMs: number;
  code: string;
}): Promise<{ status: number; body: string }> {
  const target = new URL(o.path, o.socket ? 'http://localhost' : o.url);
  const transport = nodeTransport({ rejectUnauthorized: true, socketPath: o.socket });
  try {
    const r = await transport(
      {
        method: o.method,
        url: target.href,
        path: target.pathname,
        headers: { [CLIENT_TOKEN_HEADER]: o.token },
        body: o.method === 'POST' ? '' : undefined,
      },
      o.timeoutMs,
    );
    return { status: r.status, body: r.text };
  } catch (err) {
    throw new PhaseBridgeError(
      o.code,
      `cannot reach the agent at ${o.socket ?? o.url}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/**
 * The probe's client token: from the named client token file, or `<data-dir>/client-token` (the agent's default
 * data directory when none is named). Read under the agent's trust rules (agent/trust.ts), so a probe never sends
 * a token that another user planted.
 */
async function probeClientToken(opts: { clientTokenFile?: string; dataDir?: string }): Promise<string> {
  let file = opts.clientTokenFile || process.env.PHASE_AGENT_CLIENT_TOKEN_FILE;
  if (!file) {
    const named = opts.dataDir || process.env.PHASE_AGENT_DATA_DIR;
    const dir = defaultDataDir(named || undefined);
    await checkDataDir(dir, !named);
    file = join(dir, 'client-token');
  }
  const read = await readTrustedFile(file, CLIENT_TOKEN_RULE);
  if (!read) throw new PhaseBridgeError('agent_probe', `cannot read the client token file ${file}: ENOENT`);
  return read.text.trim();
}
