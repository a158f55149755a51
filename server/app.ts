/**
 * The Express application: routing under every prefix Phase serves, body parsing with Phase's messages, error
 * bodies `{"error": ...}`, health, metrics and request logging (no tokens, headers or secret values in logs).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import pino, { type Logger } from 'pino';
import { initCrypto } from '../core/crypto';
import { keepTickObjectShape } from '../core/tick-object';
import { serverKeyPair } from '../core/mint';
import { VERSION } from '../core/version';
import { parseRateLimit, parseSize, parseTrustedProxies, type ServerConfig } from './config';
import type { AuthedRequest, ServerContext } from './context';
import { ChangeFeed } from './changes';
import { openStore, parseDatabaseUrl, type Store } from './db/store';
import { eventsRouter } from './routes/events';
import { DEFAULT_REQUEST_TIMEOUT_MS, requestClockPlugin, requestTimeout } from './deadline';
import { HttpError } from './http';
import { EnvKeyCache } from './keys';
import { createMetrics } from './metrics';
import { trustedProxies } from './network';
import { RateLimiter } from './ratelimit';
import { e2eRouter } from './routes/e2e';
import { v1Router } from './routes/v1';

export interface PhaseBridgeServer {
  app: express.Express;
  store: Store;
  context: ServerContext;
  /** Starts listening; resolves with the bound port. */
  listen(port?: number, host?: string): Promise<{ port: number; host: string; url: string }>;
  close(): Promise<void>;
}

/**
 * Strips Phase's prefixes so one set of routes serves them all: `/service` (ServicePrefixMiddleware), then
 * `/public` before `/v1/` or `/identities/` (the public route list is mounted at `/` and `/public/`).
 * `/public/secrets/` stays unrouted, as in Phase.
 */
function rewritePrefixes(req: Request, _res: Response, next: NextFunction): void {
  let url = req.url;
  if (url === '/service' || url.startsWith('/service/') || url.startsWith('/service?')) {
    url = url.slice('/service'.length) || '/';
  }
  if (url.startsWith('/public/v1/') || url.startsWith('/public/v1?') || url === '/public/v1') {
    url = url.slice('/public'.length);
  }
  req.url = withTrailingSlash(url);
  next();
}

/**
 * `/v1/...` answers with and without the trailing slash. Phase's Django routes need it (APPEND_SLASH off), yet
 * Phase's own examples send `curl -G https://api.phase.dev/v1/secrets` (its API host adds it), so people type both.
 */
function withTrailingSlash(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (!(path === '/v1' || path.startsWith('/v1/')) || path.endsWith('/')) return url;
  return `${path}/${q < 0 ? '' : url.slice(q)}`;
}

/** Reads the raw body (any content type) and parses JSON ourselves, so the messages are Phase's. */
function bodyParser(limit: number) {
  const raw = express.raw({ type: () => true, limit });
  return (req: Request, res: Response, next: NextFunction): void => {
    raw(req, res, (err?: unknown) => {
      if (err) return next(err);
      const buf = req.body as unknown;
      (req as AuthedRequest).jsonBody = undefined;
      if (Buffer.isBuffer(buf) && buf.length > 0) {
        const text = buf.toString('utf8');
        if (text.trim() !== '') {
          try {
            (req as AuthedRequest).jsonBody = JSON.parse(text);
          } catch {
            return next(new HttpError(400, 'Request body must be valid JSON.'));
          }
        }
      }
      req.body = undefined;
      next();
    });
  };
}

/** Creates the server: opens the store (running migrations), builds the app. Call `listen` to serve. */
export async function createServer(config: ServerConfig & { logger?: Logger }): Promise<PhaseBridgeServer> {
  keepTickObjectShape(); // core/tick-object.ts: every request runs through nextTick
  await initCrypto();
  const proxies = trustedProxies(parseTrustedProxies(config.trustedProxies));
  const store = await openStore(config.database);
  // Ties queries to their request, so a request answered by the time limit writes nothing afterwards (deadline.ts).
  store.db = store.db.withPlugin(requestClockPlugin);
  const log =
    config.logger ??
    pino({
      level: config.logLevel ?? 'info',
      // Belt and braces: nothing should log these, but redact them if a future change does.
      redact: ['req.headers.authorization', 'headers.authorization', 'token', 'value', '*.token', '*.value'],
    });
  const server = serverKeyPair(config.serverSecret);
  const metrics = createMetrics({ defaultMetrics: false });
  const rl = config.rateLimit ? parseRateLimit(config.rateLimit) : undefined;
  const context: ServerContext = {
    store,
    server,
    serverSecret: config.serverSecret,
    envKeys: new EnvKeyCache(server),
    log,
    metrics,
    rateLimiter: rl ? new RateLimiter(rl.limit, rl.windowMs) : undefined,
    trustedProxies: proxies,
    allowLoopbackIdentityEndpoints: config.allowLoopbackIdentityEndpoints === true,
  };
  const feed = new ChangeFeed(store.kind, parseDatabaseUrl(config.database).target, log);
  await feed.start();
  const events = eventsRouter(context, feed, config.changeStreamHeartbeatMs);

  const app = express();
  app.set('strict routing', true);
  app.set('case sensitive routing', true);
  app.set('x-powered-by', false);
  app.set('etag', false);
  app.set('query parser', 'simple');

  // Metrics and access log for every request; the route label is the pattern, never the concrete path.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const secs = Number(process.hrtime.bigint() - start) / 1e9;
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      metrics.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      metrics.latency.observe({ method: req.method, route }, secs);
      log.info({ method: req.method, route, status: res.statusCode, ms: Math.round(secs * 1000) }, 'request');
    });
    next();
  });
  app.use(rewritePrefixes);

  const health = (_req: Request, res: Response) => {
    res.status(200).json({ status: 'alive', version: VERSION });
  };
  app.get('/health', health);
  app.get('/health/', health);
  const ready = async (_req: Request, res: Response) => {
    try {
      await store.ping();
      res.status(200).json({ status: 'ready', store: store.kind });
    } catch {
      res
        .status(503)
        .json({ status: 'unavailable', store: store.kind, error: 'The store is not reachable.' });
    }
  };
  app.get('/health/ready', ready);
  app.get('/health/ready/', ready);
  app.get('/metrics', async (_req: Request, res: Response) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.status(200).send(await metrics.registry.metrics());
  });
  const alive = (_req: Request, res: Response) => {
    res.status(200).json({
      message:
        'API is alive. Please see https://docs.phase.dev/public-api for documentation on available endpoints.',
      status: 'ok',
    });
  };
  app.get('/', alive);
  app.get('/public/', alive);

  // The change stream is long-lived: mounted before the body parser and the per-request time limit.
  app.use(events.router);
  app.use(bodyParser(parseSize(config.bodyLimit ?? '1mb')));
  app.use(requestTimeout(config.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT_MS));
  app.use(e2eRouter(context));
  app.use(v1Router(context));

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'Not found.' });
  });
  // Error middleware: typed errors keep their status; body-parser errors map to 413/400; anything else is a 500
  // whose details go to the log only.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return;
    if (err instanceof HttpError) {
      for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
      res.status(err.status).json({ error: err.message });
      return;
    }
    const e = err as { type?: string; status?: number; statusCode?: number };
    if (e?.type === 'entity.too.large') {
      res.status(413).json({ error: 'Request body is too large.' });
      return;
    }
    const status = e?.status ?? e?.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: 'Malformed request.' });
      return;
    }
    log.error(
      {
        err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err),
        method: req.method,
        route: req.route?.path,
      },
      'unhandled error',
    );
    res.status(500).json({ error: 'Internal server error.' });
  });

  let httpServer: Server | undefined;
  return {
    app,
    store,
    context,
    listen(port = 8080, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        const s = app.listen(port, host, (err?: Error) => {
          if (err) return reject(err);
          const addr = s.address() as AddressInfo;
          const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
          resolve({ port: addr.port, host: addr.address, url: `http://${h}:${addr.port}` });
        });
        s.keepAliveTimeout = 5000;
        httpServer = s;
        s.on('error', reject);
      });
    },
    async close() {
      if (httpServer) {
        const s = httpServer;
        httpServer = undefined;
        // Let in-flight requests finish (their writes are answered), drop idle keep-alive connections, and force
        // the rest after a grace period.
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => s.closeAllConnections(), 5000);
          force.unref();
          s.close(() => {
            clearTimeout(force);
            resolve();
          });
          s.closeIdleConnections();
        });
      }
      events.closeAll();
      await feed.close();
      await store.close();
    },
  };
}
