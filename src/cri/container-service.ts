// The container slice of the CRI: the runtime (conmon + runc), the planner that drives each
// container stream, the exit watches, and the container RPCs.
import type { ServiceFactory } from './context.js';
import { StreamDriver } from '../actors/driver.js';
import { containerPlanner } from '../actors/container/container-planner.js';
import { ExitWatcher } from '../actors/container/exit-watcher.js';
import type { ContainerDeps } from '../actors/container/container-deps.js';
import { createContainer } from './create-container.js';
import { startContainer } from './start-container.js';
import { stopContainer } from './stop-container.js';
import { removeContainer } from './remove-container.js';
import { containerStatus } from './container-status.js';
import { listContainers } from './list-containers.js';
import { streamContainers } from './stream-containers.js';
import { execSync } from './exec-sync.js';
import { reopenContainerLog } from './reopen-container-log.js';
import { updateContainerResources } from './update-container-resources.js';

const CLOSE_WAIT_MS = 5_000;

export const containerService: ServiceFactory = (ctx) => {
  const planning = { ctx, runtime: ctx.runtime, hostFacts: ctx.hostFacts };
  const driver = new StreamDriver(ctx.store, 'container', containerPlanner(planning), ctx.logger.child({ service: 'containers' }));
  const deps: ContainerDeps = { ...planning, driver };
  const exits = new ExitWatcher(deps);
  return {
    name: 'containers',
    runtime: {
      CreateContainer: createContainer(deps),
      StartContainer: startContainer(deps),
      StopContainer: stopContainer(deps),
      RemoveContainer: removeContainer(deps),
      ContainerStatus: containerStatus(deps),
      ListContainers: listContainers(deps),
      StreamContainers: streamContainers(deps),
      ExecSync: execSync(deps),
      ReopenContainerLog: reopenContainerLog(deps),
      UpdateContainerResources: updateContainerResources(deps),
    },
    async recover() {
      exits.start();
      deps.driver.start();
      const bound = ctx.config.recoveryItemTimeoutMs;
      const unsettled = await exits.recover();
      const busy = await deps.driver.driveAll(bound);
      if (unsettled.length || busy.length) {
        ctx.logger.warn({ unsettled, busy, boundMs: bound }, 'containers still recovering in the background; the server opens without them');
      }
    },
    async close() {
      exits.stop();
      deps.driver.stop();
      // A step in flight (a stop waiting out its grace period) is re-driven at the next start.
      await Promise.race([deps.driver.idleAll().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
    },
  };
};
