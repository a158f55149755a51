/**
 * The upstream change stream (phase-bridge's extension `GET /service/secrets/events/`, docs/server.md "Change
 * stream"): Server-Sent Events that name the environments the token can read when they change, so the agent syncs at
 * once instead of waiting for its refresh interval. Real Phase has no such endpoint and answers 404: the agent then
 * keeps polling and asks again rarely.
 *
 * One long-lived `node:http(s)` request (the agent's upstream client: no global fetch, so no undici in the
 * process), with the same Authorization header and User-Agent as the sync's calls, certificate checks on. Reconnects
 * with jittered exponential backoff; a stream silent for longer than `idleTimeoutMs` (the server sends a comment
 * every 15 s) is treated as dead. Nothing here decides what to sync: the engine does, from the events.
 */
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as https from 'node:https';
import { parseRetryAfter } from '../core/retry';
import type { Logger } from './logger';
import { systemClock, type Clock } from './clock';

/** An environment id and its `updated_at`, as the stream reports them. */
export interface StreamEnv {
  id: string;
  updatedAt: string;
}

export type StreamState = 'idle' | 'connecting' | 'connected' | 'down' | 'unsupported' | 'stopped';

export interface ChangeStreamEvents {
  /** The stream (re)opened: the current `updated_at` of every environment the token can read. */
  hello: [StreamEnv[]];
  change: [StreamEnv];
  /** Access to an environment was taken away. */
  removed: [{ id: string }];
  /** The server says the token stopped working (the stream ends). */
  revoked: [];
  state: [StreamState];
}

export interface ChangeStreamOptions {
  /** The events URL, e.g. `https://console.example/service/secrets/events/`. */
  url: string;
  /** Headers of each attempt (Authorization with the current token, User-Agent). */
  headers: () => Record<string, string>;
  log: Logger;
  clock?: Clock;
  random?: () => number;
  /** First reconnect delay (the server's `retry:` field raises it). Default 1 s. */
  minBackoffMs?: number;
  /** Longest reconnect delay. Default 60 s. */
  maxBackoffMs?: number;
  /** After a 404 (no change stream upstream, e.g. real Phase): ask again after this long. Default 10 min. */
  unsupportedRetryMs?: number;
  /** No byte for this long (events or heartbeats) ends the connection. Default 75 s. */
  idleTimeoutMs?: number;
  /** Time to the response headers. Default 15 s. */
  connectTimeoutMs?: number;
  /** A connection that stayed up this long resets the backoff. Default 30 s. */
  healthyAfterMs?: number;
}

/** Upper bound of a line or an event held while parsing (a stream that never ends a line is dropped). */
const MAX_BUFFER = 4 * 1024 * 1024;

/**
 * Incremental Server-Sent Events parser (the WHATWG algorithm, minus `id` bookkeeping): lines end with CRLF, LF or
 * CR; `field: value`; a blank line dispatches; lines starting with `:` are comments. An event without data is still
 * dispatched when it has a name (the server's `revoked` carries none).
 */
export class SseParser {
  private buf = '';
  private event = '';
  private data: string[] = [];
  /** The latest `retry:` value, in ms. */
  retryMs?: number;

  constructor(private readonly onEvent: (event: string, data: string) => void) {}

  /** Feeds a chunk; returns false when the buffered input grew beyond the limit. */
  push(chunk: string): boolean {
    this.buf += chunk;
    let start = 0;
    for (;;) {
      let end = -1;
      let next = -1;
      for (let i = start; i < this.buf.length; i++) {
        const c = this.buf.charCodeAt(i);
        if (c === 10) {
          end = i;
          next = i + 1;
          break;
        }
        if (c === 13) {
          if (i + 1 >= this.buf.length) break; // a CR at the end: wait for a possible LF
          end = i;
          next = this.buf.charCodeAt(i + 1) === 10 ? i + 2 : i + 1;
          break;
        }
      }
      if (end < 0) break;
      this.line(this.buf.slice(start, end));
      start = next;
    }
    this.buf = this.buf.slice(start);
    return this.buf.length + this.data.reduce((n, d) => n + d.length, 0) <= MAX_BUFFER;
  }

  private line(line: string): void {
    if (line === '') {
      if (this.event || this.data.length) this.onEvent(this.event || 'message', this.data.join('\n'));
      this.event = '';
      this.data = [];
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
  }
}

function isEnv(x: unknown): x is StreamEnv {
  const e = x as StreamEnv;
  return !!e && typeof e.id === 'string' && typeof e.updatedAt === 'string';
}

export class ChangeStream extends EventEmitter<ChangeStreamEvents> {
  state: StreamState = 'idle';
  /** Consecutive failed attempts (the backoff exponent). */
  private attempt = 0;
  private req?: http.ClientRequest;
  private retryTimer?: ReturnType<Clock['setTimeout']>;
  private idleTimer?: ReturnType<Clock['setTimeout']>;
  private openedAt = 0;
  private serverRetryMs = 0;
  private stopped = true;
  /** Stopped for good (the agent closed): a late start() does nothing. */
  private ended = false;
  /** Counters for /v1/status. */
  connects = 0;
  events = 0;
  lastEventAt = 0;
  lastError?: string;
  nextAttemptAt = 0;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly o: Required<
    Pick<
      ChangeStreamOptions,
      | 'minBackoffMs'
      | 'maxBackoffMs'
      | 'unsupportedRetryMs'
      | 'idleTimeoutMs'
      | 'connectTimeoutMs'
      | 'healthyAfterMs'
    >
  >;

  constructor(private readonly opts: ChangeStreamOptions) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.o = {
      minBackoffMs: opts.minBackoffMs ?? 1000,
      maxBackoffMs: opts.maxBackoffMs ?? 60_000,
      unsupportedRetryMs: opts.unsupportedRetryMs ?? 600_000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 75_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 15_000,
      healthyAfterMs: opts.healthyAfterMs ?? 30_000,
    };
  }

  start(): void {
    if (this.ended || !this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.ended = true;
    this.clearTimers();
    this.req?.destroy();
    this.req = undefined;
    this.setState('stopped');
  }

  /** Drops the current connection and opens a new one now (the token changed). */
  reconnect(): void {
    if (this.stopped) return;
    this.clearTimers();
    const req = this.req;
    this.req = undefined;
    req?.destroy();
    this.attempt = 0;
    this.connect();
  }

  private clearTimers(): void {
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    if (this.idleTimer) this.clock.clearTimeout(this.idleTimer);
    this.retryTimer = undefined;
    this.idleTimer = undefined;
  }

  private setState(s: StreamState): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  private connect(): void {
    if (this.stopped) return;
    if (this.state === 'idle' || this.state === 'stopped') this.setState('connecting');
    let url: URL;
    try {
      url = new URL(this.opts.url);
    } catch {
      this.lastError = 'invalid events URL';
      this.setState('unsupported');
      return;
    }
    const https_ = url.protocol === 'https:';
    const req = (https_ ? https : http).request(url, {
      method: 'GET',
      headers: { ...this.opts.headers(), Accept: 'text/event-stream', 'Cache-Control': 'no-store' },
      agent: false, // its own socket: a stream must not hold one of the sync's keep-alive sockets
      ...(https_ ? { rejectUnauthorized: true } : {}),
    });
    this.req = req;
    let answered = false;
    const connectTimer = this.clock.setTimeout(() => {
      if (!answered) req.destroy(new Error(`no response within ${this.o.connectTimeoutMs} ms`));
    }, this.o.connectTimeoutMs);
    req.on('response', (res) => {
      answered = true;
      this.clock.clearTimeout(connectTimer);
      if (req !== this.req) {
        res.destroy();
        return;
      }
      const type = String(res.headers['content-type'] ?? '');
      if (res.statusCode === 200 && type.startsWith('text/event-stream')) {
        this.opened(req, res);
        return;
      }
      res.resume();
      this.refused(res.statusCode ?? 0, parseRetryAfter(String(res.headers['retry-after'] ?? '')));
    });
    req.on('error', (err) => {
      this.clock.clearTimeout(connectTimer);
      if (req !== this.req) return;
      this.dropped((err as NodeJS.ErrnoException).code ?? err.message);
    });
    req.end();
  }

  private opened(req: http.ClientRequest, res: http.IncomingMessage): void {
    this.connects++;
    this.openedAt = this.clock.now();
    this.lastError = undefined;
    this.setState('connected');
    this.opts.log.info({ url: this.opts.url }, 'subscribed to the upstream change stream');
    const parser = new SseParser((event, data) => this.dispatch(event, data));
    res.setEncoding('utf8');
    this.armIdle(req);
    res.on('data', (chunk: string) => {
      if (req !== this.req) return;
      this.armIdle(req);
      if (!parser.push(chunk)) req.destroy(new Error('an event exceeded 4 MB'));
      if (parser.retryMs !== undefined) this.serverRetryMs = Math.min(parser.retryMs, this.o.maxBackoffMs);
    });
    const end = (): void => {
      if (req === this.req) this.dropped('the stream ended');
    };
    res.on('end', end);
    res.on('close', end);
    res.on('error', () => end());
  }

  private armIdle(req: http.ClientRequest): void {
    if (this.idleTimer) this.clock.clearTimeout(this.idleTimer);
    this.idleTimer = this.clock.setTimeout(() => {
      if (req === this.req)
        req.destroy(new Error(`nothing received for ${Math.round(this.o.idleTimeoutMs / 1000)} s`));
    }, this.o.idleTimeoutMs);
  }

  private dispatch(event: string, data: string): void {
    this.events++;
    this.lastEventAt = this.clock.now();
    let body: unknown;
    if (data) {
      try {
        body = JSON.parse(data);
      } catch {
        this.opts.log.debug({ event }, 'change stream: ignoring an event whose data is not JSON');
        return;
      }
    }
    if (event === 'hello') {
      const envs = (body as { environments?: unknown })?.environments;
      if (Array.isArray(envs)) this.emit('hello', envs.filter(isEnv));
    } else if (event === 'change') {
      if (isEnv(body)) this.emit('change', { id: body.id, updatedAt: body.updatedAt });
    } else if (event === 'removed') {
      const id = (body as { id?: unknown })?.id;
      if (typeof id === 'string') this.emit('removed', { id });
    } else if (event === 'revoked') this.emit('revoked');
  }

  /** The server answered, but not with a stream. */
  private refused(status: number, retryAfterMs: number | undefined): void {
    this.req = undefined;
    // 404 is what real Phase answers; any other refusal of the request itself means the same: no stream here.
    if (status === 501 || (status >= 400 && status < 500 && ![401, 403, 408, 429].includes(status))) {
      const first = this.state !== 'unsupported';
      this.lastError = `HTTP ${status}: the upstream has no change stream`;
      this.setState('unsupported');
      if (first)
        this.opts.log.info(
          { status, retryInSeconds: Math.round(this.o.unsupportedRetryMs / 1000) },
          'the upstream has no change stream (real Phase has none): polling every refresh interval',
        );
      this.retryIn(this.o.unsupportedRetryMs);
      return;
    }
    this.lastError = `HTTP ${status}`;
    this.failedAttempt(retryAfterMs);
  }

  private dropped(reason: string): void {
    this.req = undefined;
    if (this.idleTimer) this.clock.clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.stopped) return;
    const wasUp = this.state === 'connected';
    if (wasUp && this.clock.now() - this.openedAt >= this.o.healthyAfterMs) this.attempt = 0;
    this.lastError = reason;
    if (wasUp)
      this.opts.log.warn(
        { reason },
        'the upstream change stream dropped: polling every refresh interval until it is back',
      );
    this.failedAttempt(undefined);
  }

  private failedAttempt(retryAfterMs: number | undefined): void {
    const first = this.state !== 'down';
    this.setState('down');
    const base = Math.min(
      this.o.maxBackoffMs,
      Math.max(this.o.minBackoffMs, this.serverRetryMs) * 2 ** Math.min(this.attempt, 16),
    );
    this.attempt++;
    // Equal jitter: half fixed, half random, so agents restarted together do not reconnect together.
    const delay = Math.max(retryAfterMs ?? 0, base / 2 + (this.random() * base) / 2);
    if (first && this.connects === 0)
      this.opts.log.warn(
        { reason: this.lastError, retryInMs: Math.round(delay) },
        'cannot open the upstream change stream: polling every refresh interval meanwhile',
      );
    this.retryIn(delay);
  }

  private retryIn(ms: number): void {
    if (this.stopped) return;
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    this.nextAttemptAt = this.clock.now() + ms;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, ms);
  }
}
