// Runs a CNI network config list against a pod's network namespace, following the CNI spec
// and libcni: ADD through the chain handing each plugin the previous result, DEL in reverse
// with the cached result, CHECK, GC and STATUS; runtimeConfig filtered by each plugin's
// capabilities; the attachment cached on disk so DEL works after a restart.

import { statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { alreadyExists, failedPrecondition, internal, invalidArgument, messageOf, notFound, unavailable } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import type { CrispConfig } from '../../config/schema.js';
import {
  type CachedAttachment,
  CNI_CACHE_KIND,
  decodeConfig,
  encodeConfig,
  listCachedAttachments,
  readCachedAttachment,
  removeCachedAttachment,
  writeCachedAttachment,
} from './cni-cache.js';
import {
  CNI_NAME_RE,
  type CniNetworkConfig,
  type CniPluginConfig,
  DEFAULT_PLUGIN_DIRS,
  findPlugin,
  loadNetworkConfig,
  parseNetworkConfig,
  versionAtLeast,
} from './cni-config.js';
import { type PodIp, podIpsFromResult } from './cni-result.js';
import { run } from '../../host/run.js';
import { ensureLoopbackUp } from './namespaces.js';
import { checkBandwidth, forwardedPorts, type BandwidthLimits, type PortMapping } from '../../machines/pod-rules.js';

export interface PodIdentity {
  namespace: string;
  name: string;
  uid: string;
}

export interface AttachmentRequest {
  /** The sandbox id (CNI_CONTAINERID). */
  containerId: string;
  netnsPath: string;
  ifName?: string;
  pod: PodIdentity;
  portMappings?: readonly PortMapping[];
  bandwidth?: BandwidthLimits;
  /** Further capability args (e.g. `io.kubernetes.cri.pod-annotations`), passed to plugins that ask. */
  capabilityArgs?: Record<string, unknown>;
}

export interface DetachRequest {
  containerId: string;
  /** Used when nothing is cached; the cached value wins otherwise. */
  netnsPath?: string;
  ifName?: string;
  pod?: PodIdentity;
  /**
   * The pod's network namespace no longer exists (a reboot, an unmount): DEL runs with an empty
   * CNI_NETNS, as the spec allows, so plugins release what lives outside it (IP leases, host
   * rules) instead of failing to enter a file that is no namespace any more.
   */
  netnsGone?: boolean;
}

export interface PodNetworkStatus {
  networkName: string;
  ifName: string;
  ips: PodIp[];
  /** The raw result of the chain. */
  result: Record<string, unknown>;
}

export interface GcAttachment {
  containerId: string;
  ifName?: string;
}

export interface CniRunnerOptions {
  /** Directory with the network config (e.g. /etc/cni/net.d). */
  confDir: string;
  /** Where plugin binaries are looked up, in order. */
  pluginDirs?: readonly string[];
  /** Attachment cache (libcni uses /var/lib/cni); entries go to `<cacheDir>/results`. */
  cacheDir: string;
  logger?: Logger;
  /** A plugin still running after this long is killed and the operation fails. */
  pluginTimeoutMs?: number;
  /** Bring `lo` up in the netns before the chain runs (default true). */
  loopback?: boolean;
}

export const DEFAULT_IFNAME = 'eth0';

type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';

interface Invocation {
  containerId: string;
  netnsPath: string;
  ifName: string;
  cniArgs: [string, string][];
}

/** CNI_ARGS pairs as CRI runtimes send them; plugins ignore the keys they do not know. */
export function buildCniArgs(pod: PodIdentity, infraContainerId: string): [string, string][] {
  const pairs: [string, string][] = [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAMESPACE', pod.namespace],
    ['K8S_POD_NAME', pod.name],
    ['K8S_POD_INFRA_CONTAINER_ID', infraContainerId],
    ['K8S_POD_UID', pod.uid],
  ];
  for (const [key, value] of pairs) {
    if (/[;=\s]/.test(value)) throw invalidArgument(`${cniArgField(key)}: ${JSON.stringify(value)} may not contain ";", "=" or whitespace`);
  }
  return pairs;
}

function cniArgField(key: string): string {
  return (
    { K8S_POD_NAMESPACE: 'pod.namespace', K8S_POD_NAME: 'pod.name', K8S_POD_UID: 'pod.uid', K8S_POD_INFRA_CONTAINER_ID: 'containerId' }[key] ?? key
  );
}

export function formatCniArgs(pairs: readonly (readonly [string, string])[]): string {
  return pairs.map(([k, v]) => `${k}=${v}`).join(';');
}

const IFNAME_RE = /^[a-zA-Z0-9_.-]{1,15}$/;

function checkIds(containerId: string, ifName: string): void {
  if (!CNI_NAME_RE.test(containerId)) {
    throw invalidArgument(`containerId: ${JSON.stringify(containerId)} may hold only letters, digits, "_", "." and "-"`);
  }
  if (!IFNAME_RE.test(ifName) || ifName === '.' || ifName === '..') {
    throw invalidArgument(`ifName: ${JSON.stringify(ifName)} is not a valid interface name (1-15 of [A-Za-z0-9_.-])`);
  }
}

/** The stdin of one plugin: its entry plus the list's name and version, prevResult, runtimeConfig. */
export function pluginStdin(
  network: Pick<CniNetworkConfig, 'name' | 'cniVersion'>,
  plugin: CniPluginConfig,
  prevResult: Record<string, unknown> | undefined,
  capabilityArgs: Record<string, unknown>,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: network.name, cniVersion: network.cniVersion };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && capabilityArgs[cap] !== undefined) runtimeConfig[cap] = capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  return conf;
}

/** A plugin that ran and failed (as opposed to one that could not be run). */
class PluginFailure extends Error {}

export class CniRunner {
  readonly confDir: string;
  readonly pluginDirs: readonly string[];
  readonly cacheDir: string;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly loopback: boolean;
  private loaded: CniNetworkConfig | undefined;
  /** The config dir's and the loaded file's identity and mtime when it was loaded. */
  private loadedStamp: string | undefined;
  private readonly pluginPaths = new Map<string, string>();

  constructor(options: CniRunnerOptions) {
    this.confDir = options.confDir;
    this.pluginDirs = options.pluginDirs ?? DEFAULT_PLUGIN_DIRS;
    this.cacheDir = options.cacheDir;
    this.log = options.logger ?? silentLogger;
    this.timeoutMs = options.pluginTimeoutMs ?? 60_000;
    this.loopback = options.loopback ?? true;
  }

  /** The network config in effect, loaded (and its plugins located) on first use. */
  async network(): Promise<CniNetworkConfig> {
    return this.loaded ?? this.reload();
  }

  /**
   * Re-reads the config dir when it changed (a file added, removed, renamed or edited, as the
   * dir's and the file's mtimes say); fails if a plugin binary is missing. Every pod asks, so an
   * unchanged config costs two stats rather than a directory read, a file read and a parse.
   */
  async reload(): Promise<CniNetworkConfig> {
    if (this.loaded && this.loadedStamp !== undefined && this.stampOf(this.loaded.source) === this.loadedStamp) return this.loaded;
    const config = await loadNetworkConfig(this.confDir);
    for (const [i, p] of config.plugins.entries()) {
      try {
        await this.pluginPath(p.type);
      } catch (err) {
        throw failedPrecondition(`CNI config ${config.source}: plugins[${i}].type: ${messageOf(err)}`);
      }
    }
    this.loaded = config;
    this.loadedStamp = this.stampOf(config.source);
    return config;
  }

  private stampOf(file: string): string | undefined {
    try {
      // Two stats of local files: synchronous, as the thread pool's round trip costs far more.
      const dir = statSync(this.confDir, { bigint: true });
      const conf = statSync(file, { bigint: true });
      return `${dir.ino}:${dir.mtimeNs}:${conf.ino}:${conf.mtimeNs}:${conf.size}`;
    } catch {
      return undefined; // gone: load again, and say why
    }
  }

  /** Attaches the pod's netns to the network. On failure nothing of the attachment remains. */
  async add(req: AttachmentRequest): Promise<PodNetworkStatus> {
    const ifName = req.ifName ?? DEFAULT_IFNAME;
    checkIds(req.containerId, ifName);
    if (!isAbsolute(req.netnsPath)) throw invalidArgument(`netnsPath: ${JSON.stringify(req.netnsPath)} must be an absolute path`);
    const cniArgs = buildCniArgs(req.pod, req.containerId);
    const capabilityArgs: Record<string, unknown> = { ...req.capabilityArgs };
    // The same rules the pod's config was checked by (machines/pod-rules.ts), for every caller of the driver.
    const ports = forwardedPorts(req.portMappings ?? []);
    if (ports.length > 0) capabilityArgs.portMappings = ports;
    if (req.bandwidth !== undefined) capabilityArgs.bandwidth = checkBandwidth(req.bandwidth);

    const network = await this.network();
    const existing = (await listCachedAttachments(this.cacheDir, req.containerId)).find((c) => c.ifName === ifName);
    if (existing) {
      // Overwriting it would lose what DEL needs to release the earlier attempt.
      throw alreadyExists(`CNI attachment of ${req.containerId} (${ifName}) exists on network ${existing.networkName}; DEL it first`);
    }
    if (this.loopback) await ensureLoopbackUp(req.netnsPath);

    const inv: Invocation = { containerId: req.containerId, netnsPath: req.netnsPath, ifName, cniArgs };
    const entry: CachedAttachment = {
      kind: CNI_CACHE_KIND,
      containerId: req.containerId,
      config: encodeConfig(network.bytes),
      ifName,
      networkName: network.name,
      netns: req.netnsPath,
      cniArgs,
      capabilityArgs,
      addComplete: false,
    };
    await writeCachedAttachment(this.cacheDir, entry);

    let result: Record<string, unknown> | undefined;
    for (const plugin of network.plugins) {
      try {
        const next = await this.invokeForResult(network, plugin, 'ADD', inv, result, capabilityArgs);
        if (next === undefined) throw new PluginFailure('returned no result');
        result = next;
      } catch (err) {
        const reason = messageOf(err);
        const message = `CNI plugin ${plugin.type} of network ${network.name} failed ADD for ${req.containerId}: ${reason}`;
        this.log.warn({ containerId: req.containerId, plugin: plugin.type, err: reason }, 'CNI ADD failed; deleting the partial attachment');
        // The cache already holds the result of the last plugin that succeeded, for a retry.
        try {
          await this.delWith(network, inv, result, capabilityArgs);
        } catch (delErr) {
          throw internal(`${message}; cleaning up with DEL also failed (kept in the cache for a retry): ${messageOf(delErr)}`, err);
        }
        throw internal(message, err);
      }
      entry.result = result;
      // Progress on disk, so DEL after a crash here hands later plugins what they need.
      if (plugin !== network.plugins.at(-1)) await writeCachedAttachment(this.cacheDir, entry);
    }
    entry.addComplete = true;
    await writeCachedAttachment(this.cacheDir, entry);
    const final = result ?? {};
    const status = { networkName: network.name, ifName, ips: podIpsFromResult(final), result: final };
    this.log.debug({ containerId: req.containerId, ips: status.ips.map((p) => p.ip) }, 'CNI ADD done');
    return status;
  }

  /**
   * Detaches the pod. Uses the cached config, arguments and result of the ADD when there is
   * one (libcni behaviour, and what makes DEL work after a restart or a config change).
   * Idempotent: DEL of something never added or already deleted succeeds. Every plugin gets
   * its DEL even if an earlier one failed; the cache entry is kept for a retry then.
   */
  async del(req: DetachRequest): Promise<void> {
    const ifName = req.ifName ?? DEFAULT_IFNAME;
    checkIds(req.containerId, ifName);
    // The cache is looked up across networks: DEL must work after the config was renamed,
    // replaced or removed since the ADD.
    let cached: CachedAttachment[] = [];
    try {
      cached = (await listCachedAttachments(this.cacheDir, req.containerId)).filter((c) => c.ifName === ifName);
    } catch (err) {
      this.log.warn({ containerId: req.containerId, err: messageOf(err) }, 'unreadable CNI cache; DEL with the current config');
    }
    if (cached.length > 0) {
      for (const entry of cached) await this.delCached(req.netnsGone ? { ...entry, netns: '' } : entry);
      return;
    }
    const current = await this.network();
    const inv: Invocation = {
      containerId: req.containerId,
      netnsPath: req.netnsGone ? '' : (req.netnsPath ?? ''),
      ifName,
      cniArgs: req.pod ? buildCniArgs(req.pod, req.containerId) : [['IgnoreUnknown', '1'], ['K8S_POD_INFRA_CONTAINER_ID', req.containerId]],
    };
    await this.delWith(current, inv, undefined, {});
  }

  /**
   * DEL of one cache entry with the config, arguments and result its ADD recorded, then the
   * entry's removal: for callers that found the entry in the cache themselves (the start-up
   * leak sweep). `netnsGone` as in DetachRequest. Idempotent.
   */
  async delCachedAttachment(entry: CachedAttachment, o: { netnsGone?: boolean } = {}): Promise<void> {
    checkIds(entry.containerId, entry.ifName);
    await this.delCached(o.netnsGone ? { ...entry, netns: '' } : entry);
    // The entry's own file name, in case the config inside it names the network differently.
    await removeCachedAttachment(this.cacheDir, entry.networkName, entry.containerId, entry.ifName);
  }

  private async delCached(cached: CachedAttachment): Promise<void> {
    const network = parseNetworkConfig(decodeConfig(cached.config), `cache entry ${cached.networkName}-${cached.containerId}-${cached.ifName}`);
    const inv: Invocation = {
      containerId: cached.containerId,
      netnsPath: cached.netns ?? '',
      ifName: cached.ifName,
      cniArgs: cached.cniArgs ?? [],
    };
    await this.delWith(network, inv, cached.result, cached.capabilityArgs ?? {});
  }

  private async delWith(
    network: CniNetworkConfig,
    inv: Invocation,
    cachedResult: Record<string, unknown> | undefined,
    capabilityArgs: Record<string, unknown>,
  ): Promise<void> {
    // Spec 0.4.0 introduced prevResult on DEL; older plugins would reject it.
    const prev = versionAtLeast(network.cniVersion, '0.4.0') ? cachedResult : undefined;
    const failures: string[] = [];
    for (const plugin of [...network.plugins].reverse()) {
      try {
        await this.invokeForResult(network, plugin, 'DEL', inv, prev, capabilityArgs);
      } catch (err) {
        failures.push(`${plugin.type}: ${messageOf(err)}`);
      }
    }
    if (failures.length > 0) {
      throw internal(`CNI DEL of ${inv.containerId} on network ${network.name} failed: ${failures.join('; ')}`);
    }
    await removeCachedAttachment(this.cacheDir, network.name, inv.containerId, inv.ifName);
    this.log.debug({ containerId: inv.containerId, network: network.name }, 'CNI DEL done');
  }

  /** Runs CHECK through the chain with the cached result; throws if the attachment is not as ADD left it. */
  async check(req: DetachRequest): Promise<void> {
    const ifName = req.ifName ?? DEFAULT_IFNAME;
    checkIds(req.containerId, ifName);
    const network = await this.network();
    if (!versionAtLeast(network.cniVersion, '0.4.0')) {
      throw failedPrecondition(`CNI config ${network.source}: cniVersion ${network.cniVersion} does not support CHECK (needs 0.4.0)`);
    }
    if (network.disableCheck) return;
    const cached = await readCachedAttachment(this.cacheDir, network.name, req.containerId, ifName);
    if (!cached?.addComplete || !cached.result) {
      throw notFound(`no completed CNI attachment of ${req.containerId} (${ifName}) on network ${network.name}`);
    }
    const inv: Invocation = { containerId: cached.containerId, netnsPath: cached.netns ?? '', ifName, cniArgs: cached.cniArgs ?? [] };
    for (const plugin of network.plugins) {
      try {
        await this.invokeForResult(network, plugin, 'CHECK', inv, cached.result, cached.capabilityArgs ?? {});
      } catch (err) {
        throw internal(`CNI CHECK of ${req.containerId}: plugin ${plugin.type}: ${messageOf(err)}`, err);
      }
    }
  }

  /** The cached status of an attachment (e.g. pod IPs after a restart), if ADD completed. */
  async cachedStatus(containerId: string, ifName = DEFAULT_IFNAME): Promise<PodNetworkStatus | undefined> {
    checkIds(containerId, ifName);
    const cached = (await listCachedAttachments(this.cacheDir, containerId)).find((c) => c.ifName === ifName && c.addComplete);
    if (!cached?.result) return undefined;
    return { networkName: cached.networkName, ifName, ips: podIpsFromResult(cached.result), result: cached.result };
  }

  async cachedAttachments(containerId?: string): Promise<CachedAttachment[]> {
    return listCachedAttachments(this.cacheDir, containerId);
  }

  /**
   * Garbage-collects like libcni: DEL for every cached attachment of this network that is not
   * in `valid`, then, for configs of spec 1.1.0 or later, GC on every plugin with the valid
   * attachments so plugins drop state the cache no longer knows of.
   */
  async gc(valid: readonly GcAttachment[]): Promise<void> {
    const network = await this.network();
    if (network.disableGC) return;
    const keep = new Set(valid.map((a) => `${a.containerId}\u0000${a.ifName ?? DEFAULT_IFNAME}`));
    const failures: string[] = [];
    for (const cached of await listCachedAttachments(this.cacheDir)) {
      if (cached.networkName !== network.name || keep.has(`${cached.containerId}\u0000${cached.ifName}`)) continue;
      try {
        await this.delCached(cached);
      } catch (err) {
        failures.push(`stale attachment ${cached.containerId} ${cached.ifName}: ${messageOf(err)}`);
      }
    }
    if (versionAtLeast(network.cniVersion, '1.1.0')) {
      const attachments = valid.map((a) => ({ containerID: a.containerId, ifname: a.ifName ?? DEFAULT_IFNAME }));
      const inv: Invocation = { containerId: '', netnsPath: '', ifName: '', cniArgs: [] };
      for (const plugin of network.plugins) {
        const conf = { ...plugin, 'cni.dev/valid-attachments': attachments, 'cni.dev/attachments': attachments };
        try {
          await this.invokeForResult(network, conf, 'GC', inv, undefined, {});
        } catch (err) {
          failures.push(`GC ${plugin.type}: ${messageOf(err)}`);
        }
      }
    }
    if (failures.length > 0) throw internal(`CNI GC on network ${network.name} failed: ${failures.join('; ')}`);
  }

  /**
   * Whether the network can take pods: the config loads and its plugins exist; configs of
   * spec 1.1.0 or later also ask each plugin (STATUS). Throws Unavailable with the reason;
   * returns the network otherwise.
   */
  async status(): Promise<CniNetworkConfig> {
    let network: CniNetworkConfig;
    try {
      network = await this.reload();
    } catch (err) {
      throw unavailable(`CNI network not ready: ${messageOf(err)}`);
    }
    if (!versionAtLeast(network.cniVersion, '1.1.0')) return network;
    const inv: Invocation = { containerId: '', netnsPath: '', ifName: '', cniArgs: [] };
    for (const plugin of network.plugins) {
      try {
        await this.invokeForResult(network, plugin, 'STATUS', inv, undefined, {});
      } catch (err) {
        throw unavailable(`CNI network not ready: plugin ${plugin.type}: ${messageOf(err)}`);
      }
    }
    return network;
  }

  private async pluginPath(type: string): Promise<string> {
    const known = this.pluginPaths.get(type);
    if (known) return known;
    const found = await findPlugin(type, this.pluginDirs);
    if (!found) throw failedPrecondition(`CNI plugin ${JSON.stringify(type)} not found in ${this.pluginDirs.join(', ')}`);
    this.pluginPaths.set(type, found);
    return found;
  }

  private async invokeForResult(
    network: CniNetworkConfig,
    plugin: CniPluginConfig,
    command: CniCommand,
    inv: Invocation,
    prevResult: Record<string, unknown> | undefined,
    capabilityArgs: Record<string, unknown>,
  ): Promise<Record<string, unknown> | undefined> {
    const path = await this.pluginPath(plugin.type);
    const stdin = JSON.stringify(pluginStdin(network, plugin, prevResult, capabilityArgs));
    const env: NodeJS.ProcessEnv = {};
    // Plugins inherit the runtime's environment (PATH for iptables...), minus stale CNI_ keys.
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CNI_')) env[k] = v;
    Object.assign(env, {
      CNI_COMMAND: command,
      CNI_CONTAINERID: inv.containerId,
      CNI_NETNS: inv.netnsPath,
      CNI_IFNAME: inv.ifName,
      CNI_ARGS: formatCniArgs(inv.cniArgs),
      CNI_PATH: this.pluginDirs.join(':'),
    });
    const started = performance.now();
    const r = await run(path, [], { input: stdin, env, timeoutMs: this.timeoutMs });
    this.log.trace({ plugin: plugin.type, command, containerId: inv.containerId, ms: performance.now() - started, code: r.code }, 'CNI plugin ran');
    if (r.code !== 0) throw new PluginFailure(describePluginError(r));
    if (command !== 'ADD') return undefined;
    try {
      const parsed: unknown = JSON.parse(r.stdout);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      return parsed as Record<string, unknown>;
    } catch (err) {
      throw new PluginFailure(`returned an unreadable result: ${messageOf(err)}`);
    }
  }
}

/** A plugin's error as the spec defines it (JSON on stdout), else whatever it printed. */
export function describePluginError(r: { code: number | null; signal: string | null; stdout: string; stderr: string; timedOut: boolean }): string {
  if (r.timedOut) return 'timed out';
  try {
    const e: unknown = JSON.parse(r.stdout);
    if (typeof e === 'object' && e !== null && typeof (e as { msg?: unknown }).msg === 'string') {
      const { msg, details, code } = e as { msg: string; details?: unknown; code?: unknown };
      return `${msg}${typeof details === 'string' && details ? `: ${details}` : ''}${typeof code === 'number' ? ` (code ${code})` : ''}`;
    }
  } catch {
    // not JSON: fall through
  }
  const text = (r.stdout.trim() || r.stderr.trim()).split('\n').slice(-3).join(' / ');
  const how = r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`;
  return text ? `${text} (${how})` : how;
}

/** The daemon's CNI runner over its config: pods use it, and the leak sweep DELs what no pod owns. */
export function cniRunnerFor(config: CrispConfig, logger: Logger): CniRunner {
  // The cache lives under the persistent root: host-local's IP leases survive a reboot, and
  // the DEL that releases them needs the ADD's cached result even after the netns is gone.
  return new CniRunner({ confDir: config.cniConfigDir, pluginDirs: config.cniPluginDirs, cacheDir: join(config.root, 'cni-cache'), logger,
    // pinNamespaces brings lo up in the pod's netns as it creates it
    loopback: false });
}
