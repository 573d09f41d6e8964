// The one place that knows which machine folds which stream kind. Everything here is pure:
// state + event → next state (DESIGN.md rule 2), through xstate's initialTransition/transition.
import { createActor, initialTransition, type AnyActorScope, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';
import { sandboxMachine, type SandboxContext, type SandboxStateName } from './sandbox.js';
import { containerMachine, type ContainerContext, type ContainerStateName } from './container.js';
import { imageMachine, type ImageContext, type ImageStateName } from './image.js';
import { runtimeMachine, type RuntimeContext } from './runtime.js';
import { pullMachine, type PullContext, type PullStateName } from './pull.js';
import type { DomainEvent, StreamKind } from './events.js';

interface StateOf {
  sandbox: { value: SandboxStateName; context: SandboxContext };
  container: { value: ContainerStateName; context: ContainerContext };
  image: { value: ImageStateName; context: ImageContext };
  pull: { value: PullStateName; context: PullContext };
  runtime: { value: 'stopped' | 'running'; context: RuntimeContext };
}

/** A stream's state, as the event store keeps it live and `crisp replay` prints it. */
export type EntityState<K extends StreamKind = StreamKind> = StateOf[K];

const MACHINES: Record<StreamKind, AnyStateMachine> = {
  sandbox: sandboxMachine,
  container: containerMachine,
  image: imageMachine,
  pull: pullMachine,
  runtime: runtimeMachine,
};

/** An opaque xstate snapshot; read it through `stateOf`. */
export type Snapshot = AnyMachineSnapshot;


/** Whether the machine in this state accepts the event: illegal facts never reach the log. */
export function accepts(snapshot: Snapshot, event: DomainEvent): boolean {
  return snapshot.status === 'active' && snapshot.can(event);
}

// xstate's pure `transition()` builds a throwaway actor (and its system) on every call, which
// made replay cost ~180 µs an event. Our machines have no invoked or spawned actors and no
// actions but `assign`, so one inert scope per machine, built the way xstate builds its own,
// is safe to reuse: the step is the same pure function of (snapshot, event). A unit test holds
// it equal to xstate's `transition()`.
const scopes = new Map<StreamKind, AnyActorScope>();
function inertScope(kind: StreamKind): AnyActorScope {
  let scope = scopes.get(kind);
  if (!scope) {
    const self = createActor(MACHINES[kind], { input: { id: '' } });
    scope = {
      self, defer: () => {}, id: '', logger: () => {}, sessionId: '', stopChild: () => {},
      system: self.system, emit: () => {}, actionExecutor: () => {},
    } as unknown as AnyActorScope;
    scopes.set(kind, scope);
  }
  return scope;
}

/** A new stream's first state; through the inert scope too (xstate's initialTransition builds an actor per call). */
export function initialSnapshot(kind: StreamKind, id: string): Snapshot {
  return MACHINES[kind].getInitialSnapshot(inertScope(kind), { id }) as Snapshot;
}

/** xstate's own initialTransition, for the test that holds initialSnapshot equal to it. */
export function xstateInitialSnapshot(kind: StreamKind, id: string): Snapshot {
  return initialTransition(MACHINES[kind], { id })[0] as Snapshot;
}

export function next(kind: StreamKind, snapshot: Snapshot, event: DomainEvent): Snapshot {
  return MACHINES[kind].transition(snapshot, event, inertScope(kind)) as Snapshot;
}

export function stateOf<K extends StreamKind>(_kind: K, snapshot: Snapshot): EntityState<K> {
  return { value: snapshot.value, context: snapshot.context } as EntityState<K>;
}

/** The events a state accepts, for error messages that say what would have been legal. */
export function acceptedEventTypes(snapshot: Snapshot): string[] {
  return [...new Set([...snapshot._nodes.flatMap((node) => [...node.ownEvents])])].filter((t) => !t.startsWith('xstate.'));
}

export { sandboxMachine, containerMachine, imageMachine, pullMachine, runtimeMachine };
