// The files a pod's containers get bind-mounted as /etc/hostname, /etc/hosts and
// /etc/resolv.conf, and the pod's own /dev/shm.

import { copyFileSync, mkdirSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { internal, invalidArgument, messageOf } from '../../errors.js';
import { mount } from '../../host/syscalls.js';
import { unmountOwn } from '../../host/mounts.js';
import { removeIfPresent } from '../../host/files.js';
import { ownMountAt } from '../../host/mountinfo.js';
import { renderResolvConf, validateHostname, type DnsConfig } from '../../machines/pod-rules.js';

const HOST_RESOLV_CONF = '/etc/resolv.conf';
const HOST_HOSTS_FILE = '/etc/hosts';

export function isEmptyDnsConfig(dns: DnsConfig | undefined): boolean {
  return !dns || ((dns.servers?.length ?? 0) === 0 && (dns.searches?.length ?? 0) === 0 && (dns.options?.length ?? 0) === 0);
}

/** /etc/hosts of a pod with its own network: loopback names, then each pod IP with the hostname. */
export function renderHosts(hostname: string, podIps: readonly string[]): string {
  validateHostname(hostname);
  podIps.forEach((ip, i) => {
    if (!isIP(ip)) throw invalidArgument(`podIps[${i}]: ${JSON.stringify(ip)} is not an IP address`);
  });
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
    ...podIps.map((ip) => `${ip}\t${hostname}`),
  ];
  return `${lines.join('\n')}\n`;
}

export interface PodFilesOptions {
  /** The sandbox's directory; the files are written into it. */
  dir: string;
  hostname: string;
  /** The pod's addresses, as CNI returned them (empty for host-network pods). */
  podIps: readonly string[];
  dnsConfig?: DnsConfig;
  /** Host-network pods get the node's hosts file. */
  hostNetwork?: boolean;
  /** Copied when the DNS config is empty; default /etc/resolv.conf. */
  hostResolvConf?: string;
  /** Copied for host-network pods; default /etc/hosts. */
  hostHostsFile?: string;
}

export interface PodFiles {
  hostname: string;
  hosts: string;
  resolvConf: string;
}

async function writeAtomically(path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, content, { mode: 0o644 });
  renameSync(tmp, path);
}

async function copyAtomically(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp`;
  copyFileSync(from, tmp);
  renameSync(tmp, to);
}

/**
 * Writes hostname, hosts and resolv.conf into `dir`. Everything is validated before the
 * first file is written; rewriting is allowed (idempotent).
 */
export async function writePodFiles(options: PodFilesOptions): Promise<PodFiles> {
  validateHostname(options.hostname);
  const resolvConf = isEmptyDnsConfig(options.dnsConfig) ? undefined : renderResolvConf(options.dnsConfig!);
  const hosts = options.hostNetwork ? undefined : renderHosts(options.hostname, options.podIps);
  mkdirSync(options.dir, { recursive: true, mode: 0o755 });
  const files: PodFiles = {
    hostname: join(options.dir, 'hostname'),
    hosts: join(options.dir, 'hosts'),
    resolvConf: join(options.dir, 'resolv.conf'),
  };
  await writeAtomically(files.hostname, `${options.hostname}\n`);
  if (hosts !== undefined) await writeAtomically(files.hosts, hosts);
  else await copyAtomically(options.hostHostsFile ?? HOST_HOSTS_FILE, files.hosts);
  if (resolvConf !== undefined) await writeAtomically(files.resolvConf, resolvConf);
  else await copyAtomically(options.hostResolvConf ?? HOST_RESOLV_CONF, files.resolvConf);
  return files;
}

/** Removes the files writePodFiles made. Idempotent. */
export async function removePodFiles(dir: string): Promise<void> {
  for (const name of ['hostname', 'hosts', 'resolv.conf']) {
    removeIfPresent(join(dir, name));
    removeIfPresent(join(dir, `${name}.tmp`));
  }
}

const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/**
 * Mounts a tmpfs for the pod's /dev/shm at `path` (created if missing). A tmpfs already
 * mounted there is taken as this acquire's earlier success.
 */
export async function mountPodShm(path: string, options: { sizeBytes?: number } = {}): Promise<void> {
  const size = options.sizeBytes ?? DEFAULT_SHM_SIZE;
  if (!Number.isSafeInteger(size) || size <= 0) throw invalidArgument(`shm size: ${JSON.stringify(size)} must be a positive number of bytes`);
  mkdirSync(path, { recursive: true, mode: 0o755 });
  if (ownMountAt(path) === 'tmpfs') return;
  try {
    await mount({ type: 'tmpfs', source: 'shm', target: path, options: ['rw', 'nosuid', 'nodev', 'noexec', 'mode=1777', `size=${size}`] });
  } catch (err) {
    throw internal(`mounting the pod's shm at ${path} failed: ${messageOf(err)}`, err);
  }
}

/** Unmounts the pod's shm and removes the mount point. Idempotent. */
export async function unmountPodShm(path: string): Promise<void> {
  await unmountOwn(path);
  try {
    rmdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
