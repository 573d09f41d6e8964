// GetContainerEvents: the container lifecycle facts of the event log, as kubelet's evented
// PLEG reads them. One subscription to the log's committed stream feeds every RPC subscriber
// through its own bounded queue: the log's subscribers are called synchronously inside
// append, so a subscriber that cannot keep up loses events (counted and logged) instead of
// ever slowing down or blocking the runtime.
import type { Subscription } from '../../rx.js';
import type { EventStore, StoredEvent } from '../../events/store.js';
import { stateOf, type EntityState } from '../../machines/index.js';
import { criState as containerCriState, liveContainers, toCriStatus } from '../container/container-view.js';
import { sandboxState } from '../sandbox/sandbox-streams.js';
import { toPodSandboxStatus } from '../sandbox/sandbox-view.js';
import type { ContainerEventResponse } from '../../cri/proto/gen/runtime/v1/ContainerEventResponse.js';
import type { ContainerEventType } from '../../cri/proto/gen/runtime/v1/ContainerEventType.js';
import type { DomainEventType } from '../../machines/events.js';
import { silentLogger, type Logger } from '../../log.js';

const DEFAULT_SUBSCRIBER_BUFFER = 1000;

const EVENT_TYPES: Partial<Record<DomainEventType, ContainerEventType>> = {
  ContainerCreated: 'CONTAINER_CREATED_EVENT',
  ContainerStarted: 'CONTAINER_STARTED_EVENT',
  ContainerExited: 'CONTAINER_STOPPED_EVENT',
  ContainerExitObserved: 'CONTAINER_STOPPED_EVENT',
  ContainerStartFailed: 'CONTAINER_STOPPED_EVENT',
  ContainerRemoved: 'CONTAINER_DELETED_EVENT',
};

/** One RPC subscriber: a bounded queue and a way to wait for the next event. */
export class ContainerEventSubscriber {
  private readonly queue: ContainerEventResponse[] = [];
  private wake: (() => void) | undefined;
  dropped = 0;
  closed = false;

  constructor(readonly capacity: number, private readonly onDrop: (sub: ContainerEventSubscriber) => void) {}

  push(event: ContainerEventResponse): void {
    if (this.closed) return;
    if (this.queue.length >= this.capacity) {
      this.dropped++;
      this.onDrop(this);
      return;
    }
    this.queue.push(event);
    this.wake?.();
  }

  /** The next event, or undefined once the subscriber is closed or the signal aborts. */
  async next(signal: AbortSignal): Promise<ContainerEventResponse | undefined> {
    for (;;) {
      const head = this.queue.shift();
      if (head) return head;
      if (this.closed || signal.aborted) return undefined;
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  get pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }
}

export class ContainerEventHub {
  private readonly subscribers = new Set<ContainerEventSubscriber>();
  private subscription: Subscription | undefined;
  /** Containers kubelet has been told were created, so a failed create never reports DELETED. */
  private readonly announced = new Set<string>();
  private readonly logger: Logger;
  private readonly dropLogs = new Map<ContainerEventSubscriber, NodeJS.Timeout>();

  constructor(private readonly store: EventStore, o: { logger?: Logger } = {}) {
    this.logger = o.logger ?? silentLogger;
  }

  start(): void {
    if (this.subscription) return;
    for (const [id, state] of liveContainers(this.store)) if (state.context.runtimeCreated || containerCriState(state.value)) this.announced.add(id);
    this.subscription = this.store.committed$.subscribe((e) => this.onCommitted(e));
  }

  subscribe(capacity = DEFAULT_SUBSCRIBER_BUFFER): ContainerEventSubscriber {
    const sub = new ContainerEventSubscriber(capacity, (s) => this.noteDrop(s));
    this.subscribers.add(sub);
    return sub;
  }

  unsubscribe(sub: ContainerEventSubscriber): void {
    sub.close();
    this.subscribers.delete(sub);
    this.flushDropLog(sub);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Ends every subscriber's stream (their RPCs return); new subscribers may still come. */
  closeSubscribers(): void {
    for (const sub of [...this.subscribers]) this.unsubscribe(sub);
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.closeSubscribers();
  }

  private onCommitted(e: StoredEvent): void {
    if (e.kind !== 'container') return;
    const type = EVENT_TYPES[e.event.type];
    if (!type) return;
    if (type === 'CONTAINER_CREATED_EVENT') this.announced.add(e.streamId);
    if (type === 'CONTAINER_DELETED_EVENT' && !this.announced.delete(e.streamId)) return;
    if (this.subscribers.size === 0) return;
    const response = this.describe(e, type);
    if (!response) return;
    for (const sub of this.subscribers) sub.push(response);
  }

  private describe(e: StoredEvent, type: ContainerEventType): ContainerEventResponse | undefined {
    const sandboxId = e.event.type === 'ContainerRemoved' ? this.removedSandboxOf(e) : this.liveContainer(e.streamId)?.context.sandboxId;
    if (sandboxId === undefined) return undefined;
    const sandbox = sandboxState(this.store, sandboxId);
    const statuses = liveContainers(this.store)
      .filter(([, s]) => s.context.sandboxId === sandboxId && containerCriState(s.value))
      .map(([id, s]) => toCriStatus(id, s));
    return {
      container_id: e.streamId,
      container_event_type: type,
      created_at: String(e.ts),
      pod_sandbox_status: sandbox?.context.config ? toPodSandboxStatus(sandboxId, sandbox) : null,
      containers_statuses: statuses,
    };
  }

  private liveContainer(id: string): EntityState<'container'> | undefined {
    const live = this.store.stream(id);
    return live ? stateOf('container', live.snapshot) : undefined;
  }

  // A removed stream has left the live set; its pod is in its first event.
  private removedSandboxOf(e: StoredEvent): string | undefined {
    const first = this.store.readStream(e.streamId)[0]?.event;
    return first?.type === 'ContainerCreateRequested' ? first.sandboxId : undefined;
  }

  // One warning per second per subscriber at most, with the count, rather than one per event.
  private noteDrop(sub: ContainerEventSubscriber): void {
    if (this.dropLogs.has(sub)) return;
    this.dropLogs.set(sub, setTimeout(() => this.flushDropLog(sub), 1000).unref());
  }

  private flushDropLog(sub: ContainerEventSubscriber): void {
    const timer = this.dropLogs.get(sub);
    if (!timer) return;
    clearTimeout(timer);
    this.dropLogs.delete(sub);
    this.logger.warn({ dropped: sub.dropped, capacity: sub.capacity }, 'a GetContainerEvents subscriber is not keeping up: events dropped');
  }
}
