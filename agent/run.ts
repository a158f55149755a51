/**
 * `phase-bridge run -- <command>`: fetch the secrets, start the command with them in its environment (secrets
 * override inherited variables, as `phase run` does), forward signals, and when the secrets change either restart
 * the command with the new environment or send it a signal (debounced). The command's exit code is propagated.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import type { AgentConfig } from './config';
import { startAgent, type AgentHandle, type StartOptions } from './agent';
import { PhaseBridgeError } from '../core/errors';

export interface RunOptions {
  /** What to do when a secret changes. */
  onChange: 'restart' | 'signal' | 'none';
  /** Signal sent on change in `signal` mode. */
  signal: NodeJS.Signals;
  /** Changes closer together than this cause one restart or signal. */
  debounceMs: number;
  /** How long a restarted child gets between SIGTERM and SIGKILL. */
  killGraceMs: number;
  /** Run the command through `$SHELL -c` (like `phase run`) instead of executing it directly. */
  shell: boolean;
  /** Inject only this scope (default: every scope, later scopes winning). */
  scope?: string;
  /** Where progress lines go (never values). Default stderr. */
  out?: (line: string) => void;
}

const FORWARDED: NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
];

export class RunError extends PhaseBridgeError {
  constructor(message: string) {
    super('agent_run', message);
  }
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? (constants.signals as Record<string, number>)[signal] : undefined;
  return 128 + (n ?? 1);
}

/** Runs the command; resolves with the exit code to use. */
export async function runCommand(
  cfg: AgentConfig,
  argv: string[],
  opts: RunOptions,
  start: StartOptions = {},
): Promise<number> {
  if (argv.length === 0)
    throw new RunError('no command given: use phase-bridge run [options] -- <command> [args...]');
  const out = opts.out ?? ((l: string) => process.stderr.write(`${l}\n`));
  const agent: AgentHandle = await startAgent({ ...cfg, once: false }, { ...start, listen: false });
  const { engine } = agent;
  try {
    await engine.firstSync;
    const view = () => (opts.scope ? engine.scope(opts.scope)?.view : engine.mergedView());
    if (!view()) {
      const now = Date.now();
      const why = engine.scopes
        .filter((s) => !s.servable(now, cfg.maxStale))
        .map((s) => `${s.name}: ${s.failClosed?.message ?? s.lastError?.message ?? 'not synced'}`)
        .join('; ');
      throw new RunError(`could not fetch the secrets, not starting the command (${why})`);
    }
    const envFor = (): NodeJS.ProcessEnv => {
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const [k, v] of view()?.byKey ?? []) env[k] = v.value;
      return env;
    };
    const spawnChild = (): ChildProcess => {
      const env = envFor();
      const v = view();
      out(
        `phase-bridge: injected ${v?.count ?? 0} secrets from ${opts.scope ?? engine.scopes.map((s) => s.name).join(', ')}`,
      );
      if (opts.shell) {
        const sh = process.env.SHELL || '/bin/sh';
        return spawn(sh, ['-c', argv.join(' ')], { stdio: 'inherit', env });
      }
      return spawn(argv[0], argv.slice(1), { stdio: 'inherit', env });
    };

    return await new Promise<number>((resolve, reject) => {
      let child = spawnChild();
      let restarting = false;
      let finished = false;
      let debounce: NodeJS.Timeout | undefined;

      const finish = (code: number): void => {
        if (finished) return;
        finished = true;
        for (const s of FORWARDED) process.off(s, forward);
        if (debounce) clearTimeout(debounce);
        engine.off('change', onChange);
        resolve(code);
      };
      const attach = (c: ChildProcess): void => {
        c.on('error', (err) => {
          if (c !== child) return;
          finished = true;
          for (const s of FORWARDED) process.off(s, forward);
          engine.off('change', onChange);
          reject(
            new RunError(`cannot start ${argv[0]}: ${(err as NodeJS.ErrnoException).code ?? err.message}`),
          );
        });
        c.on('exit', (code, signal) => {
          if (c !== child) return;
          if (restarting) return;
          finish(exitCodeOf(code, signal));
        });
      };
      const forward = (sig: NodeJS.Signals): void => {
        if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      };
      for (const s of FORWARDED) process.on(s, forward);
      attach(child);

      const restart = (): void => {
        restarting = true;
        const old = child;
        const killer = setTimeout(() => old.kill('SIGKILL'), opts.killGraceMs);
        old.once('exit', () => {
          clearTimeout(killer);
          if (finished) return;
          restarting = false;
          out('phase-bridge: secrets changed, restarting the command');
          child = spawnChild();
          attach(child);
        });
        if (old.exitCode === null && old.signalCode === null) old.kill('SIGTERM');
        else old.emit('exit', old.exitCode, old.signalCode);
      };
      const onChange = (e: { scope: string; kind: string; reason?: string }): void => {
        if (opts.scope && e.scope !== opts.scope) return;
        if (e.kind === 'unavailable') {
          // The child's environment cannot be taken back; say so, and restart nothing with missing secrets.
          out(
            `phase-bridge: secrets of ${e.scope} are no longer available (${e.reason ?? 'unknown reason'}); the command keeps the values it started with`,
          );
          return;
        }
        if (opts.onChange === 'none') return;
        if (debounce) clearTimeout(debounce);
        debounce = setTimeout(() => {
          debounce = undefined;
          if (finished || restarting) return;
          if (opts.onChange === 'restart') restart();
          else {
            out(`phase-bridge: secrets changed, sending ${opts.signal}`);
            child.kill(opts.signal);
          }
        }, opts.debounceMs);
      };
      engine.on('change', onChange);
    });
  } finally {
    await agent.close();
  }
}
