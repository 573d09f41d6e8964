// What a pod's config may say about the node it lands on, checked the same way when
// RunPodSandbox validates the request (machines/sandbox-config.ts) and when the sandbox's
// effects apply it (actors/sandbox, actors/network): hostnames, the namespaces a pod owns and
// which sysctls live in them, the resolv.conf a DNS config renders to, and the host ports and
// bandwidth handed to the CNI plugins. Pure: no files, no processes.
import { isIP } from 'node:net';
import { clip, invalidArgument } from '../errors.js';
import type { PodSandboxConfig__Output } from '../cri/proto/gen/runtime/v1/PodSandboxConfig.js';

export type PodNamespaceKind = 'net' | 'ipc' | 'uts';
export const POD_NAMESPACE_KINDS: readonly PodNamespaceKind[] = ['net', 'ipc', 'uts'];

// Kubernetes hostnames are DNS-1123 labels/subdomains; the kernel caps them at 64 bytes.
const HOSTNAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i;

export function validateHostname(hostname: string, field = 'hostname'): void {
  if (hostname.length === 0 || hostname.length > 64 || !HOSTNAME_RE.test(hostname)) {
    throw invalidArgument(
      `${field} ${JSON.stringify(clip(hostname, 80))} is not a valid hostname (DNS-1123, at most 64 characters)`,
    );
  }
}

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

/** CRI's DNSConfig. */
export interface DnsConfig {
  servers?: readonly string[];
  searches?: readonly string[];
  options?: readonly string[];
}

function checkWords(values: readonly string[] | undefined, field: string): string[] {
  return (values ?? []).map((v, i) => {
    if (typeof v !== 'string' || v === '' || /\s/.test(v) || v.length > 253) {
      throw invalidArgument(`${field}[${i}]: ${JSON.stringify(v)} must be a non-empty word of at most 253 characters`);
    }
    return v;
  });
}

/** resolv.conf for a CRI DNS config; invalidArgument naming the entry when one is malformed. */
const DNS_MAX_SERVERS = 3;
const DNS_MAX_SEARCHES = 32;
const DNS_MAX_SEARCH_CHARS = 2048;

export function renderResolvConf(dns: DnsConfig): string {
  const servers = checkWords(dns.servers, 'dns_config.servers');
  servers.forEach((s, i) => {
    if (!isIP(s)) throw invalidArgument(`dns_config.servers[${i}]: ${JSON.stringify(s)} is not an IP address`);
  });
  const searches = checkWords(dns.searches, 'dns_config.searches');
  const options = checkWords(dns.options, 'dns_config.options');
  // Kubernetes' own limits, to which kubelet trims what it sends (glibc reads 3 nameservers).
  if (servers.length > DNS_MAX_SERVERS) throw invalidArgument(`dns_config.servers: ${servers.length} servers, at most ${DNS_MAX_SERVERS}`);
  if (searches.length > DNS_MAX_SEARCHES) throw invalidArgument(`dns_config.searches: ${searches.length} domains, at most ${DNS_MAX_SEARCHES}`);
  if (searches.join(' ').length > DNS_MAX_SEARCH_CHARS) throw invalidArgument(`dns_config.searches: longer than ${DNS_MAX_SEARCH_CHARS} characters together`);
  if (options.length > DNS_MAX_SEARCHES) throw invalidArgument(`dns_config.options: ${options.length} options, at most ${DNS_MAX_SEARCHES}`);
  const lines: string[] = [];
  if (searches.length > 0) lines.push(`search ${searches.join(' ')}`);
  for (const s of servers) lines.push(`nameserver ${s}`);
  if (options.length > 0) lines.push(`options ${options.join(' ')}`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** One host port, in the shape of the portmap plugin's `portMappings` capability. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  /** Case-insensitive; CRI sends TCP/UDP/SCTP. Default tcp. */
  protocol?: string;
  /** Empty or absent: all host addresses. */
  hostIP?: string;
}

/** The bandwidth plugin's capability, in bits per second and bits. */
export interface BandwidthLimits {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

/** The one rule for a host port mapping's parts, whatever shape names them (CRI's or portmap's). */
function checkPortMapping(
  m: { hostPort: unknown; containerPort: unknown; protocol?: unknown; hostIP?: unknown },
  field: string,
  names: { hostPort: string; containerPort: string; protocol: string; hostIP: string },
): PortMapping {
  const port = (v: unknown, key: string, allowZero: boolean): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) {
      throw invalidArgument(`${field}.${key}: ${JSON.stringify(v)} is not a port number (${allowZero ? 0 : 1}-65535)`);
    }
    return v;
  };
  const hostPort = port(m.hostPort, names.hostPort, true);
  const containerPort = port(m.containerPort, names.containerPort, false);
  const protocol = String(m.protocol ?? 'tcp').toLowerCase();
  if (!PROTOCOLS.has(protocol)) throw invalidArgument(`${field}.${names.protocol}: ${JSON.stringify(m.protocol)} is not TCP, UDP or SCTP`);
  const hostIP = m.hostIP ?? '';
  if (typeof hostIP !== 'string' || (hostIP !== '' && !isIP(hostIP))) throw invalidArgument(`${field}.${names.hostIP}: ${JSON.stringify(hostIP)} is not an IP address`);
  return { hostPort, containerPort, protocol, ...(hostIP ? { hostIP } : {}) };
}

type PortNames = Parameters<typeof checkPortMapping>[2];
const CRI_NAMES = { hostPort: 'host_port', containerPort: 'container_port', protocol: 'protocol', hostIP: 'host_ip' };
const PORTMAP_NAMES = { hostPort: 'hostPort', containerPort: 'containerPort', protocol: 'protocol', hostIP: 'hostIP' };

/**
 * Port mappings checked (InvalidArgument names `field[i]` and the part, by `names`) and in the
 * portmap plugin's shape. Mappings without a host port only declare a container port (kubelet
 * sends those too) and need no forwarding, so they are left out.
 */
export function forwardedPorts(mappings: readonly Parameters<typeof checkPortMapping>[0][], field = 'portMappings', names: PortNames = PORTMAP_NAMES): PortMapping[] {
  return mappings.map((m, i) => checkPortMapping(m, `${field}[${i}]`, names)).filter((m) => m.hostPort > 0);
}

/** The pod's port mappings, forwarded ones only, checked with CRI's field names. */
export function portMappingsOf(config: PodSandboxConfig__Output): PortMapping[] {
  const mappings = (config.port_mappings ?? []).map((p) => ({ hostPort: p.host_port, containerPort: p.container_port, protocol: p.protocol ?? 'TCP', hostIP: p.host_ip }));
  return forwardedPorts(mappings, 'config.port_mappings', CRI_NAMES);
}

/** The one rule for the bandwidth plugin's limits: non-negative integers. */
export function checkBandwidth(b: BandwidthLimits, field = 'bandwidth'): BandwidthLimits {
  const out: BandwidthLimits = {};
  for (const key of ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'] as const) {
    const v = b[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalidArgument(`${field}.${key}: ${JSON.stringify(v)} must be a non-negative integer`);
    out[key] = v;
  }
  return out;
}

const INGRESS_ANNOTATION = 'kubernetes.io/ingress-bandwidth';
const EGRESS_ANNOTATION = 'kubernetes.io/egress-bandwidth';
const QUANTITY_RE = /^(\d+(?:\.\d+)?)(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const MULTIPLIER: Record<string, number> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};
// kubelet's own bounds for the bandwidth annotations: 1 kbit/s to 1 Pbit/s.
const MIN_RATE = 1e3;
const MAX_RATE = 1e15;

function parseRate(value: string, field: string): number {
  const m = QUANTITY_RE.exec(value.trim());
  if (!m) throw invalidArgument(`${field}: ${JSON.stringify(value)} is not a quantity such as 10M or 1Gi`);
  const rate = Math.round(Number(m[1]) * MULTIPLIER[m[2] ?? '']!);
  if (rate < MIN_RATE || rate > MAX_RATE) throw invalidArgument(`${field}: ${value} is outside 1k..1P bits per second`);
  return rate;
}

/** The bandwidth plugin's limits from kubelet's annotations, or undefined when none is set. */
export function bandwidthOf(config: PodSandboxConfig__Output): BandwidthLimits | undefined {
  const annotations = config.annotations ?? {};
  const ingress = annotations[INGRESS_ANNOTATION];
  const egress = annotations[EGRESS_ANNOTATION];
  if (ingress === undefined && egress === undefined) return undefined;
  // The burst is not limited, as kubelet does it.
  const burst = 2 ** 31 - 1;
  return checkBandwidth({
    ...(ingress !== undefined ? { ingressRate: parseRate(ingress, `annotations[${INGRESS_ANNOTATION}]`), ingressBurst: burst } : {}),
    ...(egress !== undefined ? { egressRate: parseRate(egress, `annotations[${EGRESS_ANNOTATION}]`), egressBurst: burst } : {}),
  });
}
