// Reboot detection. The runroot is meant to be a tmpfs and the kernel's boot id changes with
// every boot, so a marker holding the boot id under the runroot tells "same boot" from "the node
// rebooted since crisp last ran". After a reboot no container process and no pinned namespace
// survived: every container still waiting for an exit is recorded as exited and every ready pod
// as not ready, once (the marker is rewritten as soon as that is recorded).
import { readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventStore } from '../../events/store.js';
import { stateOf } from '../../machines/index.js';
import { appendIfAccepted } from '../../events/append-if-accepted.js';
import { RUNTIME_STREAM_ID } from '../../machines/runtime.js';
import { nowNs } from '../../events/clock.js';
import type { Logger } from '../../log.js';

export const BOOT_MARKER = 'crisp-boot-id';
const REBOOT_EXIT_CODE = 255;

async function currentBootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
}

async function readMarker(path: string): Promise<string | null> {
  try {
    return (await readFile(path, 'utf8')).trim() || null;
  } catch {
    return null;
  }
}

/**
 * Compares the boot id with the runroot's marker and, after a reboot, records what the reboot
 * did to every live container and pod. `hadHistory` says whether crisp ran on this root before
 * (a missing marker then means the tmpfs was wiped by a reboot). Returns whether it rebooted.
 */
export async function reconcileBoot(o: { runroot: string; store: EventStore; logger: Logger; bootId?: string }): Promise<boolean> {
  const { store, logger } = o;
  const bootId = o.bootId ?? (await currentBootId());
  const marker = join(o.runroot, BOOT_MARKER);
  const previous = await readMarker(marker);
  const ranBefore = store.liveStreams().some(([, live]) => live.kind !== 'runtime') || (store.stream(RUNTIME_STREAM_ID)?.version ?? 0) > 1;
  const rebooted = previous !== null ? previous !== bootId : ranBefore;
  if (rebooted) {
    logger.warn({ bootId, previousBootId: previous }, 'the node rebooted since crisp last ran: containers are exited, pods not ready');
    appendIfAccepted(store, 'runtime', RUNTIME_STREAM_ID, { type: 'NodeRebootDetected', bootId, previousBootId: previous });
    for (const [id, live] of store.liveStreams('container')) {
      const state = stateOf('container', live.snapshot);
      if (!state.context.runtimeCreated) continue;
      appendIfAccepted(store, 'container', id, {
        type: 'ContainerExitObserved', exitCode: REBOOT_EXIT_CODE, reason: 'Error',
        message: 'the node rebooted while the container ran', finishedAt: nowNs().toString(),
      });
    }
    for (const [id] of store.liveStreams('sandbox')) {
      appendIfAccepted(store, 'sandbox', id, { type: 'SandboxNotReadyObserved', reason: 'the node rebooted: its namespaces and processes are gone' });
    }
  }
  // Written atomically, after the facts: a crash before this line records the reboot again, which the machines refuse twice.
  await writeFile(`${marker}.tmp`, `${bootId}\n`, { mode: 0o644 });
  await rename(`${marker}.tmp`, marker);
  return rebooted;
}
