// Linux capability sets for a container: CRI-O's default set, CRI add/drop (with ALL), clipped to
// what the daemon itself holds, because runc cannot grant a capability outside its own bounding set.

import { KNOWN_CAPABILITIES, normalizeCapability } from '../../machines/container-rules.js';
import type { OciCapabilities } from './oci-types.js';

/** CRI-O's default capabilities for unprivileged containers. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_KILL',
];

/** Decodes a CapBnd-style hex mask from /proc/<pid>/status into names. */
export function capabilitiesFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return KNOWN_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

export interface CapabilityRequest {
  add: string[];
  drop: string[];
  ambient: string[];
  privileged: boolean;
}

export interface CapabilityResult {
  capabilities: OciCapabilities;
  warnings: string[];
}

const isAll = (name: string) => name.trim().toUpperCase() === 'ALL';

/**
 * Works out the process capability sets. ALL in add means every known capability, ALL in drop
 * starts from nothing; individual adds then drops apply on top (so add ALL + drop X is "all but X",
 * and drop ALL + add X is "only X"), as kubelet and CRI-O agree. Anything the host lacks is left
 * out with a warning rather than failing the container.
 */
export function computeCapabilities(req: CapabilityRequest, hostCapabilities: readonly string[]): CapabilityResult {
  const warnings: string[] = [];
  const host = new Set(hostCapabilities);
  let wanted: Set<string>;
  if (req.privileged) {
    wanted = new Set(KNOWN_CAPABILITIES.filter((c) => host.has(c)));
  } else {
    const addAll = req.add.some(isAll);
    const dropAll = req.drop.some(isAll);
    wanted = new Set(addAll ? KNOWN_CAPABILITIES : dropAll ? [] : DEFAULT_CAPABILITIES);
    if (addAll && dropAll) wanted.clear();
    req.add.forEach((name, i) => {
      if (!isAll(name)) wanted.add(normalizeCapability(name, `capabilities.add_capabilities[${i}]`));
    });
    req.drop.forEach((name, i) => {
      if (!isAll(name)) wanted.delete(normalizeCapability(name, `capabilities.drop_capabilities[${i}]`));
    });
  }
  const ambientWanted = req.ambient.map((name, i) =>
    normalizeCapability(name, `capabilities.add_ambient_capabilities[${i}]`),
  );
  for (const cap of ambientWanted) wanted.add(cap);

  const granted: string[] = [];
  const missing: string[] = [];
  for (const cap of KNOWN_CAPABILITIES) {
    if (!wanted.has(cap)) continue;
    if (host.has(cap)) granted.push(cap);
    else missing.push(cap);
  }
  if (missing.length > 0 && !req.privileged) {
    warnings.push(`capabilities not in the host's bounding set were left out: ${missing.join(', ')}`);
  }
  const ambient = KNOWN_CAPABILITIES.filter((c) => ambientWanted.includes(c) && host.has(c));
  return {
    capabilities: {
      bounding: granted,
      effective: [...granted],
      permitted: [...granted],
      // Inheritable stays empty unless ambient caps are asked for (CVE-2022-27652); an ambient
      // capability must also be inheritable for the kernel to keep it across execve.
      inheritable: [...ambient],
      ambient,
    },
    warnings,
  };
}
