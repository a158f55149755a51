/**
 * The offline snapshot: the bootstrap response (server-held key share and wrapped environment keys) and each
 * scope's E2E ciphertext, exactly as the server sent them. It holds nothing decrypted, so without the token's
 * key share and wrap key it opens nothing. Written atomically (temporary file, fsync, rename) with mode 0600.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { BootstrapResponseSchema, EncryptedSecretListSchema, type BootstrapResponse } from '../core/schemas';
import { AgentPathError, SnapshotError } from './errors';
import type { ScopeRaw } from './scope';
import { readTrustedFile, SNAPSHOT_RULE } from './trust';

export interface Snapshot {
  format: 'phase-bridge-agent-snapshot/1';
  savedAt: string;
  host: string;
  bootstrap: BootstrapResponse;
  scopes: Record<string, ScopeRaw & { confirmedAt: number; fetchedAt: number }>;
}

const DepSchema = z.object({
  envId: z.string(),
  path: z.string(),
  updatedAt: z.string(),
  secrets: EncryptedSecretListSchema,
});

const SnapshotSchema = z.object({
  format: z.literal('phase-bridge-agent-snapshot/1'),
  savedAt: z.string(),
  host: z.string(),
  bootstrap: BootstrapResponseSchema,
  scopes: z.record(
    z.object({
      envId: z.string(),
      envUpdatedAt: z.string(),
      secrets: EncryptedSecretListSchema,
      deps: z.array(DepSchema),
      confirmedAt: z.number(),
      fetchedAt: z.number(),
    }),
  ),
});

/**
 * Writes `data` to `file` atomically; the temporary file is created 0600, so no reader ever sees a wider mode.
 * `data` may be a sequence of pieces, written in order (so a large file never exists as one string in memory).
 */
export async function atomicWrite(
  file: string,
  data: string | Buffer | Iterable<string>,
  mode = 0o600,
): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o750 });
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    if (typeof data === 'string' || Buffer.isBuffer(data)) await fh.writeFile(data);
    else for (const piece of data) await fh.write(piece);
    await fh.chmod(mode); // umask cannot have widened it, but be explicit
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Secrets serialised per piece of the snapshot file. */
const SNAPSHOT_PIECE = 100;

/**
 * The snapshot's JSON in pieces of at most SNAPSHOT_PIECE secrets. With 1,000 secrets the ciphertext is ~700 KB:
 * serialised in one go it would be a 700 KB string plus a 700 KB Buffer per sync, both left in the old generation
 * until the next full GC. Same document as JSON.stringify(snap) up to key order within a scope entry.
 */
export function* snapshotJson(snap: Snapshot): Generator<string> {
  const { scopes, ...head } = snap;
  yield `${JSON.stringify(head).slice(0, -1)},"scopes":{`;
  let sep = '';
  for (const [name, entry] of Object.entries(scopes)) {
    const { secrets, ...rest } = entry;
    yield `${sep}${JSON.stringify(name)}:{"secrets":[`;
    for (let i = 0; i < secrets.length; i += SNAPSHOT_PIECE)
      yield (i ? ',' : '') + JSON.stringify(secrets.slice(i, i + SNAPSHOT_PIECE)).slice(1, -1);
    yield `],${JSON.stringify(rest).slice(1)}`; // rest always has envId, so it is a non-empty object
    sep = ',';
  }
  yield '}}';
}

export async function writeSnapshot(file: string, snap: Snapshot): Promise<void> {
  await atomicWrite(file, snapshotJson(snap), 0o600);
}

/**
 * Reads the snapshot; undefined when there is none. A damaged file, or one that fails the trust rules
 * (agent/trust.ts; the agent checks those at start-up too and refuses to start), is a SnapshotError (ignored).
 */
export async function readSnapshot(file: string): Promise<Snapshot | undefined> {
  let text: string;
  try {
    const read = await readTrustedFile(file, SNAPSHOT_RULE);
    if (!read) return undefined;
    text = read.text;
  } catch (err) {
    if (err instanceof AgentPathError) throw new SnapshotError(err.message, { cause: err });
    throw new SnapshotError(`cannot read the snapshot: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SnapshotError('the snapshot is not valid JSON');
  }
  const parsed = SnapshotSchema.safeParse(json);
  if (!parsed.success)
    throw new SnapshotError(
      `the snapshot has an unexpected shape (${parsed.error.issues[0]?.path.join('.')})`,
    );
  return parsed.data as Snapshot;
}

export async function removeSnapshot(file: string): Promise<void> {
  await rm(file, { force: true });
}
