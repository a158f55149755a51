/**
 * `GET /service/secrets/events/` (extension, docs/server.md "Change stream"): Server-Sent Events that tell a token
 * which of the environments it can read changed, so a sidecar syncs at once instead of polling. Authenticated like the
 * E2E endpoints. Events carry only environment ids and `updated_at`, never names or values, and only for environments
 * the token holds a key for:
 *
 *   event: hello    data: {"environments": [{"id", "updatedAt"}]}   (the state when the stream opens)
 *   event: change   data: {"id", "updatedAt"}                        (a write, or access newly granted)
 *   event: removed  data: {"id"}                                     (access revoked)
 *   event: revoked                                                   (the token stopped working; the stream ends)
 *   : ping                                                           (heartbeat)
 */
import { Router, type Request, type Response } from 'express';
import { parseAuthorizationHeader } from '../../core/token';
import { authenticate, lookupToken } from '../auth';
import type { ChangeFeed, EnvChange } from '../changes';
import { principal, type Principal, type ServerContext } from '../context';
import { HttpError, header } from '../http';
import { environmentUpdatedAt, readableEnvironments } from '../repositories/apps';

/** Streams one token may hold open at once (a sidecar needs one; a few allow restarts to overlap). */
export const MAX_STREAMS_PER_TOKEN = 4;
export const DEFAULT_HEARTBEAT_MS = 15_000;

async function readable(ctx: ServerContext, p: Principal): Promise<Map<string, string>> {
  const rows = await readableEnvironments(ctx.store.db, p);
  return new Map(rows.map((r) => [r.id, r.updated_at]));
}

export interface EventsRouter {
  router: Router;
  /** Ends every open stream (server shutdown: clients reconnect, to another process if there is one). */
  closeAll(): void;
}

export function eventsRouter(
  ctx: ServerContext,
  feed: ChangeFeed,
  heartbeatMs = DEFAULT_HEARTBEAT_MS,
): EventsRouter {
  const r = Router({ strict: true, caseSensitive: true });
  const open = new Map<string, number>();
  const streams = new Set<Response>();

  r.get('/secrets/events/', authenticate(ctx), async (req: Request, res: Response) => {
    const p = principal(req);
    const count = open.get(p.tokenId) ?? 0;
    if (count >= MAX_STREAMS_PER_TOKEN) {
      throw new HttpError(
        429,
        `At most ${MAX_STREAMS_PER_TOKEN} change streams per token are open at once.`,
        {
          'Retry-After': '5',
        },
      );
    }
    open.set(p.tokenId, count + 1);
    let known = await readable(ctx, p);
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    streams.add(res);
    const send = (event: string, data?: unknown): void => {
      res.write(`event: ${event}\n${data === undefined ? '' : `data: ${JSON.stringify(data)}\n`}\n`);
    };
    res.write(`retry: 2000\n\n`);
    send('hello', { environments: [...known].map(([id, updatedAt]) => ({ id, updatedAt })) });

    let queue = Promise.resolve();
    const onChange = (c: EnvChange): void => {
      if (!known.has(c.environmentId)) return;
      queue = queue.then(async () => {
        // Read back before telling: on SQLite this waits for the writing transaction to end, and it never reports a
        // time the client could not yet see.
        const updatedAt = await environmentUpdatedAt(ctx.store.db, c.environmentId);
        if (updatedAt === undefined || !known.has(c.environmentId)) return;
        if ((known.get(c.environmentId) ?? '') >= updatedAt) return;
        known.set(c.environmentId, updatedAt);
        send('change', { id: c.environmentId, updatedAt });
      });
      queue = queue.catch(() => undefined);
    };
    const unsubscribe = feed.subscribe(onChange);

    const raw = header(req, 'Authorization');
    const beat = setInterval(() => {
      queue = queue
        .then(async () => {
          const parsed = parseAuthorizationHeader(raw);
          const still = parsed.ok ? await lookupToken(ctx, parsed.authType, parsed.token) : undefined;
          if (!still) {
            send('revoked');
            res.end();
            return;
          }
          // Access may have changed: report grants as changes and revocations as removals.
          const now = await readable(ctx, p);
          for (const [id, updatedAt] of now) {
            if (known.get(id) !== updatedAt) send('change', { id, updatedAt });
          }
          for (const id of known.keys()) if (!now.has(id)) send('removed', { id });
          known = now;
          res.write(': ping\n\n');
        })
        .catch(() => undefined);
    }, heartbeatMs);

    req.on('close', () => {
      streams.delete(res);
      clearInterval(beat);
      unsubscribe();
      const n = (open.get(p.tokenId) ?? 1) - 1;
      if (n <= 0) open.delete(p.tokenId);
      else open.set(p.tokenId, n);
    });
  });
  return {
    router: r,
    closeAll: () => {
      for (const s of streams) s.end();
      streams.clear();
    },
  };
}
