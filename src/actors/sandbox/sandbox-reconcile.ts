// Start-up's look at a pod the log says holds namespaces and mounts: what vanished while crisp
// was down (a reboot, an operator's umount) is recorded, so the pod reads as it really is.
import { resolve } from 'node:path';
import type { EventStore } from '../../events/store.js';
import type { Logger } from '../../log.js';
import { pinnedBy } from '../network/namespaces.js';
import type { PodNamespaceKind } from '../../machines/pod-rules.js';
import { sandboxState } from './sandbox-streams.js';
import { appendIfAccepted } from '../../events/append-if-accepted.js';
import type { MountEntry } from '../../host/mountinfo.js';

/**
 * Start-up's check of what the log says a pod holds: a ready pod whose pinned namespaces are
 * gone (the node rebooted, someone unmounted them) is not ready; a shm or infra rootfs mount
 * that is missing is recorded as found.
 */
export async function reconcileSandbox(store: EventStore, id: string, logger: Logger, mounted: Map<string, MountEntry>): Promise<void> {
  const state = sandboxState(store, id);
  if (!state) return;
  if (state.value === 'ready') {
    for (const [kind, path] of Object.entries(state.context.namespaces) as [PodNamespaceKind, string | undefined][]) {
      if (!path || pinnedBy(mounted.get(resolve(path)), kind)) continue;
      const reason = `the pinned ${kind} namespace ${path} is gone (node rebooted?)`;
      logger.warn({ sandbox: id, path }, 'pod namespace vanished; the pod is not ready');
      appendIfAccepted(store, 'sandbox', id, { type: 'SandboxNotReadyObserved', reason });
      break;
    }
  }
  const mounts: [string, string | null][] = [['shm', state.context.shmPath], ['infra rootfs', state.context.infraRootfs]];
  for (const [what, path] of mounts) {
    if (!path || mounted.has(resolve(path))) continue;
    logger.warn({ sandbox: id, what, path }, 'a pod mount the log holds is not mounted');
    appendIfAccepted(store, 'sandbox', id, { type: 'SandboxMountMissingObserved', path, what });
  }
}
