// The system calls Node lacks and a pod needs: mount(2), umount2(2), new namespaces pinned at
// files (unshare(2), sethostname(2), loopback up, bind mounts), and a file read from inside
// pinned namespaces (setns(2)). The spawn helper makes them
// (see spawn-helper.ts): a pod's start and teardown used to fork and exec mount(8) twice,
// umount(8) three times and unshare(1) + sh + hostname(1) + ip(8) once, each 5-10 ms of CPU on a
// 2-core node. Without the helper (no perl, CRISP_SPAWN_HELPER=0, an architecture whose numbers
// it is not given) the same work is done by those util-linux programs (and nsenter + cat), with
// the same outcome.
import { spawnHelper, type HelperReply } from './spawn-helper.js';
import { describeFailure, run } from './run.js';

export interface MountRequest {
  /** Filesystem type: overlay, tmpfs... */
  type: string;
  source: string;
  target: string;
  /** mount(8)'s -o words: flags (ro, nosuid...) and the filesystem's own options. */
  options: readonly string[];
  /** The working directory, for filesystems given relative paths (overlay's short links). */
  cwd?: string;
}

type NamespaceKind = 'net' | 'ipc' | 'uts';

export interface PinRequest {
  /** Where each new namespace is pinned (an existing file). */
  files: Partial<Record<NamespaceKind, string>>;
  /** Set in the new UTS namespace. */
  hostname?: string;
}

// mount(8)'s flag words and the MS_* bits they set (true) or clear (false); every other word is
// the filesystem's own and goes to it as data, as mount(8) passes it.
const FLAG_WORDS: Record<string, [number, boolean]> = {
  ro: [0x1, true], rw: [0x1, false],
  nosuid: [0x2, true], suid: [0x2, false],
  nodev: [0x4, true], dev: [0x4, false],
  noexec: [0x8, true], exec: [0x8, false],
  sync: [0x10, true], async: [0x10, false],
  dirsync: [0x80, true],
  noatime: [0x400, true], atime: [0x400, false],
  nodiratime: [0x800, true], diratime: [0x800, false],
  relatime: [0x200000, true], norelatime: [0x200000, false],
  strictatime: [0x1000000, true],
  lazytime: [0x2000000, true], nolazytime: [0x2000000, false],
};

/** mount(8)'s -o words as mount(2) takes them: MS_* flags and the data string. */
export function mountFlagsAndData(options: readonly string[]): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const word of options.flatMap((o) => o.split(','))) {
    if (word === '' || word === 'defaults') continue;
    const flag = FLAG_WORDS[word];
    if (!flag) data.push(word);
    else flags = flag[1] ? flags | flag[0] : flags & ~flag[0];
  }
  return { flags, data: data.join(',') };
}

function helperForCalls() {
  const helper = spawnHelper();
  return helper?.systemCalls ? helper : undefined;
}

const failure = (r: HelperReply) => r.stderr.toString().trim().split('\n').join('; ') || `failed (${r.signal ?? r.code})`;

/** Mounts `req.source` at `req.target`; throws with the kernel's (or mount(8)'s) reason. */
export async function mount(req: MountRequest, helper = helperForCalls()): Promise<void> {
  if (helper) {
    const { flags, data } = mountFlagsAndData(req.options);
    const r = await helper.run({ mode: 'mount', file: req.type, args: [req.source, req.target, String(flags), data], ...(req.cwd !== undefined && { cwd: req.cwd }) });
    if (r.code !== 0) throw new Error(`mount -t ${req.type} ${req.source} ${req.target}: ${failure(r)}`);
    return;
  }
  await mountByCommand(req);
}

export async function mountByCommand(req: MountRequest): Promise<void> {
  const args = ['-t', req.type, ...(req.options.length > 0 ? ['-o', req.options.join(',')] : []), '--', req.source, req.target];
  const r = await run('mount', args, { timeoutMs: 10_000, ...(req.cwd !== undefined && { cwd: req.cwd }) });
  if (r.code !== 0) throw new Error(describeFailure('mount', args, r));
}

/**
 * Unmounts each target once (the topmost mount on it). Returns null when every one succeeded,
 * else why the others failed; callers look at what is still mounted, since a target someone
 * else unmounted first fails here too.
 */
export async function unmount(targets: readonly string[], helper = helperForCalls()): Promise<string | null> {
  if (targets.length === 0) return null;
  if (helper) {
    const r = await helper.run({ mode: 'umount', file: '', args: targets });
    return r.code === 0 ? null : failure(r);
  }
  return unmountByCommand(targets);
}

export async function unmountByCommand(targets: readonly string[]): Promise<string | null> {
  if (targets.length === 0) return null;
  const r = await run('umount', targets);
  return r.code === 0 ? null : describeFailure('umount', targets, r);
}

/**
 * Creates the namespaces named in `req.files` in one new process, sets the hostname in the UTS
 * one and brings loopback up in the network one (a fresh one has lo down), and pins each at its
 * file with a bind mount. Throws with the reason; pins made before a failure stay for the
 * caller to remove.
 */
export async function pinNewNamespaces(req: PinRequest, helper = helperForCalls()): Promise<void> {
  const kinds = kindsOf(req.files);
  if (helper) {
    const r = await helper.run({ mode: 'pin', file: '', args: [req.hostname ?? '', kinds.includes('net') ? '1' : '0', ...namespaceArgs(req.files)], timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`new ${kinds.join('+')} namespaces: ${failure(r)}`);
    return;
  }
  await pinByCommand(req);
}

const kindsOf = (files: Partial<Record<NamespaceKind, string>>) => (Object.keys(files) as NamespaceKind[]).filter((k) => files[k] !== undefined);
/** kind=path for each namespace file given; `prefix` '--' makes them unshare's and nsenter's options. */
const namespaceArgs = (files: Partial<Record<NamespaceKind, string>>, prefix = '') => kindsOf(files).map((k) => `${prefix}${k}=${files[k]}`);

export async function pinByCommand(req: PinRequest): Promise<void> {
  const kinds = kindsOf(req.files);
  const args = [...namespaceArgs(req.files, '--'), '--', ...insideNewNamespaces(req.hostname, kinds.includes('net'))];
  const r = await run('unshare', args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(describeFailure('unshare', args, r));
}

/** What unshare(1) runs inside the new namespaces: the hostname, and lo up, in its own process tree. */
function insideNewNamespaces(hostname: string | undefined, net: boolean): string[] {
  const loUp = ['ip', 'link', 'set', 'lo', 'up'];
  if (hostname === undefined) return net ? loUp : ['true'];
  if (!net) return ['hostname', hostname];
  return ['sh', '-c', 'hostname "$1" && exec ip link set lo up', 'crisp-pin', hostname];
}

// A read of a small procfs or sysfs file: it answers in milliseconds, unless the node is stuck.
const READ_INSIDE_TIMEOUT_MS = 5000;

/**
 * `file` as a process inside the namespaces pinned at `files` reads it: /proc/self/net/dev read
 * in a pod's network namespace lists that namespace's interfaces. Throws with the reason.
 */
export async function readInside(files: Partial<Record<NamespaceKind, string>>, file: string, helper = helperForCalls()): Promise<string> {
  const inside = namespaceArgs(files);
  if (helper) {
    const r = await helper.run({ mode: 'read-inside', file, args: inside, timeoutMs: READ_INSIDE_TIMEOUT_MS });
    if (r.code !== 0) throw new Error(`reading ${file} inside ${inside.join(' ')}: ${failure(r)}`);
    return r.stdout.toString();
  }
  return readInsideByCommand(files, file);
}

export async function readInsideByCommand(files: Partial<Record<NamespaceKind, string>>, file: string): Promise<string> {
  const args = [...namespaceArgs(files, '--'), '--', 'cat', file];
  const r = await run('nsenter', args, { timeoutMs: READ_INSIDE_TIMEOUT_MS });
  if (r.code !== 0) throw new Error(describeFailure('nsenter', args, r));
  return r.stdout;
}
