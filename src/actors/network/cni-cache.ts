// The on-disk record of each attachment, in libcni's `cniCacheV1` format and layout
// (`<cacheDir>/results/<network>-<containerId>-<ifName>`), so that DEL after a restart uses the
// config, arguments and result of the ADD, and tools that read libcni caches read ours.
//
// Unlike libcni, the entry is written before the first plugin runs and updated after each
// plugin: a crash in the middle of an ADD then still leaves what DEL needs to undo it
// (`addComplete` tells the two cases apart; libcni ignores the extra key).

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { namesIfPresent, removeIfPresent } from '../../host/files.js';

export const CNI_CACHE_KIND = 'cniCacheV1';

export interface CachedAttachment {
  kind: typeof CNI_CACHE_KIND;
  containerId: string;
  /** The network config list used for ADD, base64 (Go's encoding of []byte). */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  /** The result of the last plugin that succeeded. */
  result?: Record<string, unknown>;
  addComplete?: boolean;
}

export function cacheFilePath(cacheDir: string, networkName: string, containerId: string, ifName: string): string {
  return join(cacheDir, 'results', `${networkName}-${containerId}-${ifName}`);
}

export async function writeCachedAttachment(cacheDir: string, entry: CachedAttachment): Promise<void> {
  const path = cacheFilePath(cacheDir, entry.networkName, entry.containerId, entry.ifName);
  mkdirSync(join(cacheDir, 'results'), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
  renameSync(tmp, path);
}

function isCachedAttachment(v: unknown): v is CachedAttachment {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    o.kind === CNI_CACHE_KIND &&
    typeof o.containerId === 'string' &&
    typeof o.config === 'string' &&
    typeof o.ifName === 'string' &&
    o.ifName !== '' &&
    typeof o.networkName === 'string' &&
    o.networkName !== ''
  );
}

/**
 * The cached entry, or undefined when there is none. An unreadable entry throws, with the
 * path, so the caller can decide to carry on without it.
 */
export async function readCachedAttachment(
  cacheDir: string,
  networkName: string,
  containerId: string,
  ifName: string,
): Promise<CachedAttachment | undefined> {
  const path = cacheFilePath(cacheDir, networkName, containerId, ifName);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`CNI cache entry ${path} is not JSON`);
  }
  if (!isCachedAttachment(parsed)) throw new Error(`CNI cache entry ${path} is not a ${CNI_CACHE_KIND} entry`);
  return parsed;
}

export async function removeCachedAttachment(
  cacheDir: string,
  networkName: string,
  containerId: string,
  ifName: string,
): Promise<void> {
  removeIfPresent(cacheFilePath(cacheDir, networkName, containerId, ifName));
}

/** All readable entries, optionally only those of one container; unreadable ones are skipped. */
export async function listCachedAttachments(cacheDir: string, containerId?: string): Promise<CachedAttachment[]> {
  const out: CachedAttachment[] = [];
  for (const name of namesIfPresent(join(cacheDir, 'results')).sort()) {
    if (name.endsWith('.tmp')) continue;
    if (containerId !== undefined && !name.includes(`-${containerId}-`)) continue;
    try {
      const parsed: unknown = JSON.parse(readFileSync(join(cacheDir, 'results', name), 'utf8'));
      if (!isCachedAttachment(parsed)) continue;
      if (containerId !== undefined && parsed.containerId !== containerId) continue;
      out.push(parsed);
    } catch {
      // removed meanwhile or corrupt: not an attachment we can act on
    }
  }
  return out;
}

export function encodeConfig(json: string): string {
  return Buffer.from(json, 'utf8').toString('base64');
}

export function decodeConfig(base64: string): string {
  return Buffer.from(base64, 'base64').toString('utf8');
}
