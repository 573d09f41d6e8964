// The container's planner: from a container stream's state, the one effect that state calls
// for next. Create is rootfs → spec → conmon/runc; a failure records the step and the unwind
// releases what was acquired, newest first; Remove runs the same releases. Every step is
// idempotent, so after a crash the same plan simply runs again (DESIGN.md rules 2 and 5).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Step, Planner } from '../driver.js';
import type { EntityState } from '../../machines/index.js';
import { stateOf } from '../../machines/index.js';
import type { CallerFault, ContainerEvent } from '../../machines/events.js';
import type { ContainerContext } from '../../machines/container.js';
import { nowNs } from '../../events/clock.js';
import { failedPrecondition, invalidArgument, messageOf, recordedKind } from '../../errors.js';
import { mountOverlay } from '../storage/overlay.js';
import { unmountOwn } from '../../host/mounts.js';
import { removePath } from '../../host/files.js';
import { resolveImage } from '../image-pull/image-index.js';
import { generateSpec, loadLocalhostSeccompProfile, podResourcesOf, prepareMounts, readUserDatabase, releasePreparedMounts, resolveUserFrom, writeSpecFile } from '../spec/index.js';
import type { OciImageConfig, PodResources } from '../spec/index.js';
import type { UserDatabase } from '../spec/user.js';
import { containerBundle, containerLayout } from '../monitor/container-layout.js';
import { exitFacts } from './container-exits.js';
import { ensureHostPropagation } from '../monitor/host-propagation.js';
import { signalName, signalNameOfCri } from '../monitor/signals.js';
import type { ContainerPlanDeps } from './container-deps.js';
import { planResources } from '../spec/resources.js';
import type { LinuxResources } from '../monitor/types.js';
import type { LinuxContainerResources__Output } from '../../cri/proto/gen/runtime/v1/LinuxContainerResources.js';
import { PerImage, imageConfigOf } from '../image-pull/image-config.js';
import { mountWritableRootfs } from '../storage/writable-rootfs.js';


// kubelet tells the runtime where the termination message goes through this annotation.
const TERMINATION_PATH_ANNOTATION = 'io.kubernetes.container.terminationMessagePath';
const DEFAULT_TERMINATION_PATH = '/dev/termination-log';

export function containerPlanner(deps: ContainerPlanDeps): Planner<'container'> {
  return (id, state) => {
    const c = state.context;
    switch (state.value) {
      case 'creating':
        // The rootfs mount and the spec are done again after a crash with no harm: the driver
        // records both in one append (runc create is not: its fact is recorded on its own).
        if (c.rootfs === null) return { ...createStep('rootfs-mount', () => mountRootfs(deps, id, c)), redoable: true };
        if (c.bundle === null) return { ...createStep('spec-write', () => writeSpec(deps, id, c)), redoable: true };
        return createStep('runtime-create', () => createInRuntime(deps, id, c));
      case 'starting':
        return startStep(deps, id);
      case 'created':
      case 'running':
        return c.pendingResources ? resourcesStep(deps, id, c.pendingResources) : null;
      case 'stopping':
        return stopStep(deps, id, c);
      case 'createFailed':
      case 'removing':
        return releaseStep(deps, id, c);
      default:
        return null;
    }
  };
}

function createStep(name: string, run: () => Promise<ContainerEvent[]>): Step<'container'> {
  return {
    name,
    run,
    // Only the steps that read the request can blame it; runtime-create errors are the node's.
    failed: (err) => [{ type: 'ContainerCreateFailed', step: name, message: messageOf(err), ...kindOf(err, name !== 'runtime-create') }],
  };
}

// The image's /etc/passwd and /etc/group, read once per image: at spec-write the container's
// writable layer is still empty, so its rootfs shows exactly the image's files, and every
// container of an image would otherwise pay two reads through the overlay and two parses.
const userDatabases = new PerImage<UserDatabase>();

async function mountRootfs(deps: ContainerPlanDeps, id: string, c: ContainerContext): Promise<ContainerEvent[]> {
  const image = resolveImage(deps.ctx.store, c.image!.id);
  if (!image) throw failedPrecondition(`image ${c.image!.id} (${c.image!.requested}) is no longer present`);
  const layout = containerLayout(deps.ctx.config.root, id);
  await mountWritableRootfs(deps.ctx.layers, image.context.layers, layout);
  // Image volumes: each image's layers alone, with no upper dir, so read-only by nature. Released
  // with the rootfs (rootfs-unmount), so a failure here is undone by the same unwind.
  for (const volume of c.imageVolumes ?? []) {
    const mounted = resolveImage(deps.ctx.store, volume.image.id);
    if (!mounted) throw failedPrecondition(`mounts[${volume.mount}].image: image ${volume.image.id} (${volume.image.requested}) is no longer present`);
    const target = join(layout.imageVolumes, String(volume.mount));
    mkdirSync(target, { recursive: true, mode: 0o755 });
    await mountOverlay({ lowerDirs: mounted.context.layers.map((layer) => deps.ctx.layers.path(layer.chainId)), target, linkDir: deps.ctx.layers.linkDir });
  }
  return [{ type: 'ContainerRootfsMounted', path: layout.rootfs }];
}

/** Unmounts every image volume of a container (whatever a cut-short mount step made). Idempotent. */
async function unmountImageVolumes(imageVolumes: string): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(imageVolumes);
  } catch {
    return;
  }
  for (const name of names) await unmountOwn(join(imageVolumes, name));
}

function podResources(deps: ContainerPlanDeps, sandboxId: string): { pod: PodResources; sandbox: EntityState<'sandbox'> } {
  const live = deps.ctx.store.stream(sandboxId);
  const sandbox = live?.kind === 'sandbox' ? stateOf('sandbox', live.snapshot) : undefined;
  if (!sandbox || sandbox.value !== 'ready' || !sandbox.context.config) {
    throw failedPrecondition(`pod sandbox ${sandboxId} is ${sandbox ? sandbox.value : 'gone'}, not ready`);
  }
  const s = sandbox.context;
  const pidns = s.namespaces.pid ?? (s.infra ? `/proc/${s.infra.pid}/ns/pid` : undefined);
  const pod: PodResources = { ...podResourcesOf(sandboxId, s, hostname()), ...(pidns !== undefined && { pidns }) };
  return { pod, sandbox };
}

/** The pod's RuntimeClass handler: its containers run with the runtime the pod was made with. */
function podRuntimeHandler(deps: ContainerPlanDeps, sandboxId: string): string {
  const live = deps.ctx.store.stream(sandboxId);
  if (live?.kind !== 'sandbox') throw failedPrecondition(`pod sandbox ${sandboxId} is gone`);
  return stateOf('sandbox', live.snapshot).context.runtimeHandler;
}

/** namespace_options.pid = TARGET: the PID namespace of another running container of the pod. */
function targetPidns(deps: ContainerPlanDeps, c: ContainerContext): string | undefined {
  const options = c.config?.linux?.security_context?.namespace_options;
  if (options?.pid !== 'TARGET') return undefined;
  const live = deps.ctx.store.stream(options.target_id);
  const target = live?.kind === 'container' ? stateOf('container', live.snapshot) : undefined;
  if (!target || target.context.sandboxId !== c.sandboxId || target.context.pid === null) {
    throw failedPrecondition(`namespace_options.target_id: container ${JSON.stringify(options.target_id)} is not running in this pod`);
  }
  return `/proc/${target.context.pid}/ns/pid`;
}

async function writeSpec(deps: ContainerPlanDeps, id: string, c: ContainerContext): Promise<ContainerEvent[]> {
  const config = c.config!;
  const layout = containerLayout(deps.ctx.config.root, id);
  const { pod, sandbox } = podResources(deps, c.sandboxId);
  const imageConfig = await imageConfigOf(deps.ctx.blobs, c.image!.id);
  const user = resolveUserFrom(await userDatabases.get(c.image!.id, () => readUserDatabase(layout.rootfs)), config, imageConfig.User ?? '');
  const stopSignal = effectiveStopSignal(config, imageConfig.StopSignal);
  const handler = deps.ctx.handlers.get(podRuntimeHandler(deps, c.sandboxId));
  config.mounts.forEach((m, i) => {
    if (m.recursive_read_only && !handler.features.recursiveReadOnlyMounts) {
      throw invalidArgument(`mounts[${i}].recursive_read_only: runtime handler ${JSON.stringify(handler.name)} does not support recursive read-only mounts on this node`);
    }
  });
  const prepared = await prepareMounts(config.mounts, (mount) => join(layout.imageVolumes, String(mount)));
  try {
    const localhostSeccomp = await loadLocalhostSeccompProfile(config.linux?.security_context ?? null);
    const terminationPath = config.annotations[TERMINATION_PATH_ANNOTATION] || DEFAULT_TERMINATION_PATH;
    const kubeletMountsIt = prepared.mounts.some((m) => m.containerPath === terminationPath);
    if (!kubeletMountsIt) writeFileSync(layout.terminationLog, '', { flag: 'a', mode: 0o644 });
    const target = targetPidns(deps, c);
    const { spec, warnings, hostPropagation } = generateSpec(
      {
        containerId: id,
        sandboxId: c.sandboxId,
        container: config,
        sandbox: sandbox.context.config!,
        image: { config: imageConfig, name: c.image!.requested, id: c.image!.id },
        rootfs: layout.rootfs,
        pod,
        host: await deps.hostFacts(),
        mounts: prepared.mounts,
        ...(localhostSeccomp && { localhostSeccomp }),
        // Nothing asked means unconfined, as containerd does and critest checks; kubelet asks for
        // RuntimeDefault explicitly when its seccomp default is on.
        seccompDefaultWhenEmpty: false,
        ...(!kubeletMountsIt && { terminationMessage: { hostPath: layout.terminationLog, containerPath: terminationPath } }),
        ...(target !== undefined && { targetPidns: target }),
      },
      user,
    );
    for (const warning of warnings) deps.ctx.logger.warn({ container: id }, warning);
    for (const p of hostPropagation) await ensureHostPropagation(p.hostPath, p.need);
    const bundle = containerBundle(deps.ctx.config.runroot, id);
    await writeSpecFile(bundle, spec);
    const { uid, gid, additionalGids = [gid] } = spec.process.user;
    return [{ type: 'ContainerSpecWritten', bundle, user: { uid, gid, additionalGids }, stopSignal }];
  } catch (err) {
    // Host directories made for missing mount sources belong to this attempt: a failed create
    // must not leave them behind (a created container keeps them, as kubelet's hostPath does).
    await releasePreparedMounts(prepared.createdHostPaths);
    throw err;
  }
}

/** The signal StopContainer sends first: the config's (KEP-4960), else the image's STOPSIGNAL, else SIGTERM. */
function effectiveStopSignal(config: { stop_signal?: string }, imageStopSignal: string | undefined): string {
  const asked = signalNameOfCri(config.stop_signal ?? '', 'config.stop_signal');
  if (asked) return asked;
  return imageStopSignal ? signalName(imageStopSignal, 'image config StopSignal') : 'SIGTERM';
}

async function createInRuntime(deps: ContainerPlanDeps, id: string, c: ContainerContext): Promise<ContainerEvent[]> {
  // Pid files mean an earlier run of this step got as far as runc's create: adopt what it made.
  const existing = await deps.runtime.created(id);
  if (existing) return [{ type: 'ContainerCreated', pid: existing.pid, conmonPid: existing.conmonPid }];
  mkdirSync(dirname(c.logPath), { recursive: true, mode: 0o755 });
  const config = c.config!;
  const made = await deps.runtime.create({
    id,
    runtimeHandler: podRuntimeHandler(deps, c.sandboxId),
    bundle: c.bundle!,
    logPath: c.logPath,
    terminal: config.tty,
    stdin: config.stdin,
    stdinOnce: config.stdin_once,
  });
  return [{ type: 'ContainerCreated', pid: made.pid, conmonPid: made.conmonPid }];
}

function startStep(deps: ContainerPlanDeps, id: string): Step<'container'> {
  return {
    name: 'start',
    async run() {
      // Stamped before runc start: a process that exits at once must not finish before it began.
      const startedAt = nowNs().toString();
      try {
        await deps.runtime.start(id);
      } catch (err) {
        // Re-driven after a crash, the start may already have happened; only then is runc asked
        // what state the container is in (a spawn that a first start does not need).
        const st = await deps.runtime.state(id);
        if (!st) throw failedPrecondition(`the runtime no longer knows container ${id}`);
        if (st.status === 'created') throw err;
      }
      return [{ type: 'ContainerStarted', startedAt }];
    },
    failed: (err) => [{ type: 'ContainerStartFailed', message: messageOf(err), finishedAt: nowNs().toString() }],
  };
}

/**
 * Applies resources UpdateContainerResources recorded (ContainerResourcesUpdateRequested) to the
 * live cgroup through the runtime. Re-driven after a crash it applies them again: the same update
 * twice leaves the same limits.
 */
function resourcesStep(deps: ContainerPlanDeps, id: string, resources: LinuxContainerResources__Output): Step<'container'> {
  return {
    name: 'update-resources',
    async run() {
      const plan = planResources(resources, await deps.hostFacts());
      for (const warning of plan.warnings) deps.ctx.logger.warn({ container: id }, warning);
      await deps.runtime.updateResources(id, plan.resources as LinuxResources);
      return [{ type: 'ContainerResourcesUpdated', resources }];
    },
    // The runtime refusing limits the container's present state cannot take (a memory limit below
    // what it uses, with nothing to reclaim) is a precondition the caller can act on, not an
    // internal failure; a full disk stays RESOURCE_EXHAUSTED.
    failed: (err) => [{ type: 'ContainerResourcesUpdateFailed', message: messageOf(err), kind: recordedKind(err, true) ?? 'FailedPrecondition' }],
  };
}

function stopStep(deps: ContainerPlanDeps, id: string, c: ContainerContext): Step<'container'> {
  return {
    name: 'stop',
    async run() {
      // Containers created before the stop signal was recorded fall back to their image's.
      const signal = c.stopSignal ?? (await imageConfigOf(deps.ctx.blobs, c.image!.id).catch(() => ({}) as OciImageConfig)).StopSignal;
      const exit = await deps.runtime.stop(id, { timeoutSeconds: c.stopTimeoutSeconds ?? 0, ...(signal && { signal }) });
      return [{ type: 'ContainerExited', ...(await exitFacts(exit, containerLayout(deps.ctx.config.root, id).terminationLog, c.startedAt)) }];
    },
  };
}

// The releases are redoable (runc delete of a deleted container, an unmount of nothing, a
// removal of what is gone are no-ops): the driver records them in one append.
function releaseStep(deps: ContainerPlanDeps, id: string, c: ContainerContext): Step<'container'> {
  const layout = containerLayout(deps.ctx.config.root, id);
  if (!c.runtimeDeleted) {
    return {
      name: 'runtime-delete',
      redoable: true,
      async run() {
        await deps.runtime.delete(id);
        return [{ type: 'ContainerRuntimeDeleted' }];
      },
    };
  }
  if (!c.rootfsReleased) {
    return {
      name: 'rootfs-unmount',
      redoable: true,
      async run() {
        await unmountImageVolumes(layout.imageVolumes);
        await unmountOwn(layout.rootfs);
        await removePath(layout.dir);
        // The bundle, a few files on the runroot's tmpfs, removed in place (one made before
        // bundles moved there went with the dir).
        await removePath(containerBundle(deps.ctx.config.runroot, id));
        return [{ type: 'ContainerRootfsUnmounted' }, { type: 'ContainerRemoved' }];
      },
    };
  }
  return { name: 'forget', run: async () => [{ type: 'ContainerRemoved' }] };
}

/** The kind kept with a failure (the request's fault, a full disk) so CreateContainer answers with it rather than INTERNAL. */
function kindOf(err: unknown, callerMayBeAtFault: boolean): { kind?: CallerFault } {
  const kind = recordedKind(err, callerMayBeAtFault);
  return kind ? { kind } : {};
}
