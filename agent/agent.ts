/**
 * Wires the agent together: token source (a token, a token file, or a workload-identity login), sync engine, HTTP
 * listeners (loopback TCP, optional TLS, optional unix socket), the rendered file, and graceful shutdown.
 */
import { chmod, lstat, readFile, unlink } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { getHeapStatistics } from 'node:v8';
import { resolveBaseUrls } from '../core/client';
import type { Transport } from '../core/http';
import { initCrypto } from '../core/crypto';
import { keepTickObjectShape } from '../core/tick-object';
import { authorizationHeader } from '../core/token';
import { VERSION } from '../core/version';
import { ChangeStream, type ChangeStreamOptions } from './change-stream';
import type { Clock } from './clock';
import { isLogin, type AgentConfig } from './config';
import { createRequestHandler, type HttpDeps } from './http';
import { createLogger, type Logger } from './logger';
import { HeapKeeper } from './memory';
import { AgentMetrics } from './metrics';
import { loadClientToken, RequestGuard } from './security';
import { Renderer } from './render';
import { Templates } from './templates';
import { heapWarning } from './runtime-profile';
import { SyncEngine, type ClientFactory } from './sync';
import { defaultClientFactory } from './upstream';
import { TokenSource } from './token-source';
import { checkAgentPaths } from './trust';

/** How often the heap keeper compares the heap with its headroom. */
const HEAP_CHECK_MS = 2000;

export interface AgentHandle {
  /** `http://127.0.0.1:<port>` (or https), when listening on TCP. */
  url?: string;
  port?: number;
  socket?: string;
  clientToken: string;
  engine: SyncEngine;
  renderer?: Renderer;
  /** The rendered templates (`--template`), when configured. */
  templates?: Templates;
  metrics: AgentMetrics;
  /** Returns sync and load garbage to the OS (see agent/memory.ts). */
  heap: HeapKeeper;
  log: Logger;
  /** Finishes in-flight requests (up to the grace period), ends watch streams, stops syncing. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  clientFactory?: ClientFactory;
  /** Skip the HTTP listeners (used by `phase-bridge run`). */
  listen?: boolean;
  /** Wall time and timers of the sync and the change stream (tests drive time with their own). */
  clock?: Clock;
  /** Change stream timings (tests shorten the backoff). */
  stream?: Partial<
    Pick<ChangeStreamOptions, 'minBackoffMs' | 'maxBackoffMs' | 'unsupportedRetryMs' | 'idleTimeoutMs'>
  >;
}

function listen(server: http.Server, target: { port: number; host: string } | string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target.port, target.host, done);
  });
}

async function clearStaleSocket(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (st.isSocket()) await unlink(path);
  } catch {
    // nothing there
  }
}

/** The login token source, loaded only when a login method is configured (agent/auth/login.ts). */
async function loginSource(cfg: AgentConfig, log: Logger): Promise<TokenSource> {
  const { LoginTokenSource } = await import('./auth/login');
  return new LoginTokenSource({
    method: cfg.auth as 'kubernetes' | 'oidc' | 'aws-iam',
    host: cfg.host,
    accountId: cfg.accountId as string,
    jwtFile: cfg.jwtFile,
    ttlSeconds: cfg.tokenTtl !== undefined ? cfg.tokenTtl / 1000 : undefined,
    stsEndpoint: cfg.stsEndpoint,
    timeoutMs: cfg.upstreamTimeout,
    log,
  });
}

/**
 * With a login, the engine's upstream calls pass a gate: while no usable token is held (none obtained yet, or the
 * login was refused and the token has expired), nothing is sent, and the engine gets the answer the upstream would
 * give an expired token (403 on the bootstrap, 401 elsewhere: it fails closed) or, while logging in fails for
 * another reason, a 503 (it keeps what it serves, as in any outage). The engine's own handling does the rest.
 */
function gatedFactory(cfg: AgentConfig, tokens: TokenSource, inner?: ClientFactory): ClientFactory {
  const make: ClientFactory = inner ?? defaultClientFactory(cfg);
  return (token, transport) => {
    const gated: Transport = async (req, timeoutMs) => {
      const block = tokens.blocked();
      if (!block) return transport(req, timeoutMs);
      const status = block.status === 403 && !req.path.endsWith('/tokens/') ? 401 : block.status;
      const text = JSON.stringify({ error: block.reason });
      return { status, header: () => null, text };
    };
    return make(token, gated);
  };
}

/** A login token that expires without a replacement: sync at once (and fail closed) rather than at the next refresh. */
function syncOnLoginExpiry(engine: SyncEngine, tokens: TokenSource): void {
  tokens.on('expired', () => void engine.sync('login token expired', 'forced'));
}

/** Starts an agent; resolves once the listeners are up (the first sync continues in the background). */
export async function startAgent(cfg: AgentConfig, opts: StartOptions = {}): Promise<AgentHandle> {
  // Before the first request and the first sync's collections (core/tick-object.ts).
  keepTickObjectShape();
  await initCrypto();
  const log = opts.logger ?? createLogger(cfg.logLevel);
  const listening = opts.listen !== false && !cfg.once;
  // Before anything is read or written: every path must be the agent's own (agent/trust.ts).
  await checkAgentPaths(cfg, { clientTokenFile: listening && !cfg.clientToken });
  const metrics = new AgentMetrics();
  const login = isLogin(cfg);
  const tokens: TokenSource = login
    ? await loginSource(cfg, log)
    : new TokenSource({
        token: cfg.token,
        tokenFile: cfg.tokenFile,
        pollIntervalMs: cfg.tokenPollInterval,
        log,
      });
  await tokens.start();
  const engine = new SyncEngine(
    cfg,
    tokens,
    log,
    metrics,
    login ? gatedFactory(cfg, tokens, opts.clientFactory) : opts.clientFactory,
    opts.clock,
  );
  if (login) syncOnLoginExpiry(engine, tokens);
  // Push: the upstream's change stream, when it has one (phase-bridge servers); polling goes on either way.
  const stream =
    cfg.push && !cfg.once
      ? new ChangeStream({
          url: `${resolveBaseUrls(cfg.host).e2e}/secrets/events/`,
          headers: () => ({
            Authorization: authorizationHeader(tokens.raw),
            'User-Agent': `phase-bridge-agent/${VERSION}`,
          }),
          log,
          clock: opts.clock,
          ...opts.stream,
        })
      : undefined;
  if (stream) {
    engine.attachStream(stream);
    tokens.on('rotated', () => stream.reconnect());
  }

  const renderer = cfg.render ? new Renderer(engine, cfg.render, log) : undefined;
  // Before the first sync (and the snapshot), so their first change events render.
  const templates = cfg.templates.length ? await Templates.load(engine, cfg, log) : undefined;

  let clientToken = '';
  const servers: http.Server[] = [];
  const streams = new Set<http.ServerResponse>();
  let url: string | undefined;
  let port: number | undefined;
  const startedAt = Date.now();

  if (listening) {
    clientToken = await loadClientToken(cfg);
    const guard = new RequestGuard(clientToken, cfg, metrics);
    const deps: HttpDeps = {
      cfg,
      engine,
      guard,
      metrics,
      startedAt,
      streams,
      auth: () => tokens.status(),
      templates,
    };
    const app = createRequestHandler(deps);
    if (!cfg.noTcp) {
      const server = cfg.tlsCert
        ? https.createServer(
            { cert: await readFile(cfg.tlsCert), key: await readFile(cfg.tlsKey as string) },
            app,
          )
        : http.createServer(app);
      await listen(server, { port: cfg.port, host: cfg.listenHost });
      port = (server.address() as AddressInfo).port;
      const host = cfg.listenHost.includes(':') ? `[${cfg.listenHost}]` : cfg.listenHost;
      url = `${cfg.tlsCert ? 'https' : 'http'}://${host}:${port}`;
      servers.push(server);
    }
    if (cfg.socket) {
      await clearStaleSocket(cfg.socket);
      const server = http.createServer(app);
      await listen(server, cfg.socket);
      await chmod(cfg.socket, 0o660);
      servers.push(server);
    }
    log.info(
      {
        url,
        socket: cfg.socket,
        scopes: cfg.scopes.map((s) => s.name),
        clientTokenFile: cfg.clientToken ? undefined : cfg.clientTokenFile,
      },
      'agent listening',
    );
  }

  const heap = new HeapKeeper({
    headroom: cfg.heapHeadroom * 1048576,
    intervalMs: HEAP_CHECK_MS,
    log,
    onCollect: (seconds, reason) => metrics.heapCollections.observe({ reason }, seconds),
  });
  let materialised = 0;
  engine.on('synced', () => {
    if (engine.materialisations === materialised) return; // nothing decrypted: little garbage
    materialised = engine.materialisations;
    heap.afterSync();
    const h = getHeapStatistics();
    const warning = heapWarning(h.used_heap_size, h.heap_size_limit);
    if (warning) log.warn(warning);
  });
  heap.start();

  await engine.start();
  // After the first sync has started: the stream's hello is compared with data the agent holds.
  // (A login that has not given a token yet starts it with its first token, through the reconnect above.)
  void engine.firstSync.then(() => {
    if (!tokens.blocked()) stream?.start();
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      stream?.stop();
      templates?.stop();
      engine.stop();
      heap.stop();
      tokens.stop();
      metrics.stop();
      for (const s of streams) s.end();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              const t = setTimeout(() => s.closeAllConnections(), cfg.shutdownGrace);
              t.unref();
              s.close(() => {
                clearTimeout(t);
                resolve();
              });
              s.closeIdleConnections();
            }),
        ),
      );
      if (cfg.socket && servers.length) await clearStaleSocket(cfg.socket);
      log.info('agent stopped');
      log.flush?.();
    })();
    return closing;
  };

  return {
    url,
    port,
    socket: cfg.socket,
    clientToken,
    engine,
    renderer,
    templates,
    metrics,
    heap,
    log,
    close,
  };
}
