// Loading and validating a CNI network configuration the way libcni does: the first
// `.conf`/`.conflist`/`.json` file of the directory in lexical order; a single-plugin `.conf`
// is wrapped into a list. Every error names the file and the offending key.

import { access, constants, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { failedPrecondition, invalidArgument } from '../../errors.js';

const CNI_CONFIG_EXTENSIONS = ['.conf', '.conflist', '.json'] as const;
export const DEFAULT_PLUGIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin'] as const;

/** Spec versions this runtime speaks, oldest first. */
const SUPPORTED_CNI_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

/** One plugin entry of a list, as written in the file (unknown keys belong to the plugin). */
export interface CniPluginConfig {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface CniNetworkConfig {
  name: string;
  cniVersion: string;
  disableCheck: boolean;
  disableGC: boolean;
  plugins: CniPluginConfig[];
  /** The file it came from, or a label such as `cache` for a config restored from the cache. */
  source: string;
  /** The list as JSON (a `.conf` already wrapped): what the result cache stores for DEL. */
  bytes: string;
}

// libcni's rule for network names and container ids.
export const CNI_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Compares two x.y.z versions; throws for anything else. */
export function compareCniVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) throw new Error(`invalid CNI version ${JSON.stringify(pa ? b : a)}`);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function parseVersion(v: string): number[] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

export function versionAtLeast(version: string, min: string): boolean {
  return compareCniVersions(version, min) >= 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates the text of one config file. `source` names the file in errors;
 * a file without `plugins` but with `type` is a single-plugin config and is wrapped.
 */
export function parseNetworkConfig(text: string, source: string): CniNetworkConfig {
  const bad = (key: string, why: string) => failedPrecondition(`CNI config ${source}: ${key}: ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw failedPrecondition(`CNI config ${source}: invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) throw failedPrecondition(`CNI config ${source}: the top level must be a JSON object`);

  let list: Record<string, unknown>;
  if ('plugins' in raw) {
    list = raw;
  } else if ('type' in raw) {
    // A single plugin config: it keeps its own keys; name and version move up to the list.
    const { name, cniVersion, ...plugin } = raw;
    list = { name, cniVersion, plugins: [plugin] };
  } else {
    throw bad('plugins', 'missing (and no "type" for a single-plugin config)');
  }

  const name = list.name;
  if (typeof name !== 'string' || name === '') throw bad('name', 'must be a non-empty string');
  if (!CNI_NAME_RE.test(name)) throw bad('name', `${JSON.stringify(name)} may hold only letters, digits, "_", "." and "-"`);

  const cniVersion = pickVersion(list, bad);

  const readBool = (key: string): boolean => {
    const v = list[key];
    if (v === undefined) return false;
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
    throw bad(key, `must be a boolean, got ${JSON.stringify(v)}`);
  };
  const disableCheck = readBool('disableCheck');
  const disableGC = readBool('disableGC');

  const plugins = list.plugins;
  if (!Array.isArray(plugins)) throw bad('plugins', 'must be an array');
  if (plugins.length === 0) throw bad('plugins', 'must list at least one plugin');
  const checked = plugins.map((p: unknown, i): CniPluginConfig => {
    const key = `plugins[${i}]`;
    if (!isObject(p)) throw bad(key, 'must be an object');
    if (typeof p.type !== 'string' || p.type === '') throw bad(`${key}.type`, 'must be a non-empty string');
    if (!CNI_NAME_RE.test(p.type)) throw bad(`${key}.type`, `${JSON.stringify(p.type)} is not a plugin binary name`);
    if (p.capabilities !== undefined) {
      if (!isObject(p.capabilities)) throw bad(`${key}.capabilities`, 'must be an object');
      for (const [cap, on] of Object.entries(p.capabilities)) {
        if (typeof on !== 'boolean') throw bad(`${key}.capabilities.${cap}`, 'must be a boolean');
      }
    }
    return p as CniPluginConfig;
  });

  return {
    name,
    cniVersion,
    disableCheck,
    disableGC,
    plugins: checked,
    source,
    bytes: JSON.stringify({ ...list, cniVersion, plugins: checked }),
  };
}

// `cniVersions` (spec 1.1) lists alternatives: take the highest one this runtime supports.
function pickVersion(list: Record<string, unknown>, bad: (k: string, w: string) => Error): string {
  const candidates: string[] = [];
  if (list.cniVersion !== undefined) {
    if (typeof list.cniVersion !== 'string') throw bad('cniVersion', 'must be a string');
    candidates.push(list.cniVersion);
  }
  if (list.cniVersions !== undefined) {
    if (!Array.isArray(list.cniVersions)) throw bad('cniVersions', 'must be an array of strings');
    list.cniVersions.forEach((v: unknown, i) => {
      if (typeof v !== 'string') throw bad(`cniVersions[${i}]`, 'must be a string');
      candidates.push(v);
    });
  }
  if (candidates.length === 0) throw bad('cniVersion', 'missing');
  for (const v of candidates) {
    if (!parseVersion(v)) throw bad('cniVersion', `${JSON.stringify(v)} is not a version (x.y.z)`);
  }
  const supported = candidates.filter((v) => (SUPPORTED_CNI_VERSIONS as readonly string[]).includes(v));
  if (supported.length === 0) {
    throw bad('cniVersion', `${candidates.join(', ')} not supported (supported: ${SUPPORTED_CNI_VERSIONS.join(', ')})`);
  }
  return supported.sort(compareCniVersions).at(-1)!;
}

/** Config files of `dir`, in the lexical order that decides which one is loaded. */
export async function listConfigFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.filter((n) => CNI_CONFIG_EXTENSIONS.some((ext) => n.endsWith(ext))).sort();
}

/** Loads the network config of `dir`: the first config file in lexical order. */
export async function loadNetworkConfig(dir: string): Promise<CniNetworkConfig> {
  const files = await listConfigFiles(dir);
  const first = files[0];
  if (first === undefined) throw failedPrecondition(`no CNI network config (${CNI_CONFIG_EXTENSIONS.join(', ')}) in ${dir}`);
  const path = join(dir, first);
  return parseNetworkConfig(await readFile(path, 'utf8'), path);
}

/** Finds a plugin binary by its `type` in the plugin dirs, first match wins. */
export async function findPlugin(type: string, pluginDirs: readonly string[]): Promise<string | undefined> {
  if (!CNI_NAME_RE.test(type)) return undefined;
  for (const dir of pluginDirs) {
    const candidate = join(dir, type);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this dir
    }
  }
  return undefined;
}

export interface DefaultNetworkOptions {
  /** Network name, also the file name: `10-<name>.conflist`. */
  name: string;
  /** Linux bridge device (at most 15 characters). */
  bridge: string;
  /** IPv4 subnet in CIDR form, for host-local. */
  subnet: string;
  /** host-local's allocation dir; the plugin's default is /var/lib/cni/networks. */
  ipamDataDir?: string;
  cniVersion?: string;
}

const IFNAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/;

/** Validates an `a.b.c.d/n` IPv4 CIDR and returns it. */
function checkIpv4Cidr(cidr: string, field: string): string {
  const [addr, bits, extra] = cidr.split('/');
  const n = Number(bits);
  if (extra !== undefined || !addr || !isIPv4(addr) || bits === undefined || !/^\d+$/.test(bits) || n < 8 || n > 30) {
    throw invalidArgument(`${field}: ${JSON.stringify(cidr)} is not an IPv4 CIDR with a prefix between /8 and /30`);
  }
  return cidr;
}

/**
 * The default pod network: a bridge with host-local addresses, masquerade for traffic
 * leaving the node, portmap for host ports and firewall so a FORWARD policy of DROP does
 * not cut pods off. portmap's `snat` (its default, spelled out) is what makes a host port
 * answer on 127.0.0.1: it marks connections from 127.0.0.1 for masquerade and sets
 * route_localnet on the bridge so the kernel routes 127/8 sources off the host; hairpinMode
 * lets a pod reach itself through its own host port. The bandwidth plugin is left out: the
 * packaged version (1.1.1) crashes on CHECK when a pod has no limits.
 */
export function defaultNetworkConfig(options: DefaultNetworkOptions): Record<string, unknown> {
  if (!CNI_NAME_RE.test(options.name)) throw invalidArgument(`name: ${JSON.stringify(options.name)} is not a valid CNI network name`);
  if (!IFNAME_RE.test(options.bridge)) throw invalidArgument(`bridge: ${JSON.stringify(options.bridge)} is not a valid interface name (at most 15 characters)`);
  checkIpv4Cidr(options.subnet, 'subnet');
  const cniVersion = options.cniVersion ?? '1.0.0';
  if (!(SUPPORTED_CNI_VERSIONS as readonly string[]).includes(cniVersion)) throw invalidArgument(`cniVersion: ${cniVersion} is not supported`);
  const ipam: Record<string, unknown> = {
    type: 'host-local',
    ranges: [[{ subnet: options.subnet }]],
    routes: [{ dst: '0.0.0.0/0' }],
  };
  if (options.ipamDataDir !== undefined) ipam.dataDir = options.ipamDataDir;
  return {
    cniVersion,
    name: options.name,
    plugins: [
      { type: 'bridge', bridge: options.bridge, isGateway: true, ipMasq: true, hairpinMode: true, ipam },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'firewall', backend: 'iptables' },
    ],
  };
}

/**
 * Writes the default network config when `dir` holds no config file yet. Reports whether it
 * wrote, and the path of the config that is now in effect.
 */
export async function writeDefaultConfig(
  dir: string,
  options: DefaultNetworkOptions,
): Promise<{ written: boolean; path: string }> {
  const config = defaultNetworkConfig(options);
  const existing = await listConfigFiles(dir);
  if (existing[0] !== undefined) return { written: false, path: join(dir, existing[0]) };
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const path = join(dir, `10-${options.name}.conflist`);
  // Written under a name the loader ignores, then renamed: a reader never sees half a file.
  const tmp = join(dir, `.10-${options.name}.conflist.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, path);
  return { written: true, path };
}
