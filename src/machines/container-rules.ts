// The rules CreateContainer's request is checked by that the spec builder applies again: CRI
// mounts (bind and image mounts, their propagation and options), the seccomp request, capability
// names. Pure: no file is touched, so machines/ can hold them beside pod-rules.ts.
import path from 'node:path';
import { invalidArgument, unimplemented } from '../errors.js';
import type { Mount__Output } from '../cri/proto/gen/runtime/v1/Mount.js';

// ---- mounts ----------------------------------------------------------------------------------

export interface PreparedMount {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  propagation: 'rprivate' | 'rslave' | 'rshared';
  /** Read-only all the way down: submounts of the source too (the runtime's `rro`). */
  recursiveReadOnly?: boolean;
  /** mount_options the caller gave (only the bind-mount flags crisp honours get through validation). */
  options?: string[];
  /** An image volume (Mount.image): hostPath is filled in from where the image is mounted. */
  image?: { name: string; subPath: string };
}

const PROPAGATION: Record<string, PreparedMount['propagation']> = {
  PROPAGATION_PRIVATE: 'rprivate',
  PROPAGATION_HOST_TO_CONTAINER: 'rslave',
  PROPAGATION_BIDIRECTIONAL: 'rshared',
};

/** An absolute path, normalized, without a trailing slash; `field` names it in the error. */
export function cleanAbsolute(value: string, field: string): string {
  if (!value.startsWith('/')) throw invalidArgument(`${field}: must be an absolute path, got "${value}"`);
  return path.posix.normalize(value).replace(/(.)\/+$/, '$1');
}

/** Checks one CRI mount and maps it to our shape, without touching the filesystem. */
export function validateCriMount(m: Mount__Output, i: number): PreparedMount {
  const at = `mounts[${i}]`;
  const containerPath = cleanAbsolute(m.container_path, `${at}.container_path`);
  if (containerPath === '/') throw invalidArgument(`${at}.container_path: cannot mount over the root filesystem`);
  if (m.uidMappings.length > 0 || m.gidMappings.length > 0) {
    throw unimplemented(`${at}: id-mapped mounts (uidMappings/gidMappings) are not supported`);
  }
  const imageName = m.image?.image.trim() ?? '';
  if (imageName !== '') return validateImageMount(m, at, containerPath, imageName);
  if (m.image_sub_path) throw invalidArgument(`${at}.image_sub_path: only an image mount has a sub path`);
  const hostPath = cleanAbsolute(m.host_path, `${at}.host_path`);
  const propagation = PROPAGATION[m.propagation];
  if (!propagation) throw invalidArgument(`${at}.propagation: unknown value "${m.propagation}"`);
  if (m.recursive_read_only) {
    // As the CRI defines it: a read-only mount whose submounts cannot be made shared or slave.
    if (!m.readonly) throw invalidArgument(`${at}.recursive_read_only: needs readonly to be set too`);
    if (propagation !== 'rprivate') throw invalidArgument(`${at}.recursive_read_only: needs propagation PROPAGATION_PRIVATE, got ${m.propagation}`);
  }
  const options = validateMountOptions(m.mount_options ?? [], m.readonly, at);
  const readonly = m.readonly || (m.mount_options ?? []).includes('ro');
  return { containerPath, hostPath, readonly, propagation, ...(m.recursive_read_only && { recursiveReadOnly: true }), ...(options.length && { options }) };
}

/**
 * An image volume (KEP-4639): the image's root filesystem, or a directory of it (image_sub_path),
 * read-only at container_path. The host path is where crisp mounts the image, known only later.
 */
function validateImageMount(m: Mount__Output, at: string, containerPath: string, name: string): PreparedMount {
  if (m.host_path !== '') throw invalidArgument(`${at}.host_path: an image mount takes no host path (got ${JSON.stringify(m.host_path)})`);
  if (m.recursive_read_only) throw invalidArgument(`${at}.recursive_read_only: an image mount is read-only by nature and has no submounts`);
  const subPath = imageSubPath(m.image_sub_path, `${at}.image_sub_path`);
  const options = validateMountOptions(m.mount_options ?? [], true, at);
  const propagation = PROPAGATION[m.propagation];
  if (propagation !== 'rprivate') throw invalidArgument(`${at}.propagation: an image mount is private, got ${m.propagation}`);
  return { containerPath, hostPath: '', readonly: true, propagation, image: { name, subPath }, ...(options.length && { options }) };
}

/** image_sub_path: relative, and never above the image's root. */
export function imageSubPath(value: string, field: string): string {
  if (value === '') return '';
  if (value.startsWith('/')) throw invalidArgument(`${field}: ${JSON.stringify(value)} must be relative to the image's root`);
  const clean = path.posix.normalize(value).replace(/\/+$/, '');
  if (clean === '..' || clean.startsWith('../')) throw invalidArgument(`${field}: ${JSON.stringify(value)} leads out of the image`);
  return clean === '.' ? '' : clean;
}

// The mount_options a bind mount can honour: flags runc and crun apply when they remount the bind.
// Filesystem options (size=, mode=, uid=...) mean nothing for a bind, and propagation has its own field.
const BIND_MOUNT_OPTIONS = new Set(['ro', 'rw', 'nosuid', 'suid', 'nodev', 'dev', 'noexec', 'exec', 'noatime', 'atime', 'relatime', 'norelatime', 'strictatime', 'nostrictatime', 'nodiratime', 'diratime']);

/** Checks mount_options: what crisp cannot honour is refused by name, never dropped. */
function validateMountOptions(options: string[], readonly: boolean, at: string): string[] {
  options.forEach((option, j) => {
    if (!BIND_MOUNT_OPTIONS.has(option)) {
      throw invalidArgument(`${at}.mount_options[${j}]: ${JSON.stringify(option)} is not supported for a bind mount (supported: ${[...BIND_MOUNT_OPTIONS].join(', ')})`);
    }
    if (option === 'rw' && readonly) throw invalidArgument(`${at}.mount_options[${j}]: "rw" contradicts readonly`);
  });
  return [...new Set(options.filter((o) => o !== 'ro' && o !== 'rw'))];
}

// ---- seccomp ---------------------------------------------------------------------------------

/** What the CRI request asks for, after folding the legacy seccomp_profile_path into the typed field. */
export type SeccompChoice =
  | { kind: 'runtime-default' }
  | { kind: 'unconfined' }
  | { kind: 'localhost'; path: string };

export interface SeccompRequest {
  seccomp: { profile_type: string; localhost_ref: string } | null;
  seccomp_profile_path: string;
}

/**
 * Reads the container's seccomp request. The typed `seccomp` field wins over the legacy
 * `seccomp_profile_path`; with neither, `whenEmpty` decides.
 */
export function seccompChoice(req: SeccompRequest | null, whenEmpty: 'runtime-default' | 'unconfined'): SeccompChoice {
  const typed = req?.seccomp;
  if (typed) {
    switch (typed.profile_type) {
      case 'RuntimeDefault':
        return { kind: 'runtime-default' };
      case 'Unconfined':
        return { kind: 'unconfined' };
      case 'Localhost':
        if (!typed.localhost_ref.startsWith('/')) {
          throw invalidArgument(`seccomp.localhost_ref: must be an absolute path, got "${typed.localhost_ref}"`);
        }
        return { kind: 'localhost', path: typed.localhost_ref };
      default:
        throw invalidArgument(`seccomp.profile_type: unknown value "${typed.profile_type}"`);
    }
  }
  const legacy = req?.seccomp_profile_path ?? '';
  if (legacy === '') return { kind: whenEmpty };
  if (legacy === 'runtime/default' || legacy === 'docker/default') return { kind: 'runtime-default' };
  if (legacy === 'unconfined') return { kind: 'unconfined' };
  if (legacy.startsWith('localhost/')) {
    const path = legacy.slice('localhost/'.length);
    if (!path.startsWith('/') || path === '/') {
      throw invalidArgument(`seccomp_profile_path: "${legacy}" must name an absolute path after localhost/`);
    }
    return { kind: 'localhost', path };
  }
  throw invalidArgument(
    `seccomp_profile_path: unknown value "${legacy}" (expected runtime/default, docker/default, unconfined or localhost/<path>)`,
  );
}

// ---- capabilities ----------------------------------------------------------------------------

/** Capability names by number (linux/capability.h), up to CAP_LAST_CAP of Linux 5.9+. */
export const KNOWN_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` all name CAP_NET_ADMIN; unknown names are rejected. */
export function normalizeCapability(name: string, field: string): string {
  const upper = name.trim().toUpperCase();
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!KNOWN_CAPABILITIES.includes(full)) {
    throw invalidArgument(`${field}: unknown capability "${name}"`);
  }
  return full;
}
