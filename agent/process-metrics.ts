/**
 * The process metrics of the agent, read when `/metrics` is scraped: CPU, resident memory, open descriptors, start
 * time, V8 heap, event-loop delay and the Node version, under prom-client's usual names with the agent's prefix.
 *
 * Why not prom-client's `collectDefaultMetrics`: its garbage-collection histogram observes every collection
 * through a `PerformanceObserver`, and with the agent's 1 MB young generation (agent/runtime-profile.ts) a busy
 * agent collects every hundred or so requests. That observer alone cost the hot read 4–9 % of its throughput
 * (docs/performance.md, "Agent, sixth session"). Everything here costs nothing between scrapes
 * except the event-loop delay monitor, a native timer every 10 ms.
 */
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, type Registry } from 'prom-client';

/** A counter whose value is read at scrape time (prom-client counters cannot be set). */
function scrapedCounter(name: string, help: string, registry: Registry, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

function scrapedGauge(name: string, help: string, registry: Registry, read: () => number | undefined): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const v = read();
      if (v !== undefined) this.set(v);
    },
  });
}

function openDescriptors(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1; // the directory handle itself
  } catch {
    return undefined; // not Linux
  }
}

/** Registers the process metrics, names prefixed with `prefix`; the function returned stops the delay monitor. */
export function registerProcessMetrics(registry: Registry, prefix: string): () => void {
  const cpu = (): NodeJS.CpuUsage => process.cpuUsage();
  scrapedCounter(
    `${prefix}process_cpu_user_seconds_total`,
    'User CPU time spent in seconds.',
    registry,
    () => cpu().user / 1e6,
  );
  scrapedCounter(
    `${prefix}process_cpu_system_seconds_total`,
    'System CPU time spent in seconds.',
    registry,
    () => cpu().system / 1e6,
  );
  scrapedCounter(
    `${prefix}process_cpu_seconds_total`,
    'Total user and system CPU time spent in seconds.',
    registry,
    () => {
      const c = cpu();
      return (c.user + c.system) / 1e6;
    },
  );
  scrapedGauge(`${prefix}process_resident_memory_bytes`, 'Resident memory size in bytes.', registry, () =>
    process.memoryUsage.rss(),
  );
  scrapedGauge(`${prefix}process_open_fds`, 'Number of open file descriptors.', registry, openDescriptors);
  const started = Math.round(Date.now() / 1000 - process.uptime());
  scrapedGauge(
    `${prefix}process_start_time_seconds`,
    'Start time of the process since unix epoch in seconds.',
    registry,
    () => started,
  );
  scrapedGauge(
    `${prefix}nodejs_heap_size_total_bytes`,
    'Process heap size from Node.js in bytes.',
    registry,
    () => process.memoryUsage().heapTotal,
  );
  scrapedGauge(
    `${prefix}nodejs_heap_size_used_bytes`,
    'Process heap size used from Node.js in bytes.',
    registry,
    () => process.memoryUsage().heapUsed,
  );
  scrapedGauge(
    `${prefix}nodejs_external_memory_bytes`,
    'Node.js external memory size in bytes.',
    registry,
    () => process.memoryUsage().external,
  );

  // Event-loop delay since the previous scrape (p50, p99, max), then the monitor starts over. The monitor records the
  // time between its 10 ms ticks, so the tick itself is taken off.
  const RESOLUTION_MS = 10;
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  const seconds = (ns: number): number =>
    Number.isFinite(ns) ? Math.max(0, ns / 1e9 - RESOLUTION_MS / 1000) : 0;
  new Gauge({
    name: `${prefix}nodejs_eventloop_lag_seconds`,
    help: 'Event-loop delay since the previous scrape, by quantile (0.5, 0.99, max).',
    labelNames: ['quantile'],
    registers: [registry],
    collect() {
      this.set({ quantile: '0.5' }, seconds(delay.percentile(50)));
      this.set({ quantile: '0.99' }, seconds(delay.percentile(99)));
      this.set({ quantile: 'max' }, seconds(delay.max));
      delay.reset();
    },
  });
  new Gauge({
    name: `${prefix}nodejs_version_info`,
    help: 'Node.js version info.',
    labelNames: ['version'],
    registers: [registry],
  }).set({ version: process.version }, 1);
  return () => delay.disable();
}
