/**
 * The sync's fetch part: the upstream client (rebuilt when the token rotates), the call budget every call is charged
 * to, the bootstrap held for cycles that need none, and the per-call metrics. It fetches; it decides nothing about
 * scopes (agent/sync.ts does).
 */
import { PhaseClient } from '../core/client';
import { nodeTransport, type Transport } from '../core/http';
import type { BootstrapResponse, EncryptedSecret } from '../core/schemas';
import { VERSION } from '../core/version';
import { CallBudget, type CallKind } from './budget';
import type { Clock } from './clock';
import type { AgentConfig } from './config';
import type { AgentMetrics } from './metrics';
import type { TokenSource } from './token-source';

/** Builds the upstream client for a token; tests and benchmarks may count or slow calls through the transport. */
export type ClientFactory = (token: string, transport: Transport) => PhaseClient;

export const defaultClientFactory =
  (cfg: Pick<AgentConfig, 'host' | 'upstreamTimeout'>): ClientFactory =>
  (token, transport) =>
    new PhaseClient({
      host: cfg.host,
      token,
      retries: 0, // the next cycle is the retry: every call stays inside the budget
      timeoutMs: cfg.upstreamTimeout,
      transport,
      userAgent: `phase-bridge-agent/${VERSION}`,
    });

/**
 * core's `node:http(s)` transport with certificate checks on, rather than global fetch: fetch loads Node's bundled
 * undici on first use, which alone costs the agent several MB of resident memory (its code and heap), for nothing
 * the agent needs (one request at a time, keep-alive comes with Node's global agent).
 */
const upstreamTransport = nodeTransport({ rejectUnauthorized: true });

/** A bootstrap answer kept for the cycles that do without one (postponed fetches, pushes). */
export interface HeldBootstrap {
  boot: BootstrapResponse;
  at: number;
  /** Bootstrap identity (bearer) of the token that asked. */
  token: string;
}

export class Upstream {
  readonly budget: CallBudget;
  private client: PhaseClient;
  private held?: HeldBootstrap;
  /** Durations of the latest bootstrap and secrets download, in ms. */
  readonly timings = { bootstrapMs: 0, fetchMs: 0 };

  constructor(
    cfg: Pick<AgentConfig, 'budgetPerMinute' | 'budgetBurst' | 'budgetPushBurst'>,
    scopes: number,
    private readonly tokens: TokenSource,
    private readonly metrics: AgentMetrics,
    private readonly clientFactory: ClientFactory,
    private readonly clock: Clock,
  ) {
    this.budget = new CallBudget(
      cfg.budgetPerMinute * scopes,
      cfg.budgetBurst * scopes,
      () => this.clock.now(),
      cfg.budgetPushBurst * scopes, // pushed syncs and requested refreshes (also without push)
    );
    this.client = this.makeClient();
  }

  private makeClient(): PhaseClient {
    const transport: Transport = async (req, timeoutMs) => {
      const call = req.path.endsWith('/tokens/') ? 'bootstrap' : 'secrets';
      const end = this.metrics.upstreamLatency.startTimer({ call });
      try {
        const res = await upstreamTransport(req, timeoutMs);
        this.metrics.upstreamCalls.inc({ call, outcome: String(res.status) });
        return res;
      } catch (err) {
        this.metrics.upstreamCalls.inc({ call, outcome: 'network_error' });
        throw err;
      } finally {
        end();
      }
    };
    return this.clientFactory(this.tokens.raw, transport);
  }

  /** The token rotated: a client with the new one, and no bootstrap of the old one. */
  rotated(): void {
    this.client = this.makeClient();
    this.held = undefined;
  }

  /** Takes one call from the budget; false (and counted as deferred) when it allows none now. */
  take(kind: CallKind): boolean {
    const ok = this.budget.tryTake(kind);
    if (!ok) this.metrics.budgetDeferred.inc();
    return ok;
  }

  /** The bootstrap held for `token`, if any. */
  heldBootstrap(token: string): HeldBootstrap | undefined {
    return this.held && this.held.token === token ? this.held : undefined;
  }

  forgetBootstrap(): void {
    this.held = undefined;
  }

  /** `GET /service/secrets/tokens/` (the budget already charged); the answer is held for later cycles. */
  async bootstrap(token: string): Promise<BootstrapResponse> {
    const t = performance.now();
    const boot = await this.client.bootstrap();
    this.timings.bootstrapMs = performance.now() - t;
    this.held = { boot, at: this.clock.now(), token };
    return boot;
  }

  /** `GET /service/secrets/` of one environment (the budget already charged). */
  async secrets(envId: string, opts: { path?: string; tags?: string[] }): Promise<EncryptedSecret[]> {
    const t = performance.now();
    const list = await this.client.listEncryptedSecrets(envId, opts);
    this.timings.fetchMs = performance.now() - t;
    return list;
  }

  /** A reference target's ciphertext: charged to `kind`; undefined when the budget allows no call now. */
  async dependency(envId: string, path: string, kind: CallKind): Promise<EncryptedSecret[] | undefined> {
    if (!this.take(kind)) return undefined;
    return this.client.listEncryptedSecrets(envId, { path });
  }
}
