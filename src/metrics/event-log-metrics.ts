// Durations read off the event log: every step of an operation is a fact with a timestamp,
// so the time a step took is the gap between its fact and the one before it in the same
// stream (DESIGN.md: "the log is also the latency trace"). Nothing is timed inside actors.
import type { Subscription } from '../rx.js';
import type { MetricsRegistry } from './exposition.js';
import { PositionalCounter, PositionalHistogram } from './positional-metrics.js';
import type { EventStore, StoredEvent } from '../events/store.js';
import type { DomainEventType } from '../machines/events.js';
import { nowNs } from '../events/clock.js';

/** The step each fact ends: the time since the stream's previous fact is that step's duration. */
const STAGES: Partial<Record<DomainEventType, string>> = {
  SandboxNamespacesPinned: 'namespace_pin',
  SandboxFilesPrepared: 'pod_files',
  SandboxNetworkAttached: 'cni_add',
  SandboxInfraStarted: 'infra_start',
  SandboxInfraStopped: 'infra_stop',
  SandboxNetworkDetached: 'cni_del',
  SandboxFilesRemoved: 'pod_files_remove',
  SandboxNamespacesUnpinned: 'namespace_unpin',
  ContainerRootfsMounted: 'rootfs_mount',
  ContainerSpecWritten: 'spec',
  ContainerCreated: 'runc_create',
  ContainerStarted: 'runc_start',
  ContainerRuntimeDeleted: 'runc_delete',
  ContainerRootfsUnmounted: 'rootfs_unmount',
  ImageLayerStored: 'layer_pull',
};

/** Request fact → the facts that end the operation it starts, with their outcome. */
const OPERATIONS: Partial<Record<DomainEventType, { name: string; ends: Partial<Record<DomainEventType, 'ok' | 'error'>> }>> = {
  SandboxRunRequested: { name: 'sandbox_run', ends: { SandboxReady: 'ok', SandboxRunFailed: 'error' } },
  SandboxStopRequested: { name: 'sandbox_stop', ends: { SandboxStopped: 'ok' } },
  SandboxRemoveRequested: { name: 'sandbox_remove', ends: { SandboxRemoved: 'ok' } },
  ContainerCreateRequested: { name: 'container_create', ends: { ContainerCreated: 'ok', ContainerCreateFailed: 'error' } },
  ContainerStartRequested: { name: 'container_start', ends: { ContainerStarted: 'ok', ContainerStartFailed: 'error' } },
  ContainerStopRequested: { name: 'container_stop', ends: { ContainerExited: 'ok', ContainerExitObserved: 'ok' } },
  ContainerRemoveRequested: { name: 'container_remove', ends: { ContainerRemoved: 'ok' } },
  ImagePullRequested: { name: 'image_pull', ends: { ImagePullCompleted: 'ok', ImagePullFailed: 'error' } },
};

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const seconds = (fromNs: bigint, toNs: bigint) => Number(toNs - fromNs) / 1e9;

export class EventLogMetrics {
  private readonly stage: PositionalHistogram<readonly ['kind', 'stage']>;
  private readonly operation: PositionalHistogram<readonly ['operation', 'outcome']>;
  private readonly pullBytes: PositionalCounter;
  private readonly pullLayers: PositionalCounter<readonly ['reused']>;
  private readonly commit: PositionalHistogram;
  private readonly lastTs = new Map<string, bigint>();
  private readonly openOps = new Map<string, { type: DomainEventType; ts: bigint }>();
  private lastAppendStart = -1n;
  private subscription?: Subscription;

  constructor(registry: MetricsRegistry) {
    this.stage = new PositionalHistogram({
      name: 'crisp_stage_duration_seconds', help: 'Duration of each step of a sandbox, container or pull operation, from the event log.',
      labelNames: ['kind', 'stage'], buckets: SECONDS, registry,
    });
    this.operation = new PositionalHistogram({
      name: 'crisp_operation_duration_seconds', help: 'Time from an operation\'s request fact to the fact that ends it, from the event log.',
      labelNames: ['operation', 'outcome'], buckets: SECONDS, registry,
    });
    this.pullBytes = new PositionalCounter({ name: 'crisp_image_pull_bytes_total', help: 'Layer bytes downloaded by image pulls (reused layers not counted).', labelNames: [], registry });
    this.pullLayers = new PositionalCounter({ name: 'crisp_image_pull_layers_total', help: 'Layers stored by image pulls, by whether the layer was already present.', labelNames: ['reused'], registry });
    this.commit = new PositionalHistogram({
      name: 'crisp_event_log_append_duration_seconds', help: 'From the start of an append to its subscribers being told of it (transaction and live state).',
      labelNames: [], buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25], registry,
    });
  }

  attach(store: EventStore): void {
    this.subscription ??= store.committed$.subscribe((e) => this.observe(e, store));
  }

  detach(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  /** Records what one committed event says; public so it can be fed a recorded log. */
  observe(e: StoredEvent, store?: Pick<EventStore, 'stream'>): void {
    const type = e.event.type;
    // Every event of one append shares its start: time the append once.
    const appendStart = e.appendStartNs ?? e.ts;
    if (appendStart !== this.lastAppendStart) {
      this.lastAppendStart = appendStart;
      if (store) this.commit.observe(Math.max(0, seconds(appendStart, nowNs())));
    }
    const previous = this.lastTs.get(e.streamId);
    const stage = STAGES[type];
    if (stage && previous !== undefined) this.stage.observe(seconds(previous, e.ts), e.kind, stage);
    if (OPERATIONS[type]) this.openOps.set(e.streamId, { type, ts: e.ts });
    const open = this.openOps.get(e.streamId);
    const outcome = open && OPERATIONS[open.type]!.ends[type];
    if (open && outcome) {
      this.operation.observe(seconds(open.ts, e.ts), OPERATIONS[open.type]!.name, outcome);
      this.openOps.delete(e.streamId);
    }
    if (e.event.type === 'ImageLayerStored') {
      this.pullLayers.inc(1, String(e.event.reused));
      if (!e.event.reused) this.pullBytes.inc(e.event.size);
    }
    if (store && !store.stream(e.streamId)) {
      this.lastTs.delete(e.streamId);
      this.openOps.delete(e.streamId);
    } else {
      this.lastTs.set(e.streamId, e.ts);
    }
  }
}
