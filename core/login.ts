/**
 * Where `phase-bridge login` keeps the host and token: `$XDG_CONFIG_HOME/phase-bridge/credentials.json` (or
 * `~/.config/...`), a 0600 file in a 0700 directory. `PHASE_HOST` / `PHASE_TOKEN` override it. The file is read only
 * when it is ours and nobody else can write it or read it.
 */
import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';

export interface Login {
  host: string;
  token: string;
  /** Where it came from, for messages: `environment` or the file's path. */
  source: string;
}

const LoginFileSchema = z.object({ host: z.string().url(), token: z.string().min(1) }).strict();

/** The credentials file path. */
export function loginFile(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/')
      ? env.XDG_CONFIG_HOME
      : join(homedir(), '.config');
  return join(base, 'phase-bridge', 'credentials.json');
}

export class LoginError extends Error {}

/** The login in force: the environment first, then the file; undefined when there is neither. */
export function currentLogin(env: NodeJS.ProcessEnv = process.env): Login | undefined {
  const file = loginFile(env);
  let saved: { host: string; token: string } | undefined;
  let st;
  try {
    st = lstatSync(file);
  } catch {
    st = undefined;
  }
  if (st) {
    const uid = process.getuid?.();
    if (!st.isFile() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
      throw new LoginError(
        `refusing ${file}: it must be a regular file of yours with mode 0600 (run \`phase-bridge login\` again to rewrite it)`,
      );
    }
    const parsed = LoginFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')) as unknown);
    if (!parsed.success)
      throw new LoginError(`${file} is not a phase-bridge login file; run \`phase-bridge login\` again`);
    saved = parsed.data;
  }
  const host = env.PHASE_HOST || saved?.host;
  const token = env.PHASE_TOKEN || saved?.token;
  if (!host || !token) return undefined;
  return { host, token, source: env.PHASE_TOKEN ? 'environment (PHASE_TOKEN)' : file };
}

/** Writes the login atomically, 0600 in a 0700 directory. */
export function saveLogin(host: string, token: string, env: NodeJS.ProcessEnv = process.env): string {
  const file = loginFile(env);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  chmodSync(dirname(file), 0o700);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ host, token }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
  return file;
}

/** Forgets the saved login; true when there was one. */
export function removeLogin(env: NodeJS.ProcessEnv = process.env): boolean {
  const file = loginFile(env);
  try {
    lstatSync(file);
  } catch {
    return false;
  }
  rmSync(file);
  return true;
}
