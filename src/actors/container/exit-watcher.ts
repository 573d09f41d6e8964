// Every container that holds a conmon has one watch on its exit file; when it fires, the exit
// is recorded as ContainerExited. After a restart the watches are set up again from the log, and
// an exit that happened while crisp was down is recorded as what it is: ContainerExitObserved.
import { filter, type Subscription } from '../../rx.js';
import { waitForState } from '../driver.js';
import { accepts, stateOf } from '../../machines/index.js';
import type { ContainerEvent, ExitFacts } from '../../machines/events.js';
import { isCrispError, messageOf } from '../../errors.js';
import { nowNs } from '../../events/clock.js';
import { containerLayout } from '../monitor/container-layout.js';
import { exitFacts } from './container-exits.js';
import type { ContainerDeps } from './container-deps.js';
import type { OrphanNotice } from '../monitor/container-runtime.js';
import type { ExitInfo } from '../monitor/types.js';
import type { ContainerContext } from '../../machines/container.js';
import { recoverEach } from '../recovery.js';
import { topMounts } from '../../host/mounts.js';
import { resolve } from 'node:path';
import { appendIfAccepted } from '../../events/append-if-accepted.js';

// States in which a conmon runs for the container and its exit is still news.
const MONITORED = new Set(['created', 'starting', 'running', 'stopping', 'unknown']);
const VANISHED_EXIT_CODE = 255;

export class ExitWatcher {
  private readonly watches = new Map<string, AbortController>();
  private subscription: Subscription | undefined;

  constructor(private readonly deps: ContainerDeps) {}

  start(): void {
    this.subscription = this.deps.ctx.store.committed$
      .pipe(filter((e) => e.kind === 'container' && e.event.type === 'ContainerCreated'))
      .subscribe((e) => this.watch(e.streamId));
    this.subscription.add(this.deps.runtime.orphaned$.subscribe((o) => this.markOrphaned(o)));
  }

  /**
   * Start-up: settle exits that happened while crisp was down, watch the rest (re-adopting
   * processes whose conmon is gone), and check the rootfs mounts the log says are there.
   * Containers are looked at in parallel, each within the recovery bound.
   */
  async recover(): Promise<string[]> {
    const { store, config, logger } = this.deps.ctx;
    const ids = store.liveStreams('container').map(([id]) => id);
    const mounted = await topMounts();
    return recoverEach(ids, { itemTimeoutMs: config.recoveryItemTimeoutMs, logger, what: 'container' }, (id) => this.recoverOne(id, mounted));
  }

  private recoverOne = async (id: string, mounted: Map<string, unknown>): Promise<void> => {
    const live = this.deps.ctx.store.stream(id);
    if (!live) return;
    const state = stateOf('container', live.snapshot);
    this.checkRootfs(id, state.context, mounted);
    if (!MONITORED.has(state.value) || !state.context.runtimeCreated) return;
    const check = await this.deps.runtime.inspect(id);
    const terminationLog = containerLayout(this.deps.ctx.config.root, id).terminationLog;
    switch (check.status) {
      case 'exited':
        this.record(id, { type: 'ContainerExitObserved', ...(await exitFacts(check.exit, terminationLog, state.context.startedAt)) });
        return;
      case 'unknown-id':
        this.record(id, { type: 'ContainerExitObserved', ...vanished('its monitor state is gone (was the node rebooted?)') });
        return;
      case 'orphaned':
        await this.deps.runtime.adoptOrphan(id);
        this.watch(id);
        return;
      case 'monitored':
        this.watch(id);
        return;
    }
  };

  /** The log's word that conmon is gone and crisp watches the process (once per loss). */
  private markOrphaned(o: OrphanNotice): void {
    const live = this.deps.ctx.store.stream(o.id);
    if (!live || live.kind !== 'container') return;
    const message = `conmon${o.conmonPid ? ` (pid ${o.conmonPid})` : ''} is gone; crisp watches process ${o.pid} itself, so its exit status will be unknown`;
    if (stateOf('container', live.snapshot).context.monitorLost === message) return;
    const event: ContainerEvent = { type: 'ContainerMonitorLost', conmonPid: o.conmonPid, message };
    if (!accepts(live.snapshot, event)) return;
    this.deps.ctx.store.append({ kind: 'container', streamId: o.id, expectedVersion: live.version, events: [event] });
    this.deps.ctx.logger.warn({ container: o.id, pid: o.pid, conmonPid: o.conmonPid }, 'conmon is gone; crisp monitors the container itself');
  }

  /** A rootfs the log holds as mounted but that is not is recorded (before anything relies on it). */
  private checkRootfs(id: string, c: ContainerContext, mounted: Map<string, unknown>): void {
    if (c.rootfs === null || c.rootfsReleased || mounted.has(resolve(c.rootfs))) return;
    const { store, logger } = this.deps.ctx;
    logger.warn({ container: id, path: c.rootfs }, 'the container rootfs the log says is mounted is not');
    appendIfAccepted(store, 'container', id, { type: 'ContainerRootfsMountMissingObserved', path: c.rootfs });
  }

  watch(id: string): void {
    if (this.watches.has(id)) return;
    const controller = new AbortController();
    this.watches.set(id, controller);
    const log = this.deps.ctx.logger.child({ container: id });
    this.follow(id, controller.signal)
      .catch((err: unknown) => {
        if (!controller.signal.aborted) log.error({ err }, 'watching the container for its exit failed');
      })
      .finally(() => {
        if (this.watches.get(id) === controller) this.watches.delete(id);
      });
  }

  private async follow(id: string, signal: AbortSignal): Promise<void> {
    let exit: ExitInfo | undefined;
    let event: ContainerEvent | undefined;
    try {
      exit = await this.deps.runtime.waitExit(id, signal);
    } catch (err) {
      if (signal.aborted) return;
      if (isCrispError(err, 'NotFound')) event = { type: 'ContainerExited', ...vanished('its monitor state is gone') };
      else if (isCrispError(err, 'FailedPrecondition')) event = { type: 'ContainerStateUnknownObserved', reason: messageOf(err) };
      else throw err;
    }
    // A start in flight records ContainerStarted first, so a fast exit still has a start time.
    const settled = await waitForState(this.deps.ctx.store, 'container', id, (s) => s.value !== 'starting' && s.value !== 'creating', signal);
    if (!settled) return;
    if (exit) {
      const state = this.stateOf(id);
      // A stop under way reads this same exit file and records the exit itself: recording it
      // here too would only make the stop step's append fail and its planner start over.
      if (state?.value === 'stopping') return;
      const terminationLog = containerLayout(this.deps.ctx.config.root, id).terminationLog;
      event = { type: 'ContainerExited', ...(await exitFacts(exit, terminationLog, state?.context.startedAt)) };
    }
    this.record(id, event!);
  }

  private stateOf(id: string) {
    const live = this.deps.ctx.store.stream(id);
    return live?.kind === 'container' ? stateOf('container', live.snapshot) : undefined;
  }

  /** Appends the exit if the container still waits for one; `created` only takes an observation. */
  private record(id: string, event: ContainerEvent): void {
    const { store } = this.deps.ctx;
    const live = store.stream(id);
    if (!live) return;
    let fact = event;
    if (!accepts(live.snapshot, fact) && event.type === 'ContainerExited') fact = { ...event, type: 'ContainerExitObserved' };
    if (!accepts(live.snapshot, fact)) return;
    store.append({ kind: 'container', streamId: id, expectedVersion: live.version, events: [fact] });
  }

  stop(): void {
    this.subscription?.unsubscribe();
    for (const controller of this.watches.values()) controller.abort();
    this.watches.clear();
  }
}

function vanished(why: string): ExitFacts {
  return { exitCode: VANISHED_EXIT_CODE, reason: 'Error', message: `the container's exit status is unknown: ${why}`, finishedAt: nowNs().toString() };
}
