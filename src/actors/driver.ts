// How side effects meet the event log. An actor is a planner: given a stream's current state it
// names the one next effect that state calls for (pin the namespaces, mount the rootfs, release
// the network...), or nothing when the state is settled. The driver runs that effect, appends
// the fact it reports, and the new state is planned again, until nothing is left to do.
//
// Because the next step is read from the state and never from "the event that just happened",
// recovery is not a separate code path: after a crash, start-up calls driveAll() and every
// stream continues (or unwinds) from exactly where its log says it stopped (DESIGN.md rule 2,5).
// Effects must therefore be idempotent: a step may run again if the process died after the
// effect but before its fact was committed.
import { filter, type Subscription } from '../rx.js';
import type { EventStore, Folded } from '../events/store.js';
import type { DomainEvent, EventsByKind, StreamKind } from '../machines/events.js';
import { accepts, next, stateOf, type EntityState, type Snapshot } from '../machines/index.js';
import { isCrispError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { crashPoint } from '../crash-points.js';
import { nowNs } from '../events/clock.js';
import { within } from './recovery.js';

export interface Step<K extends StreamKind> {
  /** A short name, recorded in failure events and logs ("cni-add", "rootfs-mount"). */
  name: string;
  /** Performs the effect and returns the facts to record. */
  run(signal: AbortSignal): Promise<EventsByKind[K][]>;
  /** The facts to record when run() throws; without it the error is logged and retried on the next kick. */
  failed?(err: unknown): EventsByKind[K][];
  /**
   * The step has no effect on the node: it only concludes from the state (a pod is ready once its
   * last resource is recorded). The driver then records its facts in the same append as the facts
   * of the step before it, saving a transaction, as if it had run right after.
   */
  pure?: true;
  /**
   * Its effect can be done again after a crash with no harm (a mount found in place, a file
   * written again). When one such step follows another, the driver runs it before recording
   * the first one's facts and records both in one append: a crash in between loses both facts,
   * and both effects are simply done again. A failure is recorded with the facts before it.
   */
  redoable?: true;
}

export type Planner<K extends StreamKind> = (id: string, state: EntityState<K>) => Step<K> | null;

interface Drive {
  running: Promise<void>;
  again: boolean;
}

// A release step that fails (an unmount that is busy, a runc delete that times out) used to wait
// for kubelet's next call to be kicked again; Remove* now answer before the release, so the
// driver retries by itself, backing off from 1 s to 1 min.
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 60_000;

export class StreamDriver<K extends StreamKind> {
  private readonly drives = new Map<string, Drive>();
  private readonly retries = new Map<string, { timer: NodeJS.Timeout; delayMs: number }>();
  private subscription: Subscription | undefined;
  private readonly controller = new AbortController();

  constructor(
    private readonly store: EventStore,
    private readonly kind: K,
    private readonly plan: Planner<K>,
    private readonly logger: Logger,
  ) {}

  /** Starts reacting to committed events of this kind. */
  start(): void {
    this.subscription = this.store.committed$
      .pipe(filter((e) => e.kind === this.kind))
      .subscribe((e) => this.kick(e.streamId));
  }

  /**
   * Drives every live stream of this kind: what start-up recovery calls. With `boundMs`, it
   * resolves once each stream is idle or has been driven that long, returning the ids still busy
   * (they go on in the background); without, it waits for all.
   */
  async driveAll(boundMs?: number): Promise<string[]> {
    const ids = this.store.liveStreams(this.kind).map(([id]) => id);
    for (const id of ids) this.kick(id);
    if (boundMs === undefined) {
      await this.idleAll();
      return [];
    }
    const busy = await Promise.all(ids.map(async (id) => ((await within(this.idle(id), boundMs)) ? null : id)));
    return busy.filter((id): id is string => id !== null);
  }

  /** Plans the stream again: now if it is idle, after the current step if one is running. */
  kick(id: string): void {
    const current = this.drives.get(id);
    if (current) {
      current.again = true;
      return;
    }
    const drive: Drive = { running: Promise.resolve(), again: false };
    this.drives.set(id, drive);
    // Deferred so a kick from inside an append (a subscriber) never re-enters the store.
    drive.running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.loop(id, drive))
      .finally(() => {
        this.drives.delete(id);
        // A kick that landed after the loop's last look at the state must not be lost.
        if (drive.again) this.kick(id);
      });
  }

  /** Resolves once the stream has nothing left to do (for tests and shutdown). */
  async idle(id: string): Promise<void> {
    while (this.drives.has(id)) await this.drives.get(id)!.running;
  }

  async idleAll(): Promise<void> {
    while (this.drives.size) await Promise.all([...this.drives.values()].map((d) => d.running));
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.controller.abort();
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
  }

  /** Kicks the stream again after a back-off; a step that succeeds resets it. */
  private retryLater(id: string): void {
    const previous = this.retries.get(id);
    if (previous) clearTimeout(previous.timer);
    const delayMs = previous ? Math.min(RETRY_MAX_MS, previous.delayMs * 2) : RETRY_FIRST_MS;
    const timer = setTimeout(() => {
      if (this.retries.get(id)?.timer === timer) this.kick(id);
    }, delayMs);
    timer.unref();
    this.retries.set(id, { timer, delayMs });
  }

  private retried(id: string): void {
    const r = this.retries.get(id);
    if (!r) return;
    clearTimeout(r.timer);
    this.retries.delete(id);
  }

  /**
   * `facts`, followed by those of the steps the state after them calls for and that may join
   * the same append, as long as each fact is accepted: a pure step always, a redoable one when
   * every step so far was redoable too. The state after an effect is planned here rather than
   * after a commit of its own.
   */
  private async withFollowingSteps(
    id: string,
    facts: EventsByKind[K][],
    redoable: boolean,
  ): Promise<{ events: EventsByKind[K][]; folded?: Folded; at?: (bigint | undefined)[] }> {
    const live = this.store.stream(id);
    if (!live) return { events: facts };
    const first = this.fold(live.snapshot, facts);
    if (!first) return { events: facts }; // the append will say why
    let snapshot = first;
    const out = [...facts];
    // When each fact happened, once a redoable step has joined: a held-back fact keeps its own time.
    let at: (bigint | undefined)[] | undefined;
    // The first step's time, needed only if a redoable step can join it.
    let doneAt = redoable ? nowNs() : 0n;
    // What was joined so far; the store need not fold it again if the stream has not moved meanwhile.
    const joined = () => ({ events: out, folded: { from: live.snapshot, to: snapshot }, ...(at && { at }) });
    // A few at most: a step's facts move the state on, so the same step is not planned again.
    for (let steps = 0; steps < 4; steps++) {
      const step = this.plan(id, stateOf(this.kind, snapshot));
      if (!step || !(step.pure || (redoable && step.redoable))) break;
      crashPoint(`${this.kind}:${step.name}:before`);
      let more: EventsByKind[K][];
      try {
        more = await step.run(this.controller.signal);
      } catch (err) {
        if (step.pure) throw err;
        // Without a failure to record, the facts so far are committed and the step runs again
        // on its own, where its error is logged and retried.
        if (!step.failed) break;
        this.logger.warn({ [this.kind]: id, step: step.name, error: messageOf(err) }, 'step failed');
        more = step.failed(err);
        redoable = false;
      }
      crashPoint(`${this.kind}:${step.name}:after`);
      const after = this.fold(snapshot, more);
      if (!after) return joined();
      if (more.length === 0) break;
      // A pure step concludes at once: its facts take the time of the facts before them.
      if (!step.pure) {
        at ??= out.map(() => doneAt);
        doneAt = nowNs();
      }
      at?.push(...more.map(() => doneAt));
      snapshot = after;
      out.push(...more);
    }
    return joined();
  }

  /** The state after `facts`, or undefined when the machine refuses one of them. */
  private fold(from: Snapshot, facts: EventsByKind[K][]): Snapshot | undefined {
    let snapshot = from;
    for (const fact of facts) {
      if (!accepts(snapshot, fact as DomainEvent)) return undefined;
      snapshot = next(this.kind, snapshot, fact as DomainEvent);
    }
    return snapshot;
  }

  private async loop(id: string, drive: Drive): Promise<void> {
    for (;;) {
      drive.again = false;
      const live = this.store.stream(id);
      if (!live || this.controller.signal.aborted) return;
      const step = this.plan(id, stateOf(this.kind, live.snapshot));
      if (!step) {
        if (drive.again) continue;
        return;
      }
      // Most steps log nothing at the default level: the child logger is made when one does.
      let child: Logger | undefined;
      const log = () => (child ??= this.logger.child({ [this.kind]: id, step: step.name }));
      let facts: EventsByKind[K][];
      let succeeded = false;
      const started = process.hrtime.bigint();
      crashPoint(`${this.kind}:${step.name}:before`);
      try {
        facts = await step.run(this.controller.signal);
        crashPoint(`${this.kind}:${step.name}:after`);
        succeeded = true;
        if (this.logger.isLevelEnabled('debug')) log().debug({ ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'step done');
      } catch (err) {
        if (!step.failed) {
          log().error({ err }, 'step failed; it will be retried');
          if (!this.controller.signal.aborted) this.retryLater(id);
          return;
        }
        log().warn({ error: messageOf(err) }, 'step failed');
        facts = step.failed(err);
      }
      if (facts.length === 0) {
        if (drive.again) continue;
        log().error('step reported no fact; stopping so it cannot spin');
        return;
      }
      this.retried(id);
      const { events, folded, at } = await this.withFollowingSteps(id, facts, succeeded && step.redoable === true);
      try {
        const current = this.store.stream(id);
        this.store.append({
          kind: this.kind, streamId: id, expectedVersion: current?.version ?? 0, events: events as DomainEvent[], ...(folded && { folded }), ...(at && { at }),
        });
      } catch (err) {
        // Someone else moved the stream (a stop arrived mid-create, say): plan from the new state.
        if (isCrispError(err, 'FailedPrecondition') || isCrispError(err, 'Conflict')) {
          log().info({ error: messageOf(err) }, 'state moved under the step; planning again');
          continue;
        }
        throw err;
      }
    }
  }
}

/**
 * Waits until a stream's state satisfies `settled`, checking the current state first and then
 * after every committed event of that stream. Resolves with the state, or with null if the
 * stream ended (removed) first.
 */
export function waitForState<K extends StreamKind>(
  store: EventStore,
  kind: K,
  id: string,
  settled: (state: EntityState<K>) => boolean,
  signal?: AbortSignal,
): Promise<EntityState<K> | null> {
  return new Promise((resolve, reject) => {
    let stop: (() => void) | undefined;
    const finish = (value: EntityState<K> | null) => {
      stop?.();
      signal?.removeEventListener('abort', onAbort);
      resolve(value);
    };
    const onAbort = () => {
      stop?.();
      reject(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
    };
    const check = () => {
      const live = store.stream(id);
      if (!live) return finish(null), true;
      const state = stateOf(kind, live.snapshot);
      if (settled(state)) return finish(state), true;
      return false;
    };
    if (check()) return;
    signal?.addEventListener('abort', onAbort, { once: true });
    stop = store.onStream(id, () => void check());
  });
}
