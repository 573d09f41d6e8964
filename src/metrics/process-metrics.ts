// The daemon's process and Node.js figures, under the names Prometheus client libraries give them
// (process_* as every client library does; nodejs_* as prom-client, whose default metrics these
// were, named them), each with crisp's prefix: CPU, memory, file descriptors, the event loop's
// delay, libuv's active handles and requests, V8's heap and its spaces, and GC pauses. All but
// two are read when /metrics is asked for; the event loop's delay is sampled by a timer (every
// `eventLoopSampleMs`) and GC pauses are observed as V8 reports them.
import { readdirSync, readFileSync } from 'node:fs';
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import type { MetricFamily, MetricsRegistry, Sample } from './exposition.js';
import { PositionalHistogram } from './positional-metrics.js';

/** Values of /proc/self/status (kB) the memory gauges read, in bytes; 0 when absent. */
function statusBytes(): { VmRSS: number; VmSize: number; VmData: number } {
  const out = { VmRSS: 0, VmSize: 0, VmData: 0 };
  let text = '';
  try {
    text = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return out;
  }
  for (const key of ['VmRSS', 'VmSize', 'VmData'] as const) {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    if (m) out[key] = Number(m[1]) * 1024;
  }
  return out;
}

function maxOpenFiles(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/**
 * `read`, called at most once per scrape: a scrape reads every family in one synchronous pass, so
 * a value kept until the next microtask serves all the families made from one source.
 */
function perScrape<T>(read: () => T): () => T {
  let kept: { value: T } | undefined;
  return () => {
    if (!kept) {
      kept = { value: read() };
      queueMicrotask(() => (kept = undefined));
    }
    return kept.value;
  };
}

/** How many of each kind `items` holds, by the name `kindOf` gives. */
function countBy<T>(items: readonly T[], kindOf: (item: T) => string | undefined): Sample[] {
  const counts = new Map<string, number>();
  for (const item of items) {
    const kind = kindOf(item);
    if (kind !== undefined) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return [...counts].map(([type, value]) => ({ labels: { type }, value }));
}

const constructorName = (o: unknown) => (o as { constructor?: { name?: string } } | null)?.constructor?.name;

// libuv's handles and requests, as Node lists them (undocumented, but what this figure has always been read from).
type Lister = () => unknown[];
const activeHandles = (process as unknown as { _getActiveHandles?: Lister })._getActiveHandles?.bind(process);
const activeRequests = (process as unknown as { _getActiveRequests?: Lister })._getActiveRequests?.bind(process);

const GC_KINDS: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/**
 * Registers the process and Node figures in `registry`, each name prefixed with `prefix`.
 * Returns what stops the event-loop sampling timer and the GC observer.
 */
export function registerProcessMetrics(registry: MetricsRegistry, o: { prefix: string; eventLoopSampleMs: number }): () => void {
  const family = (name: string, help: string, type: MetricFamily['type'], samples: () => Iterable<Sample>) =>
    registry.register({ name: o.prefix + name, help, type, samples });
  const one = (value: number): Sample[] => [{ value }];
  const cpu = perScrape(() => process.cpuUsage());
  const status = perScrape(statusBytes);
  const memory = perScrape(() => process.memoryUsage());
  const heapSpaces = perScrape(getHeapSpaceStatistics);
  const resources = perScrape(() => process.getActiveResourcesInfo());

  family('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', 'counter', () => one(cpu().user / 1e6));
  family('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', 'counter', () => one(cpu().system / 1e6));
  family('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', () => one((cpu().user + cpu().system) / 1e6));
  const started = Math.round(Date.now() / 1000 - process.uptime());
  family('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', () => one(started));
  family('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', () => one(status().VmRSS));
  family('process_virtual_memory_bytes', 'Virtual memory size in bytes.', 'gauge', () => one(status().VmSize));
  family('process_heap_bytes', 'Process heap size in bytes.', 'gauge', () => one(status().VmData));
  family('process_open_fds', 'Number of open file descriptors.', 'gauge', () => {
    try {
      return one(readdirSync('/proc/self/fd').length - 1); // less the one readdir held open
    } catch {
      return [];
    }
  });
  const maxFds = maxOpenFiles();
  if (maxFds !== undefined) family('process_max_fds', 'Maximum number of open file descriptors.', 'gauge', () => one(maxFds));

  // The event loop's delay: a timer's lateness, sampled every eventLoopSampleMs, summed up and
  // started afresh at each scrape; and, as a single figure, how late an immediate runs when asked.
  const delay = monitorEventLoopDelay({ resolution: o.eventLoopSampleMs });
  delay.enable();
  let lastLag = 0;
  let figures: Record<string, number> = {};
  // This family is registered before the seven below and so is read first at each scrape: it
  // takes the histogram's figures for them and starts it afresh.
  family('nodejs_eventloop_lag_seconds', 'Lag of event loop in seconds.', 'gauge', () => {
    const s = (ns: number) => (delay.count > 0 ? ns / 1e9 : 0);
    figures = {
      min: s(delay.min), max: s(delay.max), mean: s(delay.mean), stddev: s(delay.stddev),
      p50: s(delay.percentile(50)), p90: s(delay.percentile(90)), p99: s(delay.percentile(99)),
    };
    delay.reset();
    // how late an immediate runs, measured now and shown at the next scrape
    const asked = process.hrtime.bigint();
    setImmediate(() => (lastLag = Number(process.hrtime.bigint() - asked) / 1e9));
    return one(lastLag);
  });
  const lagHelp: Record<string, string> = {
    min: 'The minimum recorded event loop delay.', max: 'The maximum recorded event loop delay.',
    mean: 'The mean of the recorded event loop delays.', stddev: 'The standard deviation of the recorded event loop delays.',
    p50: 'The 50th percentile of the recorded event loop delays.', p90: 'The 90th percentile of the recorded event loop delays.',
    p99: 'The 99th percentile of the recorded event loop delays.',
  };
  for (const [figure, help] of Object.entries(lagHelp)) {
    family(`nodejs_eventloop_lag_${figure}_seconds`, help, 'gauge', () => one(figures[figure] ?? 0));
  }

  family('nodejs_active_resources', 'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.', 'gauge',
    () => countBy(resources(), (type) => type));
  family('nodejs_active_resources_total', 'Total number of active resources.', 'gauge', () => one(resources().length));
  if (activeHandles) {
    const handles = perScrape(activeHandles);
    family('nodejs_active_handles', 'Number of active libuv handles grouped by handle type. Every handle type is C++ class name.', 'gauge',
      () => countBy(handles(), constructorName));
    family('nodejs_active_handles_total', 'Total number of active handles.', 'gauge', () => one(handles().length));
  }
  if (activeRequests) {
    const requests = perScrape(activeRequests);
    family('nodejs_active_requests', 'Number of active libuv requests grouped by request type. Every request type is C++ class name.', 'gauge',
      () => countBy(requests(), constructorName));
    family('nodejs_active_requests_total', 'Total number of active requests.', 'gauge', () => one(requests().length));
  }

  family('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', 'gauge', () => one(memory().heapTotal));
  family('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', 'gauge', () => one(memory().heapUsed));
  family('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', 'gauge', () => one(memory().external));
  const spaces = (figure: 'space_size' | 'space_used_size' | 'space_available_size') => () =>
    heapSpaces().map((s) => ({ labels: { space: s.space_name.replace(/_space$/, '') }, value: s[figure] }));
  family('nodejs_heap_space_size_total_bytes', 'Process heap space size total from Node.js in bytes.', 'gauge', spaces('space_size'));
  family('nodejs_heap_space_size_used_bytes', 'Process heap space size used from Node.js in bytes.', 'gauge', spaces('space_used_size'));
  family('nodejs_heap_space_size_available_bytes', 'Process heap space size available from Node.js in bytes.', 'gauge', spaces('space_available_size'));

  const [major, minor, patch] = process.versions.node.split('.').map(Number);
  family('nodejs_version_info', 'Node.js version info.', 'gauge',
    () => [{ labels: { version: process.version, major: major!, minor: minor!, patch: patch! }, value: 1 }]);

  const gc = new PositionalHistogram({
    name: `${o.prefix}nodejs_gc_duration_seconds`, help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
    labelNames: ['kind'], buckets: [0.001, 0.01, 0.1, 1, 2, 5], registry,
  });
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = GC_KINDS[(entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1];
      if (kind) gc.observe(entry.duration / 1000, kind);
    }
  });
  observer.observe({ entryTypes: ['gc'] });

  return () => {
    delay.disable();
    observer.disconnect();
  };
}
