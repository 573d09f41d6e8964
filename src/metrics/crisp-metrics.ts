// Everything crisp exports to Prometheus: per-RPC latency and errors (fed by the RPC
// wrapper's observe hook), operation and stage durations from the event log, and gauges read
// at scrape time from the live state (containers and pods by state, the log's size).
import { statSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { EventStore } from '../events/store.js';
import type { RpcObserver } from '../cri/wrap.js';
import { stateOf } from '../machines/index.js';
import { EventLogMetrics } from './event-log-metrics.js';
import { MetricsRegistry } from './exposition.js';
import { PositionalCounter, PositionalHistogram } from './positional-metrics.js';
import { registerProcessMetrics } from './process-metrics.js';

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * How often the event-loop delay histogram (crisp_nodejs_eventloop_lag_*) takes a sample. Each
 * sample is a timer that wakes the event loop; at prom-client's default of 10 ms that was 100
 * wake-ups a second on an idle node and a tenth of the daemon's wake-ups while pods start. A
 * stall longer than this is always caught; a shorter one is caught when it covers a sample.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

export class CrispMetrics {
  readonly registry = new MetricsRegistry();
  private readonly rpcDuration: PositionalHistogram<readonly ['rpc']>;
  private readonly rpcTotal: PositionalCounter<readonly ['rpc', 'code']>;
  private readonly rpcErrors: PositionalCounter<readonly ['rpc', 'code']>;
  private readonly log = new EventLogMetrics(this.registry);
  private readonly stopProcessMetrics?: () => void;

  constructor(private readonly store: EventStore, o: { processMetrics?: boolean } = {}) {
    if (o.processMetrics ?? true) {
      this.stopProcessMetrics = registerProcessMetrics(this.registry, { prefix: 'crisp_', eventLoopSampleMs: EVENT_LOOP_SAMPLE_MS });
    }
    const registry = this.registry;
    this.rpcDuration = new PositionalHistogram({
      name: 'crisp_rpc_duration_seconds', help: 'Latency of CRI RPCs (streams: until the stream ended).', labelNames: ['rpc'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registry,
    });
    this.rpcTotal = new PositionalCounter({ name: 'crisp_rpc_requests_total', help: 'CRI RPCs answered, by gRPC status code.', labelNames: ['rpc', 'code'], registry });
    this.rpcErrors = new PositionalCounter({ name: 'crisp_rpc_errors_total', help: 'CRI RPCs that failed, by gRPC status code.', labelNames: ['rpc', 'code'], registry });
    const liveByState = (kind: 'container' | 'sandbox' | 'image') => {
      const counts = new Map<string, number>();
      for (const [, live] of store.liveStreams(kind)) {
        const value = String(stateOf(kind, live.snapshot).value);
        counts.set(value, (counts.get(value) ?? 0) + 1);
      }
      return counts;
    };
    const stateGauge = (name: string, help: string, kind: 'container' | 'sandbox' | 'image') =>
      registry.register({ name, help, type: 'gauge', samples: () => [...liveByState(kind)].map(([state, value]) => ({ labels: { state }, value })) });
    stateGauge('crisp_containers', 'Containers by state of their machine.', 'container');
    stateGauge('crisp_pod_sandboxes', 'Pod sandboxes by state of their machine.', 'sandbox');
    stateGauge('crisp_images', 'Images by state of their machine.', 'image');
    const lastSeq = store.db.prepare('SELECT coalesce(max(seq), 0) AS n FROM events');
    registry.register({
      name: 'crisp_event_log_events', help: 'Events in the log (the sequence number of the last one).', type: 'gauge',
      samples: () => [{ value: Number((lastSeq.get() as { n: number | bigint }).n) }],
    });
    registry.register({
      name: 'crisp_event_log_size_bytes', help: 'Size of the event log database, write-ahead log included.', type: 'gauge',
      samples: () => [{ value: fileSize(store.path) + fileSize(`${store.path}-wal`) }],
    });
  }

  /** The RPC wrapper's hook (src/cri/wrap.ts). */
  readonly observeRpc: RpcObserver = (rpc, code, seconds) => {
    const codeName = grpc.status[code] ?? String(code);
    this.rpcDuration.observe(seconds, rpc);
    this.rpcTotal.inc(1, rpc, codeName);
    if (code !== grpc.status.OK) this.rpcErrors.inc(1, rpc, codeName);
  };

  start(): void {
    this.log.attach(this.store);
  }

  stop(): void {
    this.log.detach();
    this.stopProcessMetrics?.();
  }
}
