/**
 * One request cannot stall the server (issue 11): a per-request time limit, and cooperative yielding for bulk work.
 *
 * **Time limit** (`--request-timeout`, default 30 s, counted from when the request's body has been read). A request
 * that has not answered by then gets `503 {"error": ...}`, and nothing it was writing is saved:
 * - Bulk handlers (the secrets endpoints) run their loops through a `Pacer`. Past the deadline, `tick()` throws the
 *   503 inside the handler's transaction, which rolls back. Their last step inside the transaction is
 *   `pacer.commit()`: from there on the request is answered with its real outcome, however late, because its write
 *   may already be durable.
 * - Any other handler: once the 503 is sent, its next query fails (`requestClockPlugin` sees the request's clock
 *   through AsyncLocalStorage), so nothing is written after it; and a handler that has already issued a write
 *   statement is never answered with the 503 (that write may commit): it finishes and answers for real.
 *
 * So a 503 from the time limit means the request changed nothing (at most an SA token's `last_used_at`): clients may
 * retry it, POST included, as core/retry.ts does.
 *
 * **Yielding.** better-sqlite3 is synchronous and libsodium's WebAssembly too; a loop of awaits on them never leaves
 * the microtask queue, so a 1,000-entry write used to hold the event loop for seconds. `tick()` yields to the event
 * loop (`setImmediate`) whenever the current slice of work has run `SLICE_MS`, so `/health/` and other requests are
 * served in between.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { NextFunction, Request, Response } from 'express';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult } from 'kysely';
import { HttpError } from './http';

/** Default `--request-timeout`, in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Longest stretch of bulk work between two yields to the event loop, in milliseconds. */
export const SLICE_MS = 10;

/** Items per piece when a long list is serialised in pieces (`Pacer.jsonArray`). */
const JSON_CHUNK = 1000;

/** The 503 of the time limit. */
export function requestTimeoutError(limitMs: number): HttpError {
  return new HttpError(
    503,
    `The request did not finish within the server's time limit of ${limitMs} ms and was abandoned; nothing it ` +
      'would have written was saved. Retry it, or split it into smaller requests.',
  );
}

class RequestClock {
  readonly deadline: number;
  /** The 503 has been sent (or thrown). */
  expired = false;
  /** A Pacer drives the handler's work: it aborts itself at the deadline and marks its commit point. */
  managed = false;
  /** Managed: past the commit point. */
  committed = false;
  /** Unmanaged: a write statement has been issued. */
  wrote = false;

  constructor(
    readonly limitMs: number,
    private readonly res: Response,
  ) {
    this.deadline = performance.now() + limitMs;
  }

  /**
   * Can the request still be answered with the 503 (nothing it did can have been committed)? Not once the handler
   * has started its own answer (a streamed response, or work after answering): the limit is over for it.
   */
  abortable(): boolean {
    if (this.res.headersSent && !this.expired) return false;
    return this.managed ? !this.committed : !this.wrote;
  }

  /** Throws the 503 when the request is out of time and may still be abandoned. */
  check(): void {
    if (!this.abortable()) return;
    if (this.expired || performance.now() > this.deadline) {
      this.expired = true;
      throw requestTimeoutError(this.limitMs);
    }
  }
}

const clocks = new AsyncLocalStorage<RequestClock>();

/**
 * The time-limit middleware; mount it after the body has been read (the body reader's stream callbacks would lose
 * the async context). `limitMs <= 0` disables the limit.
 */
export function requestTimeout(limitMs: number) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    if (!(limitMs > 0)) return next();
    const clock = new RequestClock(limitMs, res);
    const timer = setTimeout(() => {
      if (res.headersSent || !clock.abortable()) return;
      clock.expired = true;
      // A handler that still writes to the response afterwards must not turn into an unhandled 'error' event.
      res.on('error', () => {});
      res.status(503).json({ error: requestTimeoutError(limitMs).message });
    }, limitMs);
    const clear = (): void => clearTimeout(timer);
    res.once('finish', clear);
    res.once('close', clear);
    clocks.run(clock, next);
  };
}

const WRITES = new Set([
  'InsertQueryNode',
  'UpdateQueryNode',
  'DeleteQueryNode',
  'MergeQueryNode',
  'RawNode',
]);

/**
 * Kysely plugin tying queries to the request that issues them: after the request's 503, its queries fail; an
 * unmanaged request that issues a write (raw SQL counts as one) can no longer be answered with the 503.
 */
export const requestClockPlugin: KyselyPlugin = {
  transformQuery(args: PluginTransformQueryArgs) {
    const clock = clocks.getStore();
    if (clock) {
      clock.check();
      if (!clock.managed && WRITES.has(args.node.kind)) clock.wrote = true;
    }
    return args.node;
  },
  transformResult(args: PluginTransformResultArgs): Promise<QueryResult<Record<string, unknown>>> {
    return Promise.resolve(args.result);
  },
};

/**
 * Paces a bulk handler: `await tick()` between units of work (yields every `SLICE_MS`, throws the 503 past the
 * deadline), `commit()` as the last step inside the write transaction. Without the time-limit middleware (or with
 * the limit off) it only yields.
 */
export class Pacer {
  private readonly clock = clocks.getStore();
  private sliceStart = performance.now();

  constructor() {
    if (this.clock) this.clock.managed = true;
  }

  async tick(): Promise<void> {
    if (performance.now() - this.sliceStart >= SLICE_MS) {
      await nextTurn();
      this.sliceStart = performance.now();
    }
    this.clock?.check();
  }

  /** Throws the 503 when the request is out of time. */
  check(): void {
    this.clock?.check();
  }

  /**
   * `JSON.stringify(items)` (same bytes). Lists longer than `JSON_CHUNK` are serialised `JSON_CHUNK` items at a time
   * with a tick in between, so thousands of secrets do not serialise in one stretch; shorter ones in one call
   * (splitting costs more than it saves there).
   */
  async jsonArray(items: unknown[]): Promise<string> {
    if (items.length <= JSON_CHUNK) return JSON.stringify(items);
    const parts: string[] = [];
    for (let i = 0; i < items.length; i += JSON_CHUNK) {
      parts.push(JSON.stringify(items.slice(i, i + JSON_CHUNK)).slice(1, -1));
      await this.tick();
    }
    return `[${parts.join(',')}]`;
  }

  /**
   * The point of no return, as the last step inside the write transaction: throws the 503 when out of time (the
   * transaction rolls back); afterwards the request is answered with its real outcome.
   */
  commit(): void {
    this.clock?.check();
    if (this.clock) this.clock.committed = true;
  }
}
