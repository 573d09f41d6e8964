// The start-up leak sweep: after every stream was re-driven, anything on the node that no live
// stream owns is released, and each release is recorded as LeakReclaimed (never silently).
// Owners: container dirs under <root>/containers and runtime state (runc + conmon + cgroup) by
// container streams and the infra containers of sandbox streams; sandbox dirs (pinned
// namespaces, shm, infra rootfs) under <runroot>/sandboxes and CNI attachments by sandbox
// streams. What is released, in order: CNI attachments (while their netns is still pinned),
// runtime containers with a create journal, conmons of this daemon without one, runc state
// without either, the cgroups crisp's own records attribute to unowned containers, container and
// sandbox dirs, then stray mounts under the root and runroot.
import { existsSync } from 'node:fs';
import { readdir, realpath, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EventStore } from '../../events/store.js';
import { RUNTIME_STREAM_ID } from '../../machines/runtime.js';
import { unmountAll } from '../../host/mounts.js';
import { readMounts } from '../../host/mountinfo.js';
import { isPinned } from '../network/namespaces.js';
import { cacheFilePath, type CachedAttachment } from '../network/cni-cache.js';
import { versionAtLeast } from '../network/cni-config.js';
import type { CniRunner } from '../network/cni.js';
import { infraLayout } from '../sandbox/infra.js';
import { sandboxDir } from '../sandbox/sandbox-streams.js';
import type { ContainerRuntime } from '../monitor/container-runtime.js';
import { bundlesDir, containerBundle, containerDirBundle, containerLayout, runtimeDirs } from '../monitor/container-layout.js';
import { isConmonFor } from '../monitor/conmon.js';
import { detectCgroupLayout, type CgroupLayout } from '../monitor/cgroups.js';
import { messageOf } from '../../errors.js';
import type { Logger } from '../../log.js';
import { isWithin, liveOwners, ownedAttachments, ownedPaths, runtimeOwners, strayMounts, unownedAttachments, type LiveOwners } from './ownership.js';
import { findDaemonConmons } from './conmon-procs.js';
import { attributedCgroup, bundleCgroupsPath, defaultPodCgroupOf, reclaimCgroup, removeEmptyPodCgroup } from './leaked-cgroups.js';

const ID = /^[0-9a-f]{64}$/;

export interface LeakSweepOptions {
  root: string;
  runroot: string;
  store: EventStore;
  runtime: ContainerRuntime;
  logger: Logger;
  /**
   * A runner over the sandbox service's CNI config, plugin dirs and cache (`<root>/cni-cache`).
   * Without one, CNI attachments are not swept.
   */
  cni?: CniRunner;
}

/** What `what` values the sweep records (image service records `layer` and `blob` of its own). */
type LeakKind = 'cni-attachment' | 'runtime-container' | 'conmon' | 'cgroup' | 'container-dir' | 'container-bundle' | 'sandbox-dir' | 'mount';

export interface LeakSweepResult {
  /** Leaks released and recorded. */
  total: number;
  byKind: Partial<Record<LeakKind, number>>;
  /** Releases that failed (logged; retried at the next start). */
  failed: number;
}

export function recordLeak(store: EventStore, what: string, path: string): void {
  const live = store.stream(RUNTIME_STREAM_ID);
  store.append({ kind: 'runtime', streamId: RUNTIME_STREAM_ID, expectedVersion: live?.version ?? 0, events: [{ type: 'LeakReclaimed', what, path }] });
}

/** Runs releases one by one, recording and counting those that released something. */
class Reclaimer {
  readonly result: LeakSweepResult = { total: 0, byKind: {}, failed: 0 };
  constructor(private readonly store: EventStore, private readonly logger: Logger) {}

  /** `release` resolves false when there turned out to be nothing to release. */
  async reclaim(what: LeakKind, path: string, release: () => Promise<boolean | void>): Promise<void> {
    try {
      if ((await release()) === false) return;
      recordLeak(this.store, what, path);
      this.logger.warn({ what, path }, 'reclaimed a leak no stream owned');
      this.result.total++;
      this.result.byKind[what] = (this.result.byKind[what] ?? 0) + 1;
    } catch (err) {
      this.result.failed++;
      this.logger.error({ what, path, error: messageOf(err) }, 'cannot reclaim a leak; it is retried at the next start');
    }
  }
}

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((e) => ID.test(e));
  } catch {
    return [];
  }
}

/** A listing the sweep cannot make is logged and taken as empty: the rest still runs. */
async function gather<T>(logger: Logger, what: string, list: () => Promise<T[]>): Promise<T[]> {
  try {
    return await list();
  } catch (err) {
    logger.error({ error: messageOf(err) }, `cannot list ${what}; their leaks are swept at the next start`);
    return [];
  }
}

/** Unmounts whatever is mounted at or below `dir` (deepest first), then removes it. */
async function releaseDir(dir: string): Promise<void> {
  const mounts = (await readMounts()).map((m) => m.mountPoint).filter((m) => m === dir || m.startsWith(`${dir}/`));
  if (mounts.length) await unmountAll(...[...new Set(mounts)].sort().reverse());
  await rm(dir, { recursive: true, force: true });
}

/** Whether the attachment's netns can no longer be entered (then DEL runs without one). */
async function netnsGone(entry: CachedAttachment): Promise<boolean> {
  const netns = entry.netns;
  if (!netns) return true;
  if (netns.startsWith('/proc/')) return !existsSync(netns);
  return !(await isPinned(netns, 'net'));
}

async function sweepAttachments(cni: CniRunner, owners: LiveOwners, r: Reclaimer, logger: Logger): Promise<void> {
  let cached: CachedAttachment[];
  try {
    cached = await cni.cachedAttachments();
  } catch (err) {
    logger.error({ error: messageOf(err) }, 'cannot read the CNI cache; attachments are swept at the next start');
    return;
  }
  for (const entry of unownedAttachments(cached, owners)) {
    const path = cacheFilePath(cni.cacheDir, entry.networkName, entry.containerId, entry.ifName);
    await r.reclaim('cni-attachment', path, async () => cni.delCachedAttachment(entry, { netnsGone: await netnsGone(entry) }));
  }
  // Plugins of spec 1.1.0 also drop state (leases, rules) the cache never knew of, given the
  // attachments to keep. Optional: a plugin that rejects GC costs nothing but a log line.
  let network;
  try {
    network = await cni.network();
  } catch (err) {
    logger.debug({ error: messageOf(err) }, 'no usable CNI network config: CNI GC skipped');
    return;
  }
  if (!versionAtLeast(network.cniVersion, '1.1.0')) return;
  try {
    await cni.gc(ownedAttachments(await cni.cachedAttachments(), owners));
  } catch (err) {
    logger.warn({ network: network.name, error: messageOf(err) }, 'CNI GC failed; what the plugins hold beyond the cache stays until the next GC');
  }
}

/**
 * The cgroups this daemon's records attribute to containers no stream owns: create journals,
 * and the bundles of the conmons found, in the runroot's bundles dir, in container dirs (where
 * older crisp kept them) and in infra dirs. Read before any of those records is released.
 */
async function attributedCgroups(o: LeakSweepOptions, sources: { id: string; record?: boolean; bundle?: string }[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const s of sources) {
    const paths: unknown[] = [];
    if (s.record) {
      // A create cut short leaves its journal, which still names the cgroup runc may have made.
      paths.push(await o.runtime.cgroupsPathOf(s.id).catch(() => null));
    }
    if (s.bundle) paths.push(await bundleCgroupsPath(s.bundle));
    for (const p of paths) {
      const cgroup = attributedCgroup(s.id, p);
      if (cgroup) found.set(cgroup, s.id);
    }
  }
  return found;
}

/** Releases every unowned thing found. One failure does not stop the rest. */
export async function sweepLeaks(o: LeakSweepOptions): Promise<LeakSweepResult> {
  const { store, logger, runtime } = o;
  const { conmonPath } = runtime;
  const owners = liveOwners(store);
  const runtimeOwned = runtimeOwners(owners);
  const r = new Reclaimer(store, logger);
  let began = performance.now();
  const lap = (phase: string) => {
    logger.debug({ phase, ms: Math.round((performance.now() - began) * 10) / 10 }, 'leak sweep phase');
    began = performance.now();
  };

  if (o.cni) await sweepAttachments(o.cni, owners, r, logger);
  lap('cni');

  const dirs = runtimeDirs(o.runroot);
  // Three ways a runtime container is found: crisp's create journal, else its conmon,
  // else runc's own state dir. Each id is released (and recorded) once, by the first that knows it.
  const records = (await gather(logger, 'create journals', () => runtime.list())).filter((id) => !runtimeOwned.has(id));
  const conmons = (await gather(logger, 'conmon processes', () => findDaemonConmons({ conmonPath, exitsDir: dirs.exitsDir })))
    .filter((c) => !runtimeOwned.has(c.id) && !records.includes(c.id));
  // Each handler's root: a container its runtime knows and crisp does not is deleted with that runtime.
  const runtimeOnly: { id: string; handler: string }[] = [];
  const runtimeRoots = new Set<string>();
  for (const h of runtime.allRuntimes()) {
    if (runtimeRoots.has(h.root)) continue;
    runtimeRoots.add(h.root);
    for (const id of await entries(h.root)) {
      if (!runtimeOwned.has(id) && !records.includes(id) && !conmons.some((c) => c.id === id)) runtimeOnly.push({ id, handler: h.name });
    }
  }
  const runcOnly = runtimeOnly.map((r) => r.id);
  const containerDirs = (await entries(join(o.root, 'containers'))).filter((id) => !owners.containers.has(id));
  const bundles = (await entries(bundlesDir(o.runroot))).filter((id) => !owners.containers.has(id));
  const sandboxDirs = (await entries(join(o.runroot, 'sandboxes'))).filter((id) => !owners.sandboxes.has(id));
  lap('listing');
  const cgroups = await attributedCgroups(o, [
    ...[...records, ...runcOnly].map((id) => ({ id, record: true })),
    ...conmons.flatMap((c) => (c.bundle ? [{ id: c.id, bundle: c.bundle }] : [])),
    ...bundles.map((id) => ({ id, bundle: containerBundle(o.runroot, id) })),
    ...containerDirs.map((id) => ({ id, bundle: containerDirBundle(o.root, id) })),
    ...sandboxDirs.map((id) => ({ id, bundle: infraLayout(o.runroot, id).bundle })),
  ]);

  lap('cgroup attribution');
  for (const id of records) await r.reclaim('runtime-container', id, () => runtime.delete(id));
  for (const c of conmons) {
    await r.reclaim('conmon', `pid ${c.pid} (${c.id})`, async () => {
      if (!(await isConmonFor(c.pid, c.id, conmonPath))) return false;
      let failure: unknown;
      // runc delete --force through the daemon's runtime: its runc root is the one this
      // conmon's exits dir belongs to, and it works without a record too.
      await runtime.delete(c.id).catch((err: unknown) => (failure = err));
      if (await isConmonFor(c.pid, c.id, conmonPath)) process.kill(c.pid, 'SIGKILL');
      if (failure !== undefined) throw failure;
    });
  }
  for (const { id, handler } of runtimeOnly) await r.reclaim('runtime-container', id, () => runtime.delete(id, handler));

  if (cgroups.size > 0) {
    let layout: CgroupLayout | undefined;
    try {
      layout = await detectCgroupLayout();
    } catch (err) {
      logger.error({ error: messageOf(err) }, 'cannot read the cgroup layout; leaked cgroups are swept at the next start');
    }
    if (layout) {
      const podCgroups = new Set<string>();
      for (const path of cgroups.keys()) {
        await r.reclaim('cgroup', path, () => reclaimCgroup(layout, path));
        const pod = defaultPodCgroupOf(path);
        if (pod && !owners.sandboxes.has(pod.sandboxId)) podCgroups.add(pod.path);
      }
      for (const path of podCgroups) await r.reclaim('cgroup', path, () => removeEmptyPodCgroup(layout, path));
    }
  }

  lap('runtime and cgroups');
  for (const id of containerDirs) {
    const dir = containerLayout(o.root, id).dir;
    await r.reclaim('container-dir', dir, () => releaseDir(dir));
  }
  for (const id of bundles) {
    const dir = containerBundle(o.runroot, id);
    await r.reclaim('container-bundle', dir, () => releaseDir(dir));
  }
  for (const id of sandboxDirs) {
    const dir = sandboxDir(o.runroot, id);
    await r.reclaim('sandbox-dir', dir, () => releaseDir(dir));
  }

  lap('dirs');
  // mountinfo names canonical paths; the log names them as configured (maybe via a symlink).
  const given = [o.root, o.runroot].map((p) => resolve(p));
  const roots = await Promise.all(given.map((p) => realpath(p).catch(() => p)));
  const canonical = (p: string) => {
    const i = given.findIndex((g) => isWithin(p, g));
    return i < 0 ? p : roots[i]! + p.slice(given[i]!.length);
  };
  const owned = ownedPaths(owners, o.root, o.runroot).flatMap((p) => [p, canonical(p)]);
  for (const mountPoint of strayMounts(await gather(logger, 'mounts', readMounts), { roots, owned })) {
    await r.reclaim('mount', mountPoint, () => unmountAll(mountPoint));
  }

  lap('mounts');
  const { result } = r;
  if (result.total > 0 || result.failed > 0) logger.warn(result, 'start-up leak sweep released what no stream owned');
  else logger.debug('start-up leak sweep found no leaks');
  return result;
}
