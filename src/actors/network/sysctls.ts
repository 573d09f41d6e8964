// Pod sysctls: only keys that live in a namespace the pod owns may be set, otherwise a pod
// would change the whole node. Applied by entering the pinned namespaces.

import { internal, invalidArgument } from '../../errors.js';
import { describeFailure } from '../../host/run.js';
import { runInNamespaces, type PinnedNamespaces, type PodNamespaceKind } from './namespaces.js';

export interface Sysctl {
  key: string;
  value: string;
  namespace: PodNamespaceKind;
}

const IPC_EXACT = new Set(['kernel.sem']);
const IPC_PREFIXES = ['kernel.shm', 'kernel.msg', 'fs.mqueue.'];
const UTS_EXACT = new Set(['kernel.hostname', 'kernel.domainname']);

/**
 * The key with `.` as separator. Like sysctl(8), a key whose first separator is `/` uses `/`
 * throughout, and its dots are part of a name (an interface such as `eth0.100`); those dots
 * turn into `/` here, the way the kernel's /proc/sys path spells them.
 */
function dotted(key: string): string {
  const slash = key.indexOf('/');
  const dot = key.indexOf('.');
  if (slash >= 0 && (dot < 0 || slash < dot)) return key.split('/').map((s) => s.replaceAll('.', '/')).join('.');
  return key;
}

/** Which of the pod's namespaces a key belongs to, or undefined when it is node-wide. */
export function sysctlNamespace(key: string): PodNamespaceKind | undefined {
  const k = dotted(key);
  if (k.startsWith('net.')) return 'net';
  if (IPC_EXACT.has(k) || IPC_PREFIXES.some((p) => k.startsWith(p))) return 'ipc';
  if (UTS_EXACT.has(k)) return 'uts';
  return undefined;
}

const KEY_RE = /^[a-z0-9_]+([./][A-Za-z0-9_:@+-]+)+$/;

/**
 * Checks every key is namespaced and its namespace is the pod's own (a host-network pod may
 * not set net.*). invalidArgument names the first offending key.
 */
export function validateSysctls(
  sysctls: Readonly<Record<string, string>>,
  pod: { hostNetwork?: boolean; hostIpc?: boolean; hostUts?: boolean } = {},
): Sysctl[] {
  const out: Sysctl[] = [];
  for (const [key, value] of Object.entries(sysctls)) {
    if (!KEY_RE.test(key) || key.split(/[./]/).some((s) => s === '' || s === '..')) {
      throw invalidArgument(`sysctls: ${JSON.stringify(key)} is not a sysctl name`);
    }
    const namespace = sysctlNamespace(key);
    if (!namespace) throw invalidArgument(`sysctls: ${key} is not namespaced; a pod may only set net.*, IPC (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) and UTS (kernel.hostname, kernel.domainname) sysctls`);
    if (namespace === 'net' && pod.hostNetwork) throw invalidArgument(`sysctls: ${key} needs the pod's own network namespace, but the pod uses the host network`);
    if (namespace === 'ipc' && pod.hostIpc) throw invalidArgument(`sysctls: ${key} needs the pod's own IPC namespace, but the pod uses the host IPC`);
    if (namespace === 'uts' && pod.hostUts) throw invalidArgument(`sysctls: ${key} needs the pod's own UTS namespace, but the pod uses the host's`);
    if (typeof value !== 'string' || /[\n\r\0]/.test(value)) throw invalidArgument(`sysctls: value of ${key} must be a single line`);
    out.push({ key, value, namespace });
  }
  return out;
}

/** Validates and writes the sysctls inside the pod's pinned namespaces (one nsenter + sysctl). */
export async function applySysctls(ns: PinnedNamespaces, sysctls: Readonly<Record<string, string>>): Promise<void> {
  const checked = validateSysctls(sysctls, { hostNetwork: !ns.net, hostIpc: !ns.ipc, hostUts: !ns.uts });
  if (checked.length === 0) return;
  // Enter only the namespaces the keys live in: fewer setns calls, same effect.
  const needed: PinnedNamespaces = {};
  for (const s of checked) needed[s.namespace] = ns[s.namespace];
  const args = ['-w', ...checked.map((s) => `${s.key}=${s.value}`)];
  const r = await runInNamespaces(needed, 'sysctl', args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw internal(`applying sysctls failed: ${describeFailure('sysctl', [], r)}`);
}
