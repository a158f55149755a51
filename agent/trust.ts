/**
 * What the agent trusts on disk. Every path it reads or writes must be under the control of the agent's own user
 * (or root, who controls everything anyway):
 *
 * - owned by the agent's uid (`process.getuid()`) or root; the default data directory by the agent's uid only;
 * - not writable by the group or by everyone (a shared directory is accepted only as the parent of a file, and
 *   only when it is sticky, as /tmp is: others then cannot rename or replace what the agent owns there);
 * - a symbolic link is followed only when the link itself is owned by the agent's user or root (Kubernetes'
 *   secret mounts are root-owned links); the default data directory may not be a link at all.
 *
 * Anything else is refused with an AgentPathError: one line naming the path, what was found and the fix; the CLI
 * exits 2 on it. Files are read through the descriptor whose ownership and mode were checked (`readTrustedFile`),
 * so nothing can be swapped in between. Platforms without uids (Windows) are not checked.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AgentConfig } from './config';
import { AgentPathError } from './errors';

/** How one path is judged. */
export interface TrustRule {
  /** Named in messages: `data directory`, `token file`. */
  what: string;
  kind: 'directory' | 'file';
  /** Only the agent's own uid may own it (otherwise the agent's uid or root). */
  selfOnly?: boolean;
  /** Refuse a symbolic link (otherwise one is followed when the link itself has a trusted owner). */
  noSymlink?: boolean;
  /** A group- or world-writable directory is accepted when its sticky bit is set (as /tmp). */
  stickyShared?: boolean;
  /** The agent replaces it (rename over it) without reading it: only who owns it matters, not its mode. */
  replaced?: boolean;
  /** The fix for a path someone else controls (owner, planted link, wrong type). */
  foreign: (path: string) => string;
  /** The fix for a path others can write. */
  loose: (path: string) => string;
}

/** The default data directory (`$XDG_RUNTIME_DIR` or the temp directory): made by the agent, for the agent. */
export const DEFAULT_DATA_DIR_RULE: TrustRule = {
  what: 'data directory',
  kind: 'directory',
  selfOnly: true,
  noSymlink: true,
  foreign: () =>
    'remove it (the agent uses its default directory only when it created it), or pass --data-dir',
  loose: (p) => `run chmod 700 ${p}, or remove it`,
};

/** A data directory the operator named (--data-dir, PHASE_AGENT_DATA_DIR, dataDir). */
export const DATA_DIR_RULE: TrustRule = {
  what: 'data directory',
  kind: 'directory',
  foreign: () => 'give the agent a directory its user owns with --data-dir',
  loose: (p) =>
    `run chmod go-w ${p}, or point --data-dir at a directory only the agent's user can write (a subdirectory the agent creates will do)`,
};

/** The parent of the default data directory: the temp directory or XDG_RUNTIME_DIR. */
const TEMP_PARENT_RULE: TrustRule = {
  what: 'directory for the default data directory',
  kind: 'directory',
  stickyShared: true,
  foreign: () => 'pass --data-dir',
  loose: () => 'pass --data-dir (a shared temp directory must be sticky, as /tmp is)',
};

export const CLIENT_TOKEN_RULE: TrustRule = {
  what: 'client token file',
  kind: 'file',
  foreign: () =>
    'remove it and let the agent write its own, or name one your user owns with --client-token-file',
  loose: (p) => `remove it, or run chmod go-w ${p} once you know who wrote it`,
};

export const SNAPSHOT_RULE: TrustRule = {
  what: 'snapshot file',
  kind: 'file',
  foreign: () => 'remove it (the agent writes a new one after its next sync)',
  loose: (p) => `remove it, or run chmod 600 ${p}`,
};

export const TOKEN_FILE_RULE: TrustRule = {
  what: 'token file',
  kind: 'file',
  foreign: () => "use a token file owned by the agent's user or root",
  loose: (p) => `run chmod go-w ${p} (600, or 640 to share it with a group)`,
};

/** A template: whoever can edit it decides what goes into the rendered file, and with which secrets. */
export const TEMPLATE_SOURCE_RULE: TrustRule = {
  what: 'template',
  kind: 'file',
  foreign: () => "use a template owned by the agent's user or root",
  loose: (p) => `run chmod go-w ${p}`,
};

const TEMPLATE_DEST_RULE: TrustRule = {
  what: 'template destination',
  kind: 'file',
  replaced: true,
  foreign: () => 'remove it, or render to a path your user owns',
  loose: () => '',
};

const RENDER_TARGET_RULE: TrustRule = {
  what: 'render target',
  kind: 'file',
  replaced: true,
  foreign: () => 'remove it, or render to a path your user owns',
  loose: () => '',
};

/** The rule for a directory holding a file outside the data directory (shared only when sticky). */
function parentRule(of: string): TrustRule {
  return {
    what: `directory of the ${of}`,
    kind: 'directory',
    stickyShared: true,
    foreign: () => `put the ${of} in a directory your user owns`,
    loose: (p) => `run chmod go-w ${p} (or chmod +t, for a shared directory), or put the ${of} elsewhere`,
  };
}

function currentUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

function refuse(path: string, rule: TrustRule, problem: string, fix: string): never {
  throw new AgentPathError(path, `refusing the ${rule.what} ${path}: ${problem}; ${fix}`);
}

function ownerProblem(st: Stats, uid: number, rule: TrustRule): string | undefined {
  if (st.uid === uid || (!rule.selfOnly && st.uid === 0)) return undefined;
  return `owned by uid ${st.uid}, not by you (uid ${uid})${rule.selfOnly || uid === 0 ? '' : ' or root'}`;
}

/** Throws unless `st` (what `path` is, symbolic links already followed) passes `rule`. */
function judge(path: string, st: Stats, rule: TrustRule, uid: number): void {
  if (rule.kind === 'directory' ? !st.isDirectory() : !st.isFile())
    refuse(
      path,
      rule,
      `it is not a ${rule.kind === 'directory' ? 'directory' : 'regular file'}`,
      rule.foreign(path),
    );
  const owner = ownerProblem(st, uid, rule);
  if (owner) refuse(path, rule, `it is ${owner}`, rule.foreign(path));
  if (rule.replaced) return;
  const group = (st.mode & 0o020) !== 0;
  const others = (st.mode & 0o002) !== 0;
  if (!group && !others) return;
  if (rule.stickyShared && (st.mode & 0o1000) !== 0) return;
  const who = group && others ? 'its group and everyone' : group ? 'its group' : 'everyone';
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  refuse(
    path,
    rule,
    `it is writable by ${who} (mode ${mode})${rule.stickyShared ? ' and not sticky' : ''}`,
    rule.loose(path),
  );
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

/** The symbolic link at `path` (already lstat-ed) may be followed: refuses it otherwise. */
function judgeLink(path: string, link: Stats, rule: TrustRule, uid: number): void {
  if (rule.noSymlink) refuse(path, rule, 'it is a symbolic link', rule.foreign(path));
  const owner = ownerProblem(link, uid, rule);
  if (owner) refuse(path, rule, `it is a symbolic link ${owner}`, rule.foreign(path));
}

async function lstatOrUndefined(path: string, rule: TrustRule): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw new AgentPathError(path, `cannot inspect the ${rule.what} ${path}: ${errCode(err)}`);
  }
}

/** Checks `path` against `rule`: its stats, or undefined when nothing is there. Throws AgentPathError. */
export async function checkPath(path: string, rule: TrustRule): Promise<Stats | undefined> {
  let st = await lstatOrUndefined(path, rule);
  const uid = currentUid();
  if (!st || uid === undefined) return st;
  if (st.isSymbolicLink()) {
    judgeLink(path, st, rule, uid);
    if (rule.replaced) return st; // the rename replaces the link itself, wherever it points
    try {
      st = await stat(path);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined; // a dangling link of a trusted owner
      throw new AgentPathError(path, `cannot inspect the ${rule.what} ${path}: ${errCode(err)}`);
    }
  }
  judge(path, st, rule, uid);
  return st;
}

/**
 * Reads a file after checking, on the open descriptor, that it passes `rule` (so nothing can be swapped in between
 * the check and the read). Undefined when the file does not exist; other read errors are thrown as they are.
 */
export async function readTrustedFile(
  path: string,
  rule: TrustRule,
): Promise<{ text: string; stats?: Stats } | undefined> {
  const uid = currentUid();
  if (uid === undefined) {
    try {
      return { text: await readFile(path, 'utf8') };
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }
  const link = await lstatOrUndefined(path, rule);
  if (!link) return undefined;
  if (link.isSymbolicLink()) judgeLink(path, link, rule, uid);
  let fh;
  try {
    // O_NONBLOCK: a planted FIFO must not hang the agent before it is refused as "not a regular file".
    fh = await open(
      path,
      constants.O_RDONLY | constants.O_NONBLOCK | (rule.noSymlink ? constants.O_NOFOLLOW : 0),
    );
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    if (errCode(err) === 'ELOOP') refuse(path, rule, 'it is a symbolic link', rule.foreign(path));
    throw err;
  }
  try {
    const stats = await fh.stat();
    judge(path, stats, rule, uid);
    return { text: await fh.readFile('utf8'), stats };
  } finally {
    await fh.close();
  }
}

/** Checks a data directory without creating it (agent-probe). */
export async function checkDataDir(dir: string, isDefault: boolean): Promise<void> {
  await checkPath(dir, isDefault ? DEFAULT_DATA_DIR_RULE : DATA_DIR_RULE);
}

/**
 * Makes sure the data directory exists and is the agent's own. The default one is created with mkdir 0700, which
 * fails on an existing path: an existing one is used only when it is a real directory of the agent's uid that
 * nobody else can write (the agent's own from an earlier run). A named one is created 0750 (with its parents)
 * when missing, and must be owned by the agent's user (or root) and not writable by others.
 */
export async function ensureDataDir(dir: string, isDefault: boolean): Promise<void> {
  if (currentUid() === undefined) {
    await mkdir(dir, { recursive: true, mode: 0o750 });
    return;
  }
  if (isDefault) {
    if (!(await checkPath(dirname(dir), TEMP_PARENT_RULE)))
      throw new AgentPathError(
        dir,
        `cannot create the data directory ${dir}: ${dirname(dir)} does not exist; pass --data-dir`,
      );
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (err) {
      if (errCode(err) !== 'EEXIST')
        throw new AgentPathError(
          dir,
          `cannot create the data directory ${dir}: ${errCode(err)}; pass --data-dir`,
        );
    }
    await checkPath(dir, DEFAULT_DATA_DIR_RULE);
    return;
  }
  if (await checkPath(dir, DATA_DIR_RULE)) return;
  try {
    await mkdir(dir, { recursive: true, mode: 0o750 });
  } catch (err) {
    throw new AgentPathError(dir, `cannot create the data directory ${dir}: ${errCode(err)}`);
  }
  await checkPath(dir, DATA_DIR_RULE);
}

/** Makes sure the directory of a file outside the data directory exists (created 0750) and is trusted. */
async function ensureParent(file: string, of: string): Promise<void> {
  const dir = dirname(file);
  const rule = parentRule(of);
  if (await checkPath(dir, rule)) return;
  try {
    await mkdir(dir, { recursive: true, mode: 0o750 });
  } catch (err) {
    throw new AgentPathError(dir, `cannot create the ${rule.what} ${dir}: ${errCode(err)}`);
  }
  await checkPath(dir, rule);
}

/**
 * Checks, before the agent reads or writes anything, every path it is going to use: the data directory (created
 * here when missing), the client token file (when the agent listens and has no configured client token), the
 * snapshot file (when enabled), the render target and each template destination with their directories. Throws
 * AgentPathError. (Template sources are checked when they are read: agent/templates.ts.)
 */
export async function checkAgentPaths(
  cfg: Pick<
    AgentConfig,
    'dataDir' | 'dataDirIsDefault' | 'clientTokenFile' | 'snapshot' | 'snapshotFile' | 'render'
  > & { templates?: AgentConfig['templates'] },
  needs: { clientTokenFile: boolean },
): Promise<void> {
  const files: Array<[string, TrustRule]> = [];
  if (needs.clientTokenFile) files.push([cfg.clientTokenFile, CLIENT_TOKEN_RULE]);
  if (cfg.snapshot) files.push([cfg.snapshotFile, SNAPSHOT_RULE]);
  if (files.some(([file]) => dirname(file) === cfg.dataDir))
    await ensureDataDir(cfg.dataDir, cfg.dataDirIsDefault);
  for (const [file, rule] of files) {
    if (dirname(file) !== cfg.dataDir) await ensureParent(file, rule.what);
    await checkPath(file, rule);
  }
  if (cfg.render) {
    await ensureParent(cfg.render.file, RENDER_TARGET_RULE.what);
    await checkPath(cfg.render.file, RENDER_TARGET_RULE);
  }
  for (const t of cfg.templates ?? []) {
    await ensureParent(t.dest, TEMPLATE_DEST_RULE.what);
    await checkPath(t.dest, TEMPLATE_DEST_RULE);
  }
}
