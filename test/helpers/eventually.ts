// RemoveContainer and RemovePodSandbox answer once the removal is recorded; the release (runc
// delete, unmounts, directories) finishes right after. Audits of what is left wait for it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { call } from './cri-client.js';

/** Runs `check` until it stops throwing, or throws its last error after `ms`. */
export async function eventually(check: () => void | Promise<void>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

/** RemoveContainer, then waits until the daemon has released the container (its directory is gone). */
export async function removeContainerReleased(daemon: { root: string; clients: import('./cri-client.js').CriClients }, id: string): Promise<void> {
  const rt = daemon.clients.runtime;
  await call(rt, rt.RemoveContainer, { container_id: id }, 60_000);
  await eventually(() => assert.equal(existsSync(join(daemon.root, 'containers', id)), false, `container ${id} is released`));
}
