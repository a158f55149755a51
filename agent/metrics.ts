/**
 * Prometheus metrics on a private registry (several agents can live in one process, e.g. in tests).
 * Hot-path counters are pre-bound to their labels so a request costs one increment.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerProcessMetrics } from './process-metrics';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'cache'>;
  readonly refused: Counter<'reason'>;
  readonly upstreamCalls: Counter<'call' | 'outcome'>;
  readonly upstreamLatency: Histogram<'call'>;
  readonly decryptSeconds: Histogram<string>;
  readonly syncErrors: Counter<'scope' | 'code'>;
  readonly decryptErrors: Counter<'scope'>;
  readonly secrets: Gauge<'scope'>;
  readonly ageSeconds: Gauge<'scope'>;
  readonly serving: Gauge<'scope'>;
  readonly watchers: Gauge<string>;
  readonly budgetDeferred: Counter<string>;
  readonly heapCollections: Histogram<'reason'>;

  private readonly slots: Array<{ route: string; cache: string; n: number }> = [];
  private stopProcessMetrics: () => void = () => undefined;

  /** Stops what runs between scrapes (the event-loop delay monitor). */
  stop(): void {
    this.stopProcessMetrics();
  }

  /** A request counter for one (route, cache) pair whose increment is a plain addition. */
  requestCounter(route: string, cache: string): { inc(): void } {
    const slot = { route, cache, n: 0 };
    this.slots.push(slot);
    return {
      inc: () => {
        slot.n++;
      },
    };
  }

  constructor(defaults = true) {
    const registers = [this.registry];
    const slots = this.slots;
    this.requests = new Counter({
      name: 'phase_agent_requests_total',
      help: 'Secret requests answered, by route and cache state (hit, stale, not_modified, miss, unavailable)',
      labelNames: ['route', 'cache'],
      registers,
      // The hot path bumps plain numbers; they are copied into the counter when scraped.
      collect() {
        this.reset();
        for (const s of slots) if (s.n > 0) this.inc({ route: s.route, cache: s.cache }, s.n);
      },
    });
    this.refused = new Counter({
      name: 'phase_agent_refused_total',
      help: 'Requests refused by the local security checks, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.upstreamCalls = new Counter({
      name: 'phase_agent_upstream_calls_total',
      help: 'Upstream HTTP calls, by call and outcome',
      labelNames: ['call', 'outcome'],
      registers,
    });
    this.upstreamLatency = new Histogram({
      name: 'phase_agent_upstream_latency_seconds',
      help: 'Upstream HTTP call latency',
      labelNames: ['call'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.decryptSeconds = new Histogram({
      name: 'phase_agent_decrypt_seconds',
      help: 'Time to decrypt and resolve one scope during a sync',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.syncErrors = new Counter({
      name: 'phase_agent_sync_errors_total',
      help: 'Failed refreshes, by scope and error code',
      labelNames: ['scope', 'code'],
      registers,
    });
    this.decryptErrors = new Counter({
      name: 'phase_agent_decrypt_errors_total',
      help: 'Secrets skipped because they did not decrypt',
      labelNames: ['scope'],
      registers,
    });
    this.secrets = new Gauge({
      name: 'phase_agent_secrets',
      help: 'Secrets held, by scope',
      labelNames: ['scope'],
      registers,
    });
    this.ageSeconds = new Gauge({
      name: 'phase_agent_data_age_seconds',
      help: 'Seconds since the upstream last confirmed the data, by scope',
      labelNames: ['scope'],
      registers,
    });
    this.serving = new Gauge({
      name: 'phase_agent_scope_serving',
      help: '1 when the scope serves, else 0',
      labelNames: ['scope'],
      registers,
    });
    this.watchers = new Gauge({ name: 'phase_agent_watchers', help: 'Open /v1/watch streams', registers });
    this.budgetDeferred = new Counter({
      name: 'phase_agent_budget_deferred_total',
      help: 'Upstream calls postponed by the call budget or a 429 Retry-After',
      registers,
    });
    this.heapCollections = new Histogram({
      name: 'phase_agent_heap_collection_seconds',
      help: 'Full garbage collections the agent ran to return memory (after a sync, or past the heap headroom)',
      labelNames: ['reason'],
      buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25],
      registers,
    });
    if (defaults) this.stopProcessMetrics = registerProcessMetrics(this.registry, 'phase_agent_');
  }
}
