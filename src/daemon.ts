import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cniRunnerFor } from './actors/network/cni.js';
import type { CrispConfig } from './config/schema.js';
import { EventStore } from './events/store.js';
import { startCriServer, type CriServer, type HandlerTable } from './cri/server.js';
import { Readiness } from './cri/wrap.js';
import type { CriContext, Service, ServiceFactory } from './cri/context.js';
import { BlobStore } from './actors/storage/blob-store.js';
import { ContainerRuntime } from './actors/monitor/container-runtime.js';
import { runtimeDirs } from './actors/monitor/container-layout.js';
import { resolveExecutable } from './actors/monitor/executables.js';
import { readHostFacts } from './actors/spec/index.js';
import type { HostFacts } from './actors/spec/input.js';
import { LayerStore } from './actors/storage/layer-store.js';
import { version } from './cri/version.js';
import { status } from './cri/status.js';
import { runtimeConfig } from './cri/runtime-config.js';
import { updateRuntimeConfig } from './cri/update-runtime-config.js';
import { RUNTIME_STREAM_ID } from './machines/runtime.js';
import { PACKAGE_ROOT } from './paths.js';
import { onSpawnHelperStart, spawnHelper, stopSpawnHelper } from './host/spawn-helper.js';
import { Images } from './actors/image-pull/service.js';
import { imageService } from './cri/image-service.js';
import { sandboxService } from './cri/sandbox-service.js';
import type { Logger } from './log.js';
import { containerService } from './cri/container-service.js';
import { statsService } from './cri/stats-service.js';
import { streamingService } from './cri/streaming-service.js';
import { bootService, leakSweepService } from './cri/reconcile-service.js';
import { CrispMetrics } from './metrics/crisp-metrics.js';
import { startMetricsServer, type MetricsServer } from './metrics/server.js';
import { parseConmonCgroup } from './actors/monitor/conmon-cgroup.js';
import { parseCommandsCgroup, placeInCommandsCgroup, prepareCommandsCgroup } from './actors/monitor/commands-cgroup.js';
import { parseCgroupLayout } from './actors/monitor/cgroups.js';
import { sdNotify } from './host/sd-notify.js';
import { onTmpfs } from './host/mountinfo.js';
import { handlerSpecs, RuntimeHandlers } from './actors/monitor/runtime-handlers.js';
import { WritableLayerCache } from './actors/storage/writable-layer-cache.js';

// kubelet's housekeeping runs every 10 s; a writable layer figure at most that old is what
// cAdvisor gives it too.
const LAYER_REFRESH_MS = 10_000;
import type { Tracing } from './tracing/otel.js';

export const CRISP_VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

export interface Daemon {
  context: CriContext;
  server: CriServer;
  /** Milliseconds from the call to runDaemon until the server answered as ready. */
  startupMs: number;
  stop(): Promise<void>;
}

/** The runtime-wide RPCs; everything else belongs to a service below. */
const runtimeInfo: ServiceFactory = (ctx) => ({
  name: 'runtime',
  runtime: {
    Version: version(ctx),
    Status: status(ctx),
    RuntimeConfig: runtimeConfig(ctx),
    UpdateRuntimeConfig: updateRuntimeConfig(ctx),
  },
});

// Each slice of the CRI, in the order recovery runs: reboot detection first, images before the
// sandboxes and containers whose root filesystems are made of them, the leak sweep last.
const SERVICES: ServiceFactory[] = [runtimeInfo, bootService, imageService, sandboxService, containerService, statsService, streamingService, leakSweepService];

function merge(services: Service[], pick: (s: Service) => HandlerTable | undefined): HandlerTable {
  return Object.assign({}, ...services.map((s) => pick(s) ?? {}));
}

/**
 * Gives the commands crisp runs a cgroup of their own (see commands-cgroup.ts): each spawn helper,
 * and so every command it starts, is moved there as it starts. A cgroupfs that refuses leaves
 * them in the daemon's cgroup, as before, and says why.
 */
function placeCommands(config: CrispConfig, logger: Logger): void {
  const setting = parseCommandsCgroup(config.commandsCgroup);
  let placement;
  try {
    placement = prepareCommandsCgroup(setting, parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8')), readFileSync('/proc/self/cgroup', 'utf8'));
  } catch (err) {
    logger.warn({ err }, 'the commands crisp runs stay in its cgroup: their own could not be made');
    return;
  }
  if (!('dir' in placement)) {
    logger.debug({ why: placement.stays }, 'the commands crisp runs stay in its cgroup');
    return;
  }
  logger.info({ cgroup: placement.dir }, 'the commands crisp runs get their CPU in a cgroup of their own');
  onSpawnHelperStart((pid) => {
    try {
      placeInCommandsCgroup(placement, pid);
    } catch (err) {
      logger.warn({ err, pid, cgroup: placement.dir }, 'the spawn helper stays in the daemon\'s cgroup');
    }
  });
}

/**
 * Start-up order matters: the socket is bound early so clients get UNAVAILABLE rather than
 * "connection refused" while the log is replayed and reconciled, and only then does the
 * readiness gate open.
 */
export async function runDaemon(config: CrispConfig, logger: Logger): Promise<Daemon> {
  const started = process.hrtime.bigint();
  mkdirSync(config.root, { recursive: true, mode: 0o700 });
  mkdirSync(config.runroot, { recursive: true, mode: 0o755 });
  // The runroot is meant to be a tmpfs, as /run is on a node. Elsewhere every pod's runtime files
  // (namespace pins, hostname/hosts/resolv.conf, container records) cost disk inodes, and on an
  // ext4 without a journal each new inode first scans past those deleted in the last minutes.
  if (!onTmpfs(config.runroot)) logger.info({ runroot: config.runroot }, 'the runroot is not on a tmpfs: each pod\'s runtime files cost disk inodes');
  const readiness = new Readiness();
  placeCommands(config, logger);
  // The helper that runs every host command, started now rather than by the first pod.
  spawnHelper();
  const store = EventStore.open(join(config.root, 'state.db'));
  const blobs = new BlobStore(config.root);
  const layers = new LayerStore(config.root, { logger, maxExpansion: config.maxLayerExpansion });
  const specs = handlerSpecs(config);
  // Probed before the socket opens: RunPodSandbox and Status need to know what each handler can do.
  const handlers = await RuntimeHandlers.probe(specs);
  for (const h of handlers.all) {
    if (h.problem) logger.warn({ handler: h.name, problem: h.problem }, 'a runtime handler cannot run pods on this host');
  }
  const runtime = new ContainerRuntime({
    runtimePath: specs[0]!.path,
    runtimes: specs.slice(1),
    conmonPath: resolveExecutable(config.conmonPath, 'conmon_path'),
    ...runtimeDirs(config.runroot),
    logger,
    conmonCgroup: parseConmonCgroup(config.conmonCgroup),
  });
  let hostFacts: Promise<HostFacts> | undefined;
  const context: CriContext = {
    config, store, logger, readiness, version: CRISP_VERSION, blobs, layers, runtime, handlers,
    images: new Images({ config, store, logger, blobs, layers }),
    writableLayers: new WritableLayerCache({ refreshMs: LAYER_REFRESH_MS, logger }),
    network: cniRunnerFor(config, logger.child({ service: 'network' })),
    hostFacts: () => (hostFacts ??= readHostFacts().catch((err: unknown) => {
      hostFacts = undefined;
      throw err;
    })),
  };
  const services = SERVICES.map((make) => make(context));
  // Attached before recovery, so the steps recovery re-drives are timed too.
  const metrics = new CrispMetrics(store);
  metrics.start();
  let metricsServer: MetricsServer | undefined;
  const closeAll = async () => {
    await metricsServer?.close();
    metrics.stop();
    unfollow?.();
    await tracing?.shutdown().catch((err: unknown) => logger.warn({ err }, 'tracing: the last spans could not be sent'));
    for (const service of [...services].reverse()) await service.close?.();
    runtime.close();
    context.writableLayers.close();
    await layers.close();
  };
  // Off by default: then neither calls nor events pay anything for it, and the SDK is not even
  // loaded (it would add ~5 MiB of RSS).
  const tracing: Tracing | undefined = config.enableTracing
    ? new (await import('./tracing/otel.js')).Tracing({ endpoint: config.tracingEndpoint, samplingRatePerMillion: config.tracingSamplingRatePerMillion, serviceVersion: CRISP_VERSION }, logger)
    : undefined;
  const unfollow = tracing?.follow(store);
  let server: CriServer;
  try {
    if (config.enableMetrics) metricsServer = await startMetricsServer(config.metricsAddress, metrics.registry, logger);
    server = await startCriServer({
      socketPath: config.socket,
      logger,
      readiness,
      runtime: merge(services, (s) => s.runtime),
      image: merge(services, (s) => s.image),
      observe: metrics.observeRpc,
      ...(tracing && { tracer: tracing }),
    });
  } catch (err) {
    await closeAll();
    store.close();
    throw err;
  }
  store.append({
    kind: 'runtime',
    streamId: RUNTIME_STREAM_ID,
    expectedVersion: store.stream(RUNTIME_STREAM_ID)?.version ?? 0,
    events: [{ type: 'DaemonStarted', version: CRISP_VERSION, pid: process.pid }],
  });
  for (const service of services) {
    const began = process.hrtime.bigint();
    await service.recover?.();
    logger.info({ service: service.name, ms: Number(process.hrtime.bigint() - began) / 1e6 }, 'recovered');
  }
  // Retention runs once recovery is done (it only touches streams that have ended) and then
  // periodically; a quarter of the retention age, between a minute and an hour, keeps the db near
  // its bound without working on every tick.
  const compact = () => {
    if (config.eventRetentionMs <= 0) return;
    const compacted = store.compact(config.eventRetentionMs);
    if (compacted.streams > 0) logger.info(compacted, 'compacted the history of ended streams');
  };
  compact();
  const retentionTimer = setInterval(compact, Math.min(3_600_000, Math.max(60_000, config.eventRetentionMs / 4)));
  retentionTimer.unref();
  readiness.markReady();
  // Under systemd (Type=notify) the unit is started only now: recovery is done, calls are served.
  void sdNotify(`READY=1\nSTATUS=serving CRI on ${config.socket}`);
  // Read once, off the reply path of the first pod that needs them.
  context.hostFacts().catch((err: unknown) => logger.warn({ err }, 'reading host facts failed; the first container create will try again'));
  const startupMs = Number(process.hrtime.bigint() - started) / 1e6;
  logger.info({ startupMs: Math.round(startupMs * 10) / 10, root: config.root, version: CRISP_VERSION }, 'crisp is ready');

  let stopping: Promise<void> | undefined;
  return {
    context,
    server,
    startupMs,
    stop: () =>
      (stopping ??= (async () => {
        readiness.markNotReady('crisp is shutting down');
        void sdNotify('STOPPING=1\nSTATUS=stopping; containers keep running');
        clearInterval(retentionTimer);
        await server.shutdown(config.shutdownTimeoutMs);
        await closeAll();
        const current = store.stream(RUNTIME_STREAM_ID);
        store.append({
          kind: 'runtime',
          streamId: RUNTIME_STREAM_ID,
          expectedVersion: current?.version ?? 0,
          events: [{ type: 'DaemonStopped', pid: process.pid }],
        });
        store.close();
        stopSpawnHelper();
        onSpawnHelperStart(undefined);
        logger.info('crisp stopped; containers keep running');
      })()),
  };
}
