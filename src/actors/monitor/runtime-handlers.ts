// The OCI runtimes a pod can run with (Kubernetes RuntimeClass handlers): the default one
// (runtime_path) and every [crisp.runtime.runtimes.NAME] table, each with a state root of its
// own, and what each really supports. Support is probed once at start-up, from the runtime's
// own `features` document and from the kernel, never assumed from the runtime's name.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { basename, join } from 'node:path';
import { run } from '../../host/run.js';
import { failedPrecondition, invalidArgument } from '../../errors.js';
import { DEFAULT_OPTIONAL_RUNTIMES, RUNTIMES_SECTION, type CrispConfig } from '../../config/schema.js';
import { runtimeDirs } from './container-layout.js';
import { resolveExecutable } from './executables.js';

export interface RuntimeHandlerSpec {
  /** The RuntimeClass handler name; '' is the default handler. */
  name: string;
  /** Absolute path of the OCI runtime binary. */
  path: string;
  /** The runtime's --root: where it keeps the state of the containers it runs. */
  root: string;
}

export interface HandlerFeatures {
  /** `rro`: a read-only bind whose submounts are read-only too (runc's and crun's mount option). */
  recursiveReadOnlyMounts: boolean;
  /** Pods in their own user namespace, end to end (id-mapped rootfs and volumes). */
  userNamespaces: boolean;
  /** Mount options the runtime says it understands (empty when it cannot say). */
  mountOptions: string[];
}

export interface RuntimeHandler extends RuntimeHandlerSpec {
  features: HandlerFeatures;
  /** Why a pod cannot run with this handler on this host, when it cannot. */
  problem?: string;
  /** How the features were decided, for `crictl info`. */
  notes: string[];
}

/** The subset of the OCI runtime "features" document (runtime-spec features.md) we read. */
interface FeaturesDocument {
  mountOptions?: unknown;
  linux?: { namespaces?: unknown; mountExtensions?: { idmap?: { enabled?: unknown } } };
}

/**
 * The handlers a configuration asks for: '' (the default runtime), the default runtime under its
 * own name too ("runc", as CRI-O lists it), and every [crisp.runtime.runtimes.NAME] table; with
 * none configured, crun where it is installed. A configured runtime that is missing is an error.
 */
export function handlerSpecs(config: CrispConfig, searchPath?: string, optional = DEFAULT_OPTIONAL_RUNTIMES): RuntimeHandlerSpec[] {
  const defaultPath = resolveExecutable(config.runtimePath, 'runtime_path', searchPath);
  const root = runtimeDirs(config.runroot).runtimeRoot;
  const specs: RuntimeHandlerSpec[] = [{ name: '', path: defaultPath, root }];
  const configured = Object.keys(config.runtimes).length > 0;
  const tables = configured ? config.runtimes : optional;
  const alias = basename(defaultPath);
  if (!(alias in tables)) specs.push({ name: alias, path: defaultPath, root });
  for (const [name, table] of Object.entries(tables)) {
    let path: string;
    try {
      path = resolveExecutable(table.runtimePath, `${RUNTIMES_SECTION}.${name}.runtime_path`, searchPath);
    } catch (err) {
      if (!configured) continue;
      throw err;
    }
    specs.push({ name, path, root: table.runtimeRoot ?? join(config.runroot, 'runtimes', name) });
  }
  return specs;
}

/** mount_setattr(2), which recursive read-only needs, came with Linux 5.12. */
export function kernelHasMountSetattr(kernelRelease = release()): boolean {
  const [major = 0, minor = 0] = kernelRelease.split(/[.-]/).map((part) => Number.parseInt(part, 10));
  return major > 5 || (major === 5 && minor >= 12);
}

/**
 * What a handler supports, from its `features` output (null when it has no such command). User
 * namespaces stay false whatever the runtime says: crisp does not yet give pods id-mapped
 * mounts, without which a pod's rootfs and volumes are unusable inside its user namespace.
 */
export function featuresFrom(document: unknown, o: { mountSetattr: boolean }): { features: HandlerFeatures; notes: string[] } {
  const notes: string[] = [];
  if (document === null || typeof document !== 'object') {
    notes.push('the runtime has no `features` command, so no optional feature is assumed');
    return { features: { recursiveReadOnlyMounts: false, userNamespaces: false, mountOptions: [] }, notes };
  }
  const doc = document as FeaturesDocument;
  const mountOptions = Array.isArray(doc.mountOptions) ? doc.mountOptions.filter((o): o is string => typeof o === 'string') : [];
  const rro = mountOptions.includes('rro');
  if (!rro) notes.push('recursive read-only mounts: the runtime does not list the "rro" mount option');
  else if (!o.mountSetattr) notes.push('recursive read-only mounts: the kernel lacks mount_setattr (Linux 5.12)');
  const idmap = doc.linux?.mountExtensions?.idmap?.enabled === true;
  notes.push(`user namespaces: not offered (crisp does not implement pod user namespaces; the runtime ${idmap ? 'has' : 'lacks'} id-mapped mounts)`);
  return { features: { recursiveReadOnlyMounts: rro && o.mountSetattr, userNamespaces: false, mountOptions }, notes };
}

/**
 * crun (1.8) refuses to run on a hybrid cgroup host whose v2 hierarchy still holds a controller
 * ("cgroups in hybrid mode not supported"). systemd mounts a v1 hierarchy for every controller on
 * hybrid hosts, which empties the v2 one; where that was not done, name the fix.
 */
export function hybridCgroupProblem(runtimePath: string, cgroupRoot = '/sys/fs/cgroup'): string | undefined {
  if (!/(^|\/)crun$/.test(runtimePath)) return undefined;
  const unified = join(cgroupRoot, 'unified', 'cgroup.controllers');
  if (!existsSync(unified)) return undefined;
  const held = readFileSync(unified, 'utf8').trim().split(/\s+/).filter(Boolean);
  if (held.length === 0) return undefined;
  const fix = held.map((c) => `mkdir -p ${cgroupRoot}/${c} && mount -t cgroup -o ${c} none ${cgroupRoot}/${c}`).join('; ');
  return `crun refuses this hybrid cgroup host while its cgroup v2 hierarchy holds ${held.join(', ')}; mount a v1 hierarchy for it as systemd does (${fix}; scripts/setup.sh does this)`;
}

/** Asks the runtime what it supports; a runtime without `features` (crun 1.8) supports nothing optional. */
export async function probeHandler(spec: RuntimeHandlerSpec, o: { mountSetattr?: boolean; cgroupRoot?: string } = {}): Promise<RuntimeHandler> {
  let document: unknown = null;
  try {
    const r = await run(spec.path, ['features'], { timeoutMs: 10_000 });
    if (r.code === 0) document = JSON.parse(r.stdout) as unknown;
  } catch {
    // not runnable or not JSON: no features
  }
  const { features, notes } = featuresFrom(document, { mountSetattr: o.mountSetattr ?? kernelHasMountSetattr() });
  const problem = hybridCgroupProblem(spec.path, o.cgroupRoot);
  return { ...spec, features, notes, ...(problem && { problem }) };
}

/** The handlers of this daemon, by name; '' (and the default's own name) is the default. */
export class RuntimeHandlers {
  private readonly byName = new Map<string, RuntimeHandler>();

  constructor(readonly all: readonly RuntimeHandler[]) {
    for (const h of all) this.byName.set(h.name, h);
  }

  static async probe(specs: readonly RuntimeHandlerSpec[]): Promise<RuntimeHandlers> {
    return new RuntimeHandlers(await Promise.all(specs.map((spec) => probeHandler(spec))));
  }

  /** The handler a RunPodSandbox names; unknown names are the caller's mistake. */
  get(name: string): RuntimeHandler {
    const handler = this.byName.get(name);
    if (!handler) {
      throw invalidArgument(`runtime_handler: ${JSON.stringify(name)} is not configured (known: ${this.names().filter(Boolean).join(', ')})`);
    }
    return handler;
  }

  /** The handler, or a FAILED_PRECONDITION naming why it cannot run pods on this host. */
  usable(name: string): RuntimeHandler {
    const handler = this.get(name);
    if (handler.problem) throw failedPrecondition(`runtime_handler ${JSON.stringify(name)}: ${handler.problem}`);
    return handler;
  }

  names(): string[] {
    return this.all.map((h) => h.name);
  }
}
