// What a streaming RPC asks for, validated where it is made: the container must exist and
// run, at least one stream must be wanted, and a TTY merges stderr into stdout so the two
// cannot both be asked for. The validated request is what a token redeems.
import type { EventStore } from '../events/store.js';
import { findContainer } from '../actors/container/container-view.js';
import { sandboxState } from '../actors/sandbox/sandbox-streams.js';
import { resolveStreamId } from '../actors/stream-lookup.js';
import { failedPrecondition, invalidArgument, notFound } from '../errors.js';
import { rejectNul } from '../machines/request-bounds.js';

export interface StdioWanted {
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface ExecSpec extends StdioWanted {
  kind: 'exec';
  containerId: string;
  cmd: string[];
}

export interface AttachSpec extends StdioWanted {
  kind: 'attach';
  containerId: string;
  /** Whether the container itself runs on a terminal (its config's tty). */
  containerTty: boolean;
}

export interface PortForwardSpec {
  kind: 'portforward';
  sandboxId: string;
  /** The pod's pinned network namespace; null for host-network pods. */
  netns: string | null;
  /** Ports named in the RPC; empty means any port the client names. */
  ports: number[];
}

export type StreamSpec = ExecSpec | AttachSpec | PortForwardSpec;

function checkStdio(r: StdioWanted): void {
  if (!r.stdin && !r.stdout && !r.stderr) throw invalidArgument('stdin, stdout, stderr: one of them must be true');
  if (r.tty && r.stderr) throw invalidArgument('tty and stderr: a TTY merges stderr into stdout; stderr must be false when tty is true');
}

function runningContainer(store: EventStore, containerId: string): [string, boolean] {
  const found = findContainer(store, containerId);
  if (!found) throw notFound(`container_id: container ${containerId} not found`);
  const [id, state] = found;
  if (state.value !== 'running') throw failedPrecondition(`container_id: container ${id} is ${state.value}, not running`);
  return [id, Boolean(state.context.config?.tty)];
}

export function execSpec(
  store: EventStore,
  r: { container_id: string; cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean },
): ExecSpec {
  if (r.cmd.length === 0) throw invalidArgument('cmd: required');
  rejectNul(r.cmd, 'cmd');
  if (r.cmd[0] === '') throw invalidArgument('cmd[0]: the program must not be empty');
  checkStdio(r);
  const [containerId] = runningContainer(store, r.container_id);
  return { kind: 'exec', containerId, cmd: [...r.cmd], tty: r.tty, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr };
}

export function attachSpec(
  store: EventStore,
  r: { container_id: string; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean },
): AttachSpec {
  checkStdio(r);
  const [containerId, containerTty] = runningContainer(store, r.container_id);
  return { kind: 'attach', containerId, containerTty, tty: r.tty, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr };
}

export function portForwardSpec(store: EventStore, r: { pod_sandbox_id: string; port: number[] }): PortForwardSpec {
  r.port.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalidArgument(`port[${i}]: ${p} is not a TCP port (1-65535)`);
  });
  const id = resolveStreamId(store, 'sandbox', r.pod_sandbox_id, 'pod_sandbox_id');
  const state = id ? sandboxState(store, id) : undefined;
  if (!id || !state) throw notFound(`pod_sandbox_id: pod sandbox ${r.pod_sandbox_id} not found`);
  if (state.value !== 'ready') throw failedPrecondition(`pod_sandbox_id: pod sandbox ${id} is ${state.value}, not ready`);
  return { kind: 'portforward', sandboxId: id, netns: state.context.namespaces.net ?? null, ports: [...new Set(r.port)] };
}
