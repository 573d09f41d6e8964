// The infra (pause) container of a pod that shares one PID namespace among its containers.
// A PID namespace cannot be pinned by a bind mount the way net/ipc/uts are (a mount keeps the
// namespace object, but no process can be created in it afterwards), so a process must hold
// it: the pause image, run under conmon/runc like any container, with the sandbox's id as its
// runtime id. The pod's containers join it through /proc/<pid>/ns/pid.
//
// Each function here is one idempotent step of the sandbox planner: it may run again after a
// crash and then finds (or releases) what the earlier run made.
import { hostname as nodeHostname } from 'node:os';
import { join } from 'node:path';
import { filter, type Subscription } from '../../rx.js';
import type { EventStore } from '../../events/store.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { LayerStore } from '../storage/layer-store.js';
import type { ImageRef } from '../../machines/events.js';
import type { EntityState } from '../../machines/index.js';
import { failedPrecondition, messageOf } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { unmountOwn } from '../../host/mounts.js';
import { mountWritableRootfs } from '../storage/writable-rootfs.js';
import { imageConfigOf } from '../image-pull/image-config.js';
import { resolveImage } from '../image-pull/image-index.js';
import { generateInfraSpec, podResourcesOf, writeSpecFile, type HostFacts } from '../spec/index.js';
import type { ContainerRuntime } from '../monitor/container-runtime.js';
import type { ExitInfo } from '../monitor/types.js';
import { overlayLayout, runtimeDirs } from '../monitor/container-layout.js';
import { removePath, waitForFile, WaitAborted } from '../../host/files.js';
import { sandboxDir, sandboxState } from './sandbox-streams.js';
import { appendIfAccepted } from '../../events/append-if-accepted.js';

type SandboxState = EntityState<'sandbox'>;

export interface InfraDeps {
  store: EventStore;
  blobs: BlobStore;
  layers: LayerStore;
  runroot: string;
  /** The pause image reference (--pause-image, crisp.image.pause_image). */
  pauseImage: string;
  /** Pulls an image (recording the pull) and returns its id; used only when the pause image is absent. */
  pull(image: string, signal: AbortSignal): Promise<string>;
  /** The runtime over the same directories the container service uses, made on first use. */
  runtime(): ContainerRuntime;
  hostFacts(): Promise<HostFacts>;
  logger?: Logger;
}

export interface InfraLayout {
  dir: string;
  upper: string;
  work: string;
  rootfs: string;
  bundle: string;
  /** conmon needs a log file; pause never writes to it. */
  log: string;
}

/**
 * Under the pod's runroot directory, its overlay, bundle and log together: the infra process
 * does not survive a reboot, and neither need its rootfs and bundle. The sandbox's last step
 * sweeps the directory.
 */
export function infraLayout(runroot: string, sandboxId: string): InfraLayout {
  const dir = join(sandboxDir(runroot, sandboxId), 'infra');
  return { ...overlayLayout(dir), bundle: join(dir, 'bundle'), log: join(dir, 'infra.log') };
}

function imageRefOf(deps: InfraDeps, nameOrId: string): ImageRef | undefined {
  const image = resolveImage(deps.store, nameOrId);
  if (!image) return undefined;
  const c = image.context;
  return { requested: deps.pauseImage, id: c.id, ref: c.repoDigests[0] ?? c.id };
}

/** The pause image, pulled first when this node does not have it (as CRI-O does). */
export async function resolvePauseImage(deps: InfraDeps, signal: AbortSignal): Promise<ImageRef> {
  const present = imageRefOf(deps, deps.pauseImage);
  if (present) return present;
  (deps.logger ?? silentLogger).info({ image: deps.pauseImage }, 'the pause image is not present; pulling it');
  const id = await deps.pull(deps.pauseImage, signal);
  const pulled = imageRefOf(deps, id);
  if (!pulled) throw failedPrecondition(`pause image ${deps.pauseImage} (${id}) was removed right after its pull`);
  return pulled;
}

/**
 * Mounts the pause image's layers. The overlay has an upper dir although the spec makes the root
 * read-only: runc creates the mount points (/proc, /dev, /sys...) in the rootfs before it
 * remounts it read-only, and the real pause image has none of those directories.
 */
export async function mountInfraRootfs(deps: InfraDeps, id: string, imageRef: ImageRef): Promise<string> {
  const image = resolveImage(deps.store, imageRef.id);
  if (!image) throw failedPrecondition(`pause image ${imageRef.requested} (${imageRef.id}) is no longer present`);
  const layout = infraLayout(deps.runroot, id);
  try {
    await mountWritableRootfs(deps.layers, image.context.layers, layout);
  } catch (err) {
    await removePath(layout.dir);
    throw err;
  }
  return layout.rootfs;
}

/** Writes the infra container's config.json; returns the bundle directory. */
export async function writeInfraSpec(deps: InfraDeps, id: string, state: SandboxState): Promise<string> {
  const c = state.context;
  const config = c.config!;
  if (!c.infraImage || !c.infraRootfs) throw failedPrecondition(`pod sandbox ${id} has no infra rootfs to write a spec for`);
  const imageConfig = await imageConfigOf(deps.blobs, c.infraImage.id);
  const { spec, warnings } = generateInfraSpec({
    sandboxId: id,
    sandbox: config,
    rootfs: c.infraRootfs,
    image: { config: imageConfig, name: c.infraImage.requested, id: c.infraImage.id },
    pod: podResourcesOf(id, c, nodeHostname()),
    host: await deps.hostFacts(),
  });
  for (const warning of warnings) (deps.logger ?? silentLogger).warn({ sandbox: id }, warning);
  const bundle = infraLayout(deps.runroot, id).bundle;
  await writeSpecFile(bundle, spec);
  return bundle;
}

/**
 * Creates and starts the infra container; returns its pid. A container an earlier run of this
 * step left is adopted when it is still usable and deleted when it is not.
 */
export async function startInfra(deps: InfraDeps, id: string, bundle: string, runtimeHandler: string): Promise<number> {
  const runtime = deps.runtime();
  const existing = await runtime.created(id);
  if (existing) {
    const st = await runtime.state(id);
    if (st?.status === 'running') return existing.pid;
    if (st?.status === 'created') {
      await startOrDelete(runtime, id);
      return existing.pid;
    }
    await runtime.delete(id);
  }
  const made = await runtime.create({ id, bundle, logPath: infraLayout(deps.runroot, id).log, terminal: false, runtimeHandler });
  await startOrDelete(runtime, id);
  return made.pid;
}

async function startOrDelete(runtime: ContainerRuntime, id: string): Promise<void> {
  try {
    await runtime.start(id);
  } catch (err) {
    await runtime.delete(id).catch(() => undefined);
    throw err;
  }
}

/** Kills the infra process (pause needs no grace period) and waits for conmon to record its exit. */
export async function stopInfra(deps: InfraDeps, id: string): Promise<void> {
  const runtime = deps.runtime();
  // Not created: a reboot took the process and the runroot with it, or it was never made.
  if (!(await runtime.created(id))) return;
  await runtime.stop(id, { timeoutSeconds: 0 });
}

/** runc delete, conmon and the infra's cgroup. Idempotent. */
export async function deleteInfra(deps: InfraDeps, id: string): Promise<void> {
  await deps.runtime().delete(id);
}

/**
 * Unmounts the rootfs and removes the infra directory (bundle included). A runtime container a
 * crashed create left unrecorded is deleted first, so nothing still uses the rootfs.
 */
export async function unmountInfraRootfs(deps: InfraDeps, id: string): Promise<void> {
  await deps.runtime().delete(id);
  const layout = infraLayout(deps.runroot, id);
  await unmountOwn(layout.rootfs);
  await removePath(layout.dir);
}

/**
 * Watches the infra process of every ready pod: when it dies (killed, OOM), the pod's shared
 * PID namespace is gone with it, so the pod is recorded as not ready, as CRI-O reports it.
 * After a restart the watches are set up again, and an infra that died meanwhile is noticed.
 */
export class InfraExitWatcher {
  private readonly watches = new Map<string, AbortController>();
  private subscription: Subscription | undefined;

  constructor(private readonly deps: InfraDeps) {}

  start(): void {
    this.subscription = this.deps.store.committed$
      .pipe(filter((e) => e.kind === 'sandbox' && e.event.type === 'SandboxReady'))
      .subscribe((e) => {
        if (sandboxState(this.deps.store, e.streamId)?.context.infra) this.watch(e.streamId);
      });
  }

  /** Start-up, for one pod: notice an infra that died while crisp was down, else watch it. */
  async recoverOne(id: string): Promise<void> {
    const state = sandboxState(this.deps.store, id);
    if (state?.value !== 'ready' || !state.context.infra) return;
    const runtime = this.deps.runtime();
    try {
      if (!(await runtime.created(id))) {
        this.notReady(id, 'its infra container is gone (was the node rebooted?)');
        return;
      }
      const exit = await runtime.readExit(id);
      if (exit) this.notReady(id, exitReason(exit));
      else this.watch(id);
    } catch (err) {
      (this.deps.logger ?? silentLogger).warn({ sandbox: id, error: messageOf(err) }, 'cannot read the infra container at start-up');
    }
  }

  private watch(id: string): void {
    if (this.watches.has(id)) return;
    const controller = new AbortController();
    this.watches.set(id, controller);
    // conmon's exit file is the signal; the watch starts synchronously here, so a stop() that
    // follows at once still ends it and cannot leave an inotify watch holding the process up.
    waitForFile(join(runtimeDirs(this.deps.runroot).exitsDir, id), controller.signal)
      .then(async () => {
        const exit = await this.deps.runtime().readExit(id);
        this.notReady(id, exit ? exitReason(exit) : 'its infra container exited');
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted || err instanceof WaitAborted) return;
        (this.deps.logger ?? silentLogger).error({ sandbox: id, err }, 'watching the infra container failed');
      })
      .finally(() => {
        if (this.watches.get(id) === controller) this.watches.delete(id);
      });
  }

  /** Only a ready pod becomes not ready: a stop under way killed the infra on purpose. */
  private notReady(id: string, reason: string): void {
    if (appendIfAccepted(this.deps.store, 'sandbox', id, { type: 'SandboxNotReadyObserved', reason })) {
      (this.deps.logger ?? silentLogger).warn({ sandbox: id, reason }, 'the infra container exited; the pod is not ready');
    }
  }

  stop(): void {
    this.subscription?.unsubscribe();
    for (const controller of this.watches.values()) controller.abort();
    this.watches.clear();
  }
}

function exitReason(exit: ExitInfo): string {
  return `its infra container exited (code ${exit.exitCode}${exit.oomKilled ? ', OOM-killed' : ''})`;
}
