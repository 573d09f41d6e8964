import { assign, setup } from 'xstate';
import type { RuntimeEvent } from './events.js';

export interface RuntimeContext {
  id: string;
  podCidr: string;
  daemonPid: number | null;
  version: string;
  /** The boot the last NodeRebootDetected named (null until one is recorded). */
  bootId: string | null;
  /** How many leaked things start-up reconcile has released, over the node's life. */
  leaksReclaimed: number;
  /** How many layers and blobs content collection has deleted, over the node's life. */
  contentCollected: number;
}

/** The daemon's own stream: settings kubelet pushes and the daemon's starts and stops. */
export const runtimeMachine = setup({
  types: {
    context: {} as RuntimeContext,
    events: {} as RuntimeEvent,
    input: {} as { id: string },
  },
}).createMachine({
  id: 'runtime',
  initial: 'stopped',
  context: ({ input }) => ({ id: input.id, podCidr: '', daemonPid: null, version: '', bootId: null, leaksReclaimed: 0, contentCollected: 0 }),
  on: {
    RuntimeConfigUpdated: { actions: assign(({ event }) => ({ podCidr: event.podCidr })) },
    NodeRebootDetected: { actions: assign(({ event }) => ({ bootId: event.bootId })) },
    LeakReclaimed: { actions: assign(({ context }) => ({ leaksReclaimed: context.leaksReclaimed + 1 })) },
    ContentCollected: { actions: assign(({ context, event }) => ({ contentCollected: context.contentCollected + event.layers.length + event.blobs.length })) },
  },
  states: {
    stopped: {
      on: { DaemonStarted: { target: 'running', actions: assign(({ event }) => ({ daemonPid: event.pid, version: event.version })) } },
    },
    running: {
      on: {
        // A daemon killed without a chance to say so is followed by the next one's start.
        DaemonStarted: { actions: assign(({ event }) => ({ daemonPid: event.pid, version: event.version })) },
        DaemonStopped: { target: 'stopped', actions: assign({ daemonPid: null }) },
      },
    },
  },
});

export const RUNTIME_STREAM_ID = 'runtime';
