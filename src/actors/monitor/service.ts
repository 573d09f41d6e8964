// The container slice of the CRI: the runtime (conmon + runc), the planner that drives each
// container stream, the exit watches, and the container RPCs.
import type { ServiceFactory } from '../../cri/context.js';
import { StreamDriver } from '../driver.js';
import { containerPlanner } from './container-planner.js';
import { ExitWatcher } from './exit-watcher.js';
import type { ContainerDeps } from './container-deps.js';
import { createContainer } from '../../cri/create-container.js';
import { startContainer } from '../../cri/start-container.js';
import { stopContainer } from '../../cri/stop-container.js';
import { removeContainer } from '../../cri/remove-container.js';
import { containerStatus } from '../../cri/container-status.js';
import { listContainers } from '../../cri/list-containers.js';
import { streamContainers } from '../../cri/stream-containers.js';
import { execSync } from '../../cri/exec-sync.js';
import { reopenContainerLog } from '../../cri/reopen-container-log.js';
import { updateContainerResources } from '../../cri/update-container-resources.js';

const CLOSE_WAIT_MS = 5_000;

export const containerService: ServiceFactory = (ctx) => {
  const deps: ContainerDeps = {
    ctx,
    runtime: ctx.runtime,
    driver: undefined as unknown as StreamDriver<'container'>,
    hostFacts: ctx.hostFacts,
  };
  deps.driver = new StreamDriver(ctx.store, 'container', containerPlanner(deps), ctx.logger.child({ service: 'containers' }));
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
