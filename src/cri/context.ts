import type { CrispConfig } from '../config/schema.js';
import type { EventStore } from '../events/store.js';
import type { Logger } from '../log.js';
import type { Readiness } from './wrap.js';
import type { BlobStore } from '../actors/storage/blob-store.js';
import type { LayerStore } from '../actors/storage/layer-store.js';
import type { HandlerTable } from './server.js';
import type { ContainerRuntime } from '../actors/monitor/container-runtime.js';
import type { HostFacts } from '../actors/spec/input.js';
import type { Images } from '../actors/image-pull/service.js';
import type { RuntimeHandlers } from '../actors/monitor/runtime-handlers.js';
import type { WritableLayerCache } from '../actors/storage/writable-layer-cache.js';
import type { CniRunner } from '../actors/network/cni.js';

/** What every service is built with: configuration, the event log, the shared stores. */
export interface CriContext {
  config: CrispConfig;
  store: EventStore;
  logger: Logger;
  readiness: Readiness;
  version: string;
  /** Content-addressed blobs under <root>/blobs (manifests, configs, layer archives). */
  blobs: BlobStore;
  /** Unpacked layers under <root>/layers; one instance, since it owns the unpack threads. */
  layers: LayerStore;
  /** Pulls and image removal; one instance, so concurrent pulls of a reference share one. */
  images: Images;
  /**
   * runc under conmon, over the one set of runroot directories: containers, pause containers,
   * exec and the start-up sweep all see the same runc state and conmon records.
   */
  runtime: ContainerRuntime;
  /** The RuntimeClass handlers and what each supports on this host, probed at start-up. */
  handlers: RuntimeHandlers;
  /** Walks of containers' writable layers, cached: container stats and ImageFsInfo read the same figures. */
  writableLayers: WritableLayerCache;
  /** The pod network: one CNI runner, so pods, the leak sweep and Status's NetworkReady see the same config and plugins. */
  network: CniRunner;
  /** What this host allows (capabilities, cgroup version, seccomp profile), read once. */
  hostFacts(): Promise<HostFacts>;
}

/**
 * A slice of the runtime (images, sandboxes, containers): its RPC handlers, the recovery it
 * needs before the server may answer, and what to close on shutdown. Services talk to each
 * other only through the event log (append a request to another stream, wait for its state).
 */
export interface Service {
  name: string;
  runtime?: HandlerTable;
  image?: HandlerTable;
  /** Start-up: reconcile with the node and finish or undo what was in flight. */
  recover?(): Promise<void>;
  close?(): Promise<void>;
}

export type ServiceFactory = (ctx: CriContext) => Service;
