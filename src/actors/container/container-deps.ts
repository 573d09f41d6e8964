// What the container planner, the exit watcher and the container RPCs share: the daemon's
// stores and settings they read, the one ContainerRuntime (it holds conmon's lifelines) and the
// stream driver. Named here, so the actor imports nothing of src/cri (which hands it its context).
import type { StreamDriver } from '../driver.js';
import type { EventStore } from '../../events/store.js';
import type { Logger } from '../../log.js';
import type { CrispConfig } from '../../config/schema.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { LayerStore } from '../storage/layer-store.js';
import type { RuntimeHandlers } from '../monitor/runtime-handlers.js';
import type { HostFacts } from '../spec/input.js';
import type { ContainerRuntime } from '../monitor/container-runtime.js';

/** The part of the daemon's context containers use. */
interface ContainerActorContext {
  config: Pick<CrispConfig, 'root' | 'runroot' | 'recoveryItemTimeoutMs'>;
  store: EventStore;
  logger: Logger;
  blobs: BlobStore;
  layers: LayerStore;
  handlers: RuntimeHandlers;
}

/** What the planner needs: everything but the driver that runs it. */
export interface ContainerPlanDeps {
  ctx: ContainerActorContext;
  runtime: ContainerRuntime;
  /** Read once per daemon: capabilities, cgroup version, devices, the default seccomp profile. */
  hostFacts(): Promise<HostFacts>;
}

export interface ContainerDeps extends ContainerPlanDeps {
  driver: StreamDriver<'container'>;
}
