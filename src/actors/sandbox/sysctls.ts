// Pod sysctls, applied by entering the pinned namespaces; which keys a pod may set is
// machines/pod-rules.ts's to say.

import { internal } from '../../errors.js';
import { describeFailure } from '../../host/run.js';
import { runInNamespaces, type PinnedNamespaces } from '../network/namespaces.js';
import { validateSysctls } from '../../machines/pod-rules.js';

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
