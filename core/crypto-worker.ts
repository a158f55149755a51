/**
 * `ph:v1` decryption on more than one core, for large reads. Each ciphertext costs one X25519, so a 1,000-secret
 * environment is 2,000 of them; with worker threads the main thread and the workers take chunks of the list from
 * one shared counter (`Atomics.add` on a SharedArrayBuffer), so the work balances by itself: a worker still
 * starting takes nothing and the main thread never waits for it.
 *
 * The workers run this same compiled module (`dist/core/crypto-worker.js`) on the same crypto backend as the main
 * thread; when core runs from TypeScript sources (ts-jest) no worker can load it and everything stays in-thread.
 * Workers are `unref()`ed (they never keep a process alive) and end after `idleMs` without work. Each costs a
 * few MB of resident memory (a V8 isolate plus libsodium) and about 40 ms of CPU to start: the sidecar agent, with
 * its memory budget, does not use them; `PhaseSession` does unless told not to (`decryptThreads: 0`,
 * `PHASE_BRIDGE_DECRYPT_THREADS=0`).
 */
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import {
  type CryptoBackendName,
  type RecipientKey,
  cryptoBackendName,
  decryptAllWith,
  decryptAsymmetricWith,
  initCrypto,
} from './crypto';
import { CryptoError } from './errors';

/** Ciphertexts per chunk taken from the shared counter. */
const CHUNK = 32;
/** Below this many ciphertexts the list is decrypted in-thread: posting it would cost more than it saves. */
export const PARALLEL_MIN = 192;

interface Job {
  type: 'job';
  id: number;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  ciphertexts: string[];
  /** Int32Array over a SharedArrayBuffer: [0] = next chunk to take. */
  counter: SharedArrayBuffer;
}

/** Per ciphertext: the plaintext, or the error message (as `{ error }`). */
type Outcome = string | { error: string };

interface Done {
  type: 'done';
  id: number;
  chunks: Array<[number, Outcome[]]>;
}

function openChunk(key: RecipientKey, cts: string[], from: number): Outcome[] {
  const out: Outcome[] = [];
  const end = Math.min(cts.length, from + CHUNK);
  for (let i = from; i < end; i++) {
    try {
      out.push(decryptAsymmetricWith(cts[i], key));
    } catch (err) {
      out.push({ error: err instanceof Error ? err.message : String(err) });
    }
  }
  return out;
}

/** Takes chunks from the shared counter until none are left. */
function drain(job: Pick<Job, 'ciphertexts' | 'counter'>, key: RecipientKey): Array<[number, Outcome[]]> {
  const counter = new Int32Array(job.counter);
  const chunks = Math.ceil(job.ciphertexts.length / CHUNK);
  const done: Array<[number, Outcome[]]> = [];
  for (;;) {
    const c = Atomics.add(counter, 0, 1);
    if (c >= chunks) return done;
    done.push([c, openChunk(key, job.ciphertexts, c * CHUNK)]);
  }
}

// ---- worker side ----

const WORKER_FLAG = 'phase-bridge-decrypt-worker';

if (!isMainThread && parentPort && (workerData as { role?: string } | null)?.role === WORKER_FLAG) {
  const port = parentPort;
  const ready = initCrypto({ backend: (workerData as { backend: CryptoBackendName }).backend });
  void ready.then(() => port.postMessage({ type: 'ready' }));
  port.on('message', (job: Job) => {
    void ready.then(() => {
      const chunks = drain(job, { privateKey: job.privateKey, publicKey: job.publicKey });
      port.postMessage({ type: 'done', id: job.id, chunks } satisfies Done);
    });
  });
}

// ---- main side ----

export interface DecryptPoolOptions {
  /** Worker threads besides the calling one (0: none). Default: `defaultDecryptThreads()`. */
  threads?: number;
  /** A worker with nothing to do for this long ends (default 10 s); the next large read starts it again. */
  idleMs?: number;
}

/** Whether worker threads can run this module (compiled JavaScript, not TypeScript sources). */
export function workersAvailable(): boolean {
  return __filename.endsWith('.js');
}

/**
 * Worker threads `PhaseSession` uses by default: `PHASE_BRIDGE_DECRYPT_THREADS` (a number, `auto`, or `0` for none),
 * else `auto`: cores − 1, at most 3 (none on one core). A worker costs about 40 ms of CPU on another core to start
 * and a few MB of resident memory; with a free core it makes a cold read of 1,000 secrets about a third faster
 * (bench/read, docs/performance.md), on a busy machine it gains nothing.
 */
export function defaultDecryptThreads(): number {
  const env = process.env.PHASE_BRIDGE_DECRYPT_THREADS?.trim();
  if (env === undefined || env === '' || env === 'auto')
    return Math.max(0, Math.min(3, availableParallelism() - 1));
  const n = Number(env);
  if (!Number.isInteger(n) || n < 0 || n > 16)
    throw new CryptoError(
      `PHASE_BRIDGE_DECRYPT_THREADS must be auto or an integer from 0 to 16 (got "${env}")`,
    );
  return n;
}

interface PoolWorker {
  worker: Worker;
  pending: Map<number, (d: Done) => void>;
  ready: Promise<void>;
}

/** What the last parallel `openAll` did: chunks (of 32 ciphertexts) done in this thread and in workers. */
export interface PoolJobStats {
  chunks: number;
  inWorkers: number;
}

export class DecryptPool {
  readonly threads: number;
  private readonly idleMs: number;
  private workers: PoolWorker[] = [];
  private idleTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  /** The last list decrypted with workers running (for tests and benchmarks). */
  lastJob: PoolJobStats | undefined;

  constructor(opts: DecryptPoolOptions = {}) {
    this.threads = workersAvailable() ? (opts.threads ?? defaultDecryptThreads()) : 0;
    this.idleMs = opts.idleMs ?? 10_000;
  }

  /** Starts the workers now (in the background), so the first large read finds them running. */
  warm(): void {
    if (this.threads === 0 || this.workers.length > 0) return;
    const backend = cryptoBackendName();
    if (!backend) return; // initCrypto() first
    for (let i = 0; i < this.threads; i++) {
      const worker = new Worker(__filename, { workerData: { role: WORKER_FLAG, backend } });
      worker.unref();
      let up!: () => void;
      const pw: PoolWorker = { worker, pending: new Map(), ready: new Promise((r) => (up = r)) };
      worker.on('message', (d: Done | { type: 'ready' }) => {
        if (d.type === 'ready') return up();
        const cb = pw.pending.get(d.id);
        pw.pending.delete(d.id);
        cb?.(d);
      });
      const gone = (): void => {
        up();
        this.workers = this.workers.filter((w) => w !== pw);
        // A job it held: its chunks are lost, so those items fail (the caller sees CryptoErrors, never a hang).
        for (const cb of pw.pending.values()) cb({ type: 'done', id: -1, chunks: [] });
        pw.pending.clear();
      };
      worker.on('error', gone);
      worker.on('exit', gone);
      this.workers.push(pw);
    }
    this.touch();
  }

  /** Resolves once every worker started by `warm()` has loaded its crypto backend. */
  async ready(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.ready));
  }

  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.close(), this.idleMs);
    this.idleTimer.unref();
  }

  /**
   * Opens every ciphertext with `key`; per item the plaintext or a CryptoError. Lists shorter than
   * `PARALLEL_MIN`, or a pool without threads, are decrypted in-thread.
   */
  async openAll(key: RecipientKey, ciphertexts: string[]): Promise<Array<string | CryptoError>> {
    if (this.threads === 0 || ciphertexts.length < PARALLEL_MIN) return decryptAllWith(ciphertexts, key);
    const outcomes: Outcome[] = new Array(ciphertexts.length);
    const chunks = Math.ceil(ciphertexts.length / CHUNK);
    this.warm();
    this.touch();
    const counter = new SharedArrayBuffer(4);
    const id = this.nextId++;
    const job: Job = {
      type: 'job',
      id,
      privateKey: key.privateKey,
      publicKey: key.publicKey,
      ciphertexts,
      counter,
    };
    const replies = this.workers.map(
      (pw) =>
        new Promise<Done>((resolve) => {
          pw.pending.set(id, resolve);
          pw.worker.postMessage(job);
        }),
    );
    const place = (list: Array<[number, Outcome[]]>): void => {
      for (const [c, part] of list) for (let j = 0; j < part.length; j++) outcomes[c * CHUNK + j] = part[j];
    };
    const mine = drain(job, key);
    place(mine);
    this.lastJob = { chunks, inWorkers: chunks - mine.length };
    if (mine.length < chunks) {
      // The rest was taken by workers: wait for exactly those (a worker that took nothing answers empty).
      for (const d of await Promise.all(replies)) place(d.chunks);
    } else {
      // Everything done here; late replies are dropped.
      for (const pw of this.workers) pw.pending.delete(id);
    }
    return outcomes.map(toResult);
  }

  /** Ends the workers (they end by themselves after `idleMs` too). */
  async close(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.worker.terminate()));
  }
}

function toResult(o: Outcome | undefined): string | CryptoError {
  if (o === undefined) return new CryptoError('decryption did not complete (a worker thread ended)');
  return typeof o === 'string' ? o : new CryptoError(o.error);
}
