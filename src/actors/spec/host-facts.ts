// The host facts spec generation depends on, read once (and refreshable) so generateSpec stays pure.

import { access, lstat, readdir, readFile, statfs } from 'node:fs/promises';
import { release } from 'node:os';
import path from 'node:path';
import { failedPrecondition } from '../../errors.js';
import { parseProcCgroup } from '../monitor/cgroups.js';
import { capabilitiesFromMask } from './capabilities.js';
import type { HostDevice, HostFacts } from './input.js';
import { goArch } from './seccomp.js';

const DEFAULT_SECCOMP_PROFILE_PATH = '/usr/share/containers/seccomp.json';
const CGROUP2_SUPER_MAGIC = 0x63677270;

// Directories of /dev that hold per-mount-namespace or virtual nodes a container gets its own of.
const SKIPPED_DEV_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);
// The host console belongs to the host; runc makes the container's own.
const SKIPPED_DEV_FILES = new Set(['console']);

const exists = (p: string) => access(p).then(() => true, () => false);

async function readOptional(p: string): Promise<string | undefined> {
  try {
    return await readFile(p, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Splits a Linux dev_t into major/minor (the glibc encoding). */
export function splitDevNumber(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/** Character and block devices under devDir (recursively), as a privileged container gets them. */
export async function listHostDevices(devDir = '/dev'): Promise<HostDevice[]> {
  const out: HostDevice[] = [];
  const walk = async (dir: string, top: boolean): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES') return;
      throw err;
    }
    for (const name of names.sort()) {
      const full = path.join(dir, name);
      let info;
      try {
        info = await lstat(full, { bigint: true });
      } catch {
        continue; // a node that vanished while we walked
      }
      if (info.isDirectory()) {
        if (!(top && SKIPPED_DEV_DIRS.has(name))) await walk(full, false);
        continue;
      }
      if (top && SKIPPED_DEV_FILES.has(name)) continue;
      if (!info.isCharacterDevice() && !info.isBlockDevice()) continue;
      const { major, minor } = splitDevNumber(info.rdev);
      out.push({
        path: path.join('/dev', path.relative(devDir, full)),
        type: info.isCharacterDevice() ? 'c' : 'b',
        major,
        minor,
        fileMode: Number(info.mode & 0o7777n),
        uid: Number(info.uid),
        gid: Number(info.gid),
      });
    }
  };
  await walk(devDir, true);
  return out;
}

async function detectSwapAccounting(cgroupVersion: 1 | 2): Promise<boolean> {
  if (cgroupVersion === 1) return exists('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes');
  // The root cgroup has no memory.swap.max, so look where processes actually live.
  const own = parseProcCgroup((await readOptional('/proc/self/cgroup')) ?? '').find((m) => m.controllers.length === 0)?.path;
  if (own && own !== '/' && (await exists(path.join('/sys/fs/cgroup', own, 'memory.swap.max')))) return true;
  const children = await readdir('/sys/fs/cgroup', { withFileTypes: true }).catch(() => []);
  for (const child of children) {
    if (child.isDirectory() && (await exists(path.join('/sys/fs/cgroup', child.name, 'memory.swap.max')))) return true;
  }
  return false;
}

export interface HostFactsOptions {
  seccompProfilePath?: string;
  devDir?: string;
}

export async function readHostFacts(options: HostFactsOptions = {}): Promise<HostFacts> {
  const seccompPath = options.seccompProfilePath ?? DEFAULT_SECCOMP_PROFILE_PATH;
  const status = (await readFile('/proc/self/status', 'utf8')).match(/^CapBnd:\s*([0-9a-f]+)$/m)?.[1] ?? '0';
  const cgroupVersion: 1 | 2 = (await statfs('/sys/fs/cgroup')).type === CGROUP2_SUPER_MAGIC ? 2 : 1;
  const seccompText = await readOptional(seccompPath);
  let defaultSeccompProfile: unknown = null;
  if (seccompText !== undefined) {
    try {
      defaultSeccompProfile = JSON.parse(seccompText);
    } catch (err) {
      throw failedPrecondition(`default seccomp profile ${seccompPath} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const controllers = (await readOptional('/sys/fs/cgroup/cgroup.controllers')) ?? '';
  const [cgroupNamespace, apparmor, selinux, swapAccounting, hugetlbV1, oomText, devices, cpus, mems] = await Promise.all([
    exists('/proc/self/ns/cgroup'),
    readOptional('/sys/module/apparmor/parameters/enabled').then((v) => v?.trim() === 'Y'),
    exists('/sys/fs/selinux/enforce'),
    detectSwapAccounting(cgroupVersion),
    exists('/sys/fs/cgroup/hugetlb'),
    readFile('/proc/self/oom_score_adj', 'utf8'),
    listHostDevices(options.devDir ?? '/dev'),
    readOptional('/sys/devices/system/cpu/online'),
    // A kernel without NUMA has no node directory: its memory is node 0.
    readOptional('/sys/devices/system/node/online').then((v) => v ?? '0'),
  ]);
  return {
    capabilities: capabilitiesFromMask(status),
    cgroupVersion,
    cgroupNamespace,
    defaultSeccompProfile,
    oomScoreAdj: Number(oomText.trim()),
    apparmor,
    selinux,
    swapAccounting,
    hugetlb: cgroupVersion === 2 ? controllers.split(/\s+/).includes('hugetlb') : hugetlbV1,
    arch: goArch(process.arch),
    kernelRelease: release(),
    devices,
    ...(cpus !== undefined && { cpus: cpus.trim() }),
    mems: mems.trim(),
  };
}
