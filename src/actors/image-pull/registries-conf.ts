// containers-registries.conf(5), version 2: where to pull a reference from. The same file
// CRI-O, podman and skopeo read, so a node's mirror and blocking policy applies to crisp too.

import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { invalidArgument, failedPrecondition } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import type { ImageReference } from './reference.js';

const DEFAULT_REGISTRIES_CONF = '/etc/containers/registries.conf';

type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

interface MirrorConfig {
  location: string;
  insecure: boolean;
  pullFromMirror: PullFromMirror;
}

export interface RegistryConfig {
  /** What references this entry applies to: `example.com/ns`, or `*.example.com`. */
  prefix: string;
  /** Where the matched prefix really lives; equals prefix unless rewritten. */
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: MirrorConfig[];
}

export interface RegistriesConfig {
  unqualifiedSearchRegistries: string[];
  registries: RegistryConfig[];
  /** The files that were read, in order (for logs and errors). */
  sources: string[];
}

/** One place to try a pull from: a registry host and the repository path there. */
export interface PullEndpoint {
  /** Registry host with port: `mirror.local:5000`. */
  host: string;
  /** Repository path on that host. */
  repository: string;
  /** Plain HTTP instead of HTTPS. */
  insecure: boolean;
  mirror: boolean;
  /** The reference rewritten for this endpoint (same tag/digest). */
  reference: ImageReference;
}

export const emptyRegistriesConfig = (): RegistriesConfig => ({ unqualifiedSearchRegistries: [], registries: [], sources: [] });

// Keys containers/image understands that do not affect where crisp pulls from; accepted so a
// node's existing file loads, but not acted upon.
const IGNORED_TOP_LEVEL = new Set(['short-name-mode', 'aliases', 'credential-helpers', 'additional-layer-store-auth-helper']);

type TomlTable = Record<string, unknown>;

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

class FileParser {
  constructor(
    readonly file: string,
    readonly logger: Logger,
  ) {}

  fail(key: string, why: string): Error {
    return invalidArgument(`${this.file}: ${key}: ${why}`);
  }

  string(t: TomlTable, key: string, where: string): string | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.fail(`${where}${key}`, `expected a string, got ${typeName(v)}`);
    return v;
  }

  bool(t: TomlTable, key: string, where: string): boolean | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw this.fail(`${where}${key}`, `expected a boolean, got ${typeName(v)}`);
    return v;
  }

  stringArray(t: TomlTable, key: string, where: string): string[] | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      throw this.fail(`${where}${key}`, `expected an array of strings, got ${typeName(v)}`);
    }
    return v as string[];
  }

  warnUnknown(t: TomlTable, known: string[], where: string): void {
    for (const k of Object.keys(t)) {
      if (!known.includes(k)) this.logger.warn({ file: this.file, key: `${where}${k}` }, 'registries.conf: unknown key ignored');
    }
  }

  registry(t: unknown, index: number): RegistryConfig {
    const where = `registry[${index}].`;
    if (!isTable(t)) throw this.fail(`registry[${index}]`, 'expected a table');
    this.warnUnknown(t, ['prefix', 'location', 'insecure', 'blocked', 'mirror-by-digest-only', 'mirror'], where);
    const location = stripScheme(this.string(t, 'location', where) ?? '', this, `${where}location`);
    let prefix = this.string(t, 'prefix', where) ?? '';
    if (prefix === '') prefix = location;
    if (prefix === '') throw this.fail(`${where}prefix`, 'a registry needs a prefix or a location');
    validatePrefix(prefix, this, `${where}prefix`);
    if (prefix.startsWith('*.') && location !== '') {
      throw this.fail(`${where}location`, 'a wildcard prefix cannot be combined with a location');
    }
    const mirrorsRaw = t['mirror'];
    if (mirrorsRaw !== undefined && !Array.isArray(mirrorsRaw)) throw this.fail(`${where}mirror`, 'expected an array of tables ([[registry.mirror]])');
    const mirrors = ((mirrorsRaw as unknown[] | undefined) ?? []).map((m, j) => this.mirror(m, `${where}mirror[${j}].`));
    return {
      prefix,
      location: location === '' ? prefix : location,
      insecure: this.bool(t, 'insecure', where) ?? false,
      blocked: this.bool(t, 'blocked', where) ?? false,
      mirrorByDigestOnly: this.bool(t, 'mirror-by-digest-only', where) ?? false,
      mirrors,
    };
  }

  mirror(m: unknown, where: string): MirrorConfig {
    if (!isTable(m)) throw this.fail(where.slice(0, -1), 'expected a table');
    this.warnUnknown(m, ['location', 'insecure', 'pull-from-mirror'], where);
    const location = stripScheme(this.string(m, 'location', where) ?? '', this, `${where}location`);
    if (location === '') throw this.fail(`${where}location`, 'a mirror needs a location');
    const pull = this.string(m, 'pull-from-mirror', where) ?? 'all';
    if (pull !== 'all' && pull !== 'digest-only' && pull !== 'tag-only') {
      throw this.fail(`${where}pull-from-mirror`, `must be "all", "digest-only" or "tag-only", got ${JSON.stringify(pull)}`);
    }
    return { location, insecure: this.bool(m, 'insecure', where) ?? false, pullFromMirror: pull };
  }
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'a table' : `a ${typeof v}`;
}

function stripScheme(location: string, p: FileParser, key: string): string {
  if (/^[a-z]+:\/\//i.test(location)) throw p.fail(key, `must not contain a URL scheme (${JSON.stringify(location)})`);
  return location.replace(/\/+$/, '');
}

function validatePrefix(prefix: string, p: FileParser, key: string): void {
  if (prefix.startsWith('*.')) {
    // A wildcard names hosts only: `*.example.com`, nothing after it.
    if (/[/@:]/.test(prefix) || prefix.length < 3 || prefix.slice(2).includes('*')) {
      throw p.fail(key, `wildcard prefix ${JSON.stringify(prefix)} must have the form *.example.com`);
    }
    return;
  }
  if (prefix.includes('*')) throw p.fail(key, `${JSON.stringify(prefix)}: a wildcard is only allowed as a leading "*."`);
  if (/^[a-z]+:\/\//i.test(prefix)) throw p.fail(key, `must not contain a URL scheme (${JSON.stringify(prefix)})`);
}

/** Parses one registries.conf document; `file` names it in errors. */
export function parseRegistriesConf(text: string, file: string, logger: Logger = silentLogger): Partial<RegistriesConfig> & { registries: RegistryConfig[] } {
  const p = new FileParser(file, logger);
  let doc: TomlTable;
  try {
    doc = parseToml(text) as TomlTable;
  } catch (err) {
    throw invalidArgument(`${file}: invalid TOML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  if ('registries' in doc) {
    throw p.fail('registries', 'the version 1 format ([registries.search] etc.) is not supported; use version 2 ([[registry]])');
  }
  for (const k of Object.keys(doc)) {
    if (k !== 'unqualified-search-registries' && k !== 'registry' && !IGNORED_TOP_LEVEL.has(k)) {
      logger.warn({ file, key: k }, 'registries.conf: unknown key ignored');
    }
  }
  const search = p.stringArray(doc, 'unqualified-search-registries', '');
  const regsRaw = doc['registry'];
  if (regsRaw !== undefined && !Array.isArray(regsRaw)) throw p.fail('registry', 'expected an array of tables ([[registry]])');
  const registries = ((regsRaw as unknown[] | undefined) ?? []).map((r, i) => p.registry(r, i));
  const seen = new Set<string>();
  for (const r of registries) {
    if (seen.has(r.prefix)) throw p.fail('registry', `prefix ${JSON.stringify(r.prefix)} is defined twice`);
    seen.add(r.prefix);
  }
  return { ...(search !== undefined ? { unqualifiedSearchRegistries: search } : {}), registries };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Loads registries.conf and its `<file>.d/*.conf` drop-ins (the drop-in directory is the
 * file's path with `.conf` replaced by `.conf.d`), in lexical order. A later file's
 * `unqualified-search-registries` replaces the earlier list; a later `[[registry]]` replaces
 * an earlier one with the same prefix. A missing file or directory means defaults.
 */
export async function loadRegistriesConfig(
  path: string = DEFAULT_REGISTRIES_CONF,
  opts: { dropInDir?: string; logger?: Logger } = {},
): Promise<RegistriesConfig> {
  const logger = opts.logger ?? silentLogger;
  const dropInDir = opts.dropInDir ?? `${path}.d`;
  const files: string[] = [path];
  try {
    const names = (await readdir(dropInDir)).filter((n) => n.endsWith('.conf')).sort();
    files.push(...names.map((n) => join(dropInDir, n)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const merged = emptyRegistriesConfig();
  const byPrefix = new Map<string, RegistryConfig>();
  for (const file of files) {
    const text = await readIfExists(file);
    if (text === undefined) continue;
    const part = parseRegistriesConf(text, file, logger);
    merged.sources.push(file);
    if (part.unqualifiedSearchRegistries !== undefined) merged.unqualifiedSearchRegistries = part.unqualifiedSearchRegistries;
    for (const r of part.registries) {
      byPrefix.delete(r.prefix); // re-insert so the later definition also takes the later position
      byPrefix.set(r.prefix, r);
    }
  }
  merged.registries = [...byPrefix.values()];
  return merged;
}

/**
 * How much of `ref` (a `host/path` string) a prefix matches, or -1. A prefix matches at a
 * component boundary only; `*.example.com` matches any subdomain of example.com.
 */
export function prefixMatchLength(ref: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const hostEnd = ref.search(/[/@]/);
    const hostPort = hostEnd === -1 ? ref : ref.slice(0, hostEnd);
    const host = hostPort.replace(/:[0-9]+$/, '');
    // The port belongs to the matched part, so a mirror replaces the whole host:port.
    return host.endsWith(prefix.slice(1)) && host.length > prefix.length - 1 ? hostPort.length : -1;
  }
  if (ref === prefix) return prefix.length;
  if (ref.length > prefix.length && ref.startsWith(prefix) && '/:@'.includes(ref[prefix.length]!)) return prefix.length;
  return -1;
}

/** The registry entry with the longest prefix matching the reference's name, if any. */
function findRegistry(config: RegistriesConfig, ref: ImageReference): { registry: RegistryConfig; matched: string } | undefined {
  const name = ref.name;
  let best: { registry: RegistryConfig; matched: string } | undefined;
  let bestLen = -1;
  for (const r of config.registries) {
    const len = prefixMatchLength(name, r.prefix);
    if (len > bestLen) {
      bestLen = len;
      best = { registry: r, matched: name.slice(0, len) };
    }
  }
  return best;
}

function endpointFor(ref: ImageReference, matched: string, location: string, insecure: boolean, mirror: boolean): PullEndpoint {
  const rewritten = location + ref.name.slice(matched.length);
  const slash = rewritten.indexOf('/');
  if (slash === -1) {
    throw invalidArgument(`registries.conf: location ${JSON.stringify(location)} leaves no repository path for ${ref.toString()}`);
  }
  const host = rewritten.slice(0, slash);
  const repository = rewritten.slice(slash + 1);
  return { host, repository, insecure, mirror, reference: ref.withLocation(host, repository) };
}

/**
 * The ordered places to pull `ref` from: its mirrors in order (those allowed for a tag or
 * digest pull), then the registry itself unless blocked. A blocked registry with no usable
 * mirror is an error. Without a matching entry the reference's own registry is used, over HTTPS.
 */
export function resolvePullEndpoints(config: RegistriesConfig, ref: ImageReference): PullEndpoint[] {
  const found = findRegistry(config, ref);
  if (found === undefined) {
    return [{ host: ref.domain, repository: ref.path, insecure: false, mirror: false, reference: ref }];
  }
  const { registry, matched } = found;
  // For a wildcard entry the matched part is the host itself, which stays as it is.
  const location = registry.prefix.startsWith('*.') ? matched : registry.location;
  const byDigest = ref.digest !== undefined;
  const endpoints: PullEndpoint[] = [];
  if (!(registry.mirrorByDigestOnly && !byDigest)) {
    for (const m of registry.mirrors) {
      if (m.pullFromMirror === 'digest-only' && !byDigest) continue;
      if (m.pullFromMirror === 'tag-only' && byDigest) continue;
      endpoints.push(endpointFor(ref, matched, m.location, m.insecure, true));
    }
  }
  if (!registry.blocked) endpoints.push(endpointFor(ref, matched, location, registry.insecure, false));
  if (endpoints.length === 0) {
    throw failedPrecondition(`registry ${JSON.stringify(registry.prefix)} is blocked in registries.conf and has no usable mirror for ${ref.toString()}`);
  }
  return endpoints;
}
