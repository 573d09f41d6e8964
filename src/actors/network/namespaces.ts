// Pod namespaces pinned by bind mounts instead of a pause process: the namespace lives as long
// as its nsfs mount does, so a sandbox needs no long-running process (as CRI-O's pinns).
//
// Route chosen: the spawn helper unshares net, ipc and uts in a forked child, sets the hostname
// and brings lo up there, and bind-mounts the new namespaces onto the pin files, with no program
// started (src/host/syscalls.ts); without the helper, util-linux `unshare --net=FILE --ipc=FILE
// --uts=FILE -- sh -c 'hostname NAME && exec ip link set lo up'` does the same.
//
// Propagation: the bind mounts inherit the propagation of the mount they land on. On a
// private mount nothing leaks to other mount namespaces; on a shared one the unmount in
// unpin propagates to the peers the mount propagated to, so both are safe.

import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { alreadyExists, internal, invalidArgument, messageOf } from '../../errors.js';
import { POD_NAMESPACE_KINDS, validateHostname, type PodNamespaceKind } from '../../machines/pod-rules.js';
import { silentLogger, type Logger } from '../../log.js';
import { describeFailure, run, type RunOptions, type RunResult } from '../../host/run.js';
import { pinNewNamespaces } from '../../host/syscalls.js';
import { unmountOwn } from '../../host/mounts.js';
import { removeIfPresent } from '../../host/files.js';
import { mountedHere, ownMountAt, type MountEntry } from '../../host/mountinfo.js';


/** Paths of the pinned namespace files; a kind is absent when the pod shares the host's. */
export type PinnedNamespaces = Partial<Record<PodNamespaceKind, string>>;

export interface PinOptions {
  /** Directory that receives one file per namespace (`net`, `ipc`, `uts`). Created if missing. */
  dir: string;
  /** Which namespaces to create; default all three (host-network pods leave out `net`...). */
  kinds?: readonly PodNamespaceKind[];
  /** Set inside the new UTS namespace; requires `uts` among the kinds. */
  hostname?: string;
  logger?: Logger;
}

/** Creates the namespaces, pins them at files in `dir`, and sets the hostname in the UTS one. */
export async function pinNamespaces(options: PinOptions): Promise<PinnedNamespaces> {
  const log = options.logger ?? silentLogger;
  const kinds = [...new Set(options.kinds ?? POD_NAMESPACE_KINDS)];
  for (const k of kinds) {
    if (!POD_NAMESPACE_KINDS.includes(k)) throw invalidArgument(`kinds: unknown namespace kind ${JSON.stringify(k)}`);
  }
  if (kinds.length === 0) throw invalidArgument('kinds: at least one namespace kind is required');
  if (options.hostname !== undefined) {
    validateHostname(options.hostname);
    if (!kinds.includes('uts')) throw invalidArgument('hostname: needs a private uts namespace (kinds lacks "uts")');
  }
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true, mode: 0o755 });

  const pinned: PinnedNamespaces = {};
  for (const k of kinds) pinned[k] = join(dir, k);

  for (const path of Object.values(pinned)) {
    if (mountedHere(path)) throw alreadyExists(`namespace file ${path} is already pinned; unpin it first`);
  }
  try {
    // unshare needs the targets to exist; leftovers of a crashed attempt are plain files, reused.
    for (const path of Object.values(pinned)) closeSync(openSync(path, 'a', 0o444));
    try {
      await pinNewNamespaces({ files: pinned, ...(options.hostname !== undefined && { hostname: options.hostname }) });
    } catch (err) {
      throw internal(`pinning namespaces in ${dir} failed: ${messageOf(err)}`, err);
    }
    const parentDevs = new Map<string, number>();
    for (const k of kinds) {
      if (ownMountAt(pinned[k]!, parentDevs) !== 'nsfs') {
        throw internal(`pinning namespaces in ${dir} failed: ${pinned[k]} is not a ${k} namespace mount`);
      }
    }
  } catch (err) {
    await unpinNamespaces(pinned).catch((e: unknown) => log.warn({ err: e, dir }, 'cleanup after failed pin failed'));
    throw err;
  }
  log.debug({ pinned, hostname: options.hostname }, 'namespaces pinned');
  return pinned;
}

/** Unmounts and removes the pinned namespace files. Idempotent: missing files are fine. */
export async function unpinNamespaces(pinned: PinnedNamespaces): Promise<void> {
  const paths = Object.values(pinned).filter((p): p is string => !!p);
  try {
    await unmountOwn(...paths);
    for (const path of paths) removeIfPresent(path);
  } catch (err) {
    throw internal(`unpinning namespaces ${paths.join(', ')} failed: ${messageOf(err)}`, err);
  }
}

/**
 * True when `path` (a namespace file crisp pinned as `kind`) holds a namespace now. The pin
 * files are crisp's own, so a stat says it: a namespace is mounted there or not.
 */
export async function isPinned(path: string, _kind: PodNamespaceKind): Promise<boolean> {
  return ownMountAt(path) === 'nsfs';
}

/** Whether the topmost mount on a path is a pin of a `kind` namespace. */
export function pinnedBy(top: MountEntry | undefined, kind: PodNamespaceKind): boolean {
  return top?.fsType === 'nsfs' && top.root.startsWith(`${kind}:`);
}

function nsenterArgs(ns: PinnedNamespaces, file: string, args: readonly string[]): string[] {
  const flags = POD_NAMESPACE_KINDS.filter((k) => ns[k]).map((k) => `--${k}=${ns[k]}`);
  if (flags.length === 0) throw invalidArgument('namespaces: no namespace path given to enter');
  return [...flags, '--', file, ...args];
}

/** Runs a program inside the given pinned namespaces (nsenter, no shell) and collects its output. */
export async function runInNamespaces(
  ns: PinnedNamespaces,
  file: string,
  args: readonly string[],
  options?: RunOptions,
): Promise<RunResult> {
  return run('nsenter', nsenterArgs(ns, file, args), options);
}

/** Runs a program inside a pinned network namespace. */
export function runInNetns(netnsPath: string, file: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
  return runInNamespaces({ net: netnsPath }, file, args, options);
}

/** Brings the loopback interface up; a fresh network namespace has it down. Idempotent. */
export async function ensureLoopbackUp(netnsPath: string): Promise<void> {
  const args = ['link', 'set', 'lo', 'up'];
  const r = await runInNetns(netnsPath, 'ip', args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw internal(`bringing lo up in ${netnsPath} failed: ${describeFailure('ip', args, r)}`);
}
