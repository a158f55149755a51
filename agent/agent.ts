/**
 * Wires the agent together: token source, sync engine, HTTP listeners (loopback TCP, optional TLS, optional unix
 * socket), the rendered file, and graceful shutdown.
 */
import { chmod, lstat, readFile, unlink } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { getHeapStatistics } from 'node:v8';
import { resolveBaseUrls } from '../core/client';
import { initCrypto } from '../core/crypto';
import { authorizationHeader } from '../core/token';
import { VERSION } from '../core/version';
import { ChangeStream, type ChangeStreamOptions } from './change-stream';
import type { AgentConfig } from './config';
import { createRequestHandler, type HttpDeps } from './http';
import { createLogger, type Logger } from './logger';
import { HeapKeeper } from './memory';
import { AgentMetrics } from './metrics';
import { loadClientToken, RequestGuard } from './security';
import { Renderer } from './render';
import { heapWarning } from './runtime-profile';
import { SyncEngine, type ClientFactory } from './sync';
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

/** Starts an agent; resolves once the listeners are up (the first sync continues in the background). */
export async function startAgent(cfg: AgentConfig, opts: StartOptions = {}): Promise<AgentHandle> {
  await initCrypto();
  const log = opts.logger ?? createLogger(cfg.logLevel);
  const listening = opts.listen !== false && !cfg.once;
  // Before anything is read or written: every path must be the agent's own (agent/trust.ts).
  await checkAgentPaths(cfg, { clientTokenFile: listening && !cfg.clientToken });
  const metrics = new AgentMetrics();
  const tokens = new TokenSource({
    token: cfg.token,
    tokenFile: cfg.tokenFile,
    pollIntervalMs: cfg.tokenPollInterval,
    log,
  });
  await tokens.start();
  const engine = new SyncEngine(cfg, tokens, log, metrics, opts.clientFactory);
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
          ...opts.stream,
        })
      : undefined;
  if (stream) {
    engine.attachStream(stream);
    tokens.on('rotated', () => stream.reconnect());
  }

  const renderer = cfg.render ? new Renderer(engine, cfg.render, log) : undefined;

  let clientToken = '';
  const servers: http.Server[] = [];
  const streams = new Set<http.ServerResponse>();
  let url: string | undefined;
  let port: number | undefined;
  const startedAt = Date.now();

  if (listening) {
    clientToken = await loadClientToken(cfg);
    const guard = new RequestGuard(clientToken, cfg, metrics);
    const deps: HttpDeps = { cfg, engine, guard, metrics, startedAt, streams };
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
  void engine.firstSync.then(() => stream?.start());

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      stream?.stop();
      engine.stop();
      heap.stop();
      tokens.stop();
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

  return { url, port, socket: cfg.socket, clientToken, engine, renderer, metrics, heap, log, close };
}
