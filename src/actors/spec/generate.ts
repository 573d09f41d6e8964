// Builds a container's OCI runtime spec (config.json) from the CRI requests, the image config and
// the pod, as CRI-O and containerd do. Pure: every fact from the host arrives in the input.

import { invalidArgument } from '../../errors.js';
import type { PodSandboxConfig__Output } from '../../cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import { computeCapabilities } from './capabilities.js';
import { planDevices } from './devices.js';
import type { HostFacts, ImageInfo, PodResources, PropagationNeed, ResolvedUser, SpecInput } from './input.js';
import { seccompChoice, validateCriMount } from '../../machines/container-rules.js';
import { planMounts } from './mounts.js';
import { planNamespaces, validateSysctls } from './namespaces.js';
import type { OciRlimit, RuntimeSpec } from './oci-types.js';
import { DEFAULT_PATH, EnvBuilder, processArgs, workingDir } from './process.js';
import { cgroupsPathFor, clampOomScoreAdj, planResources } from './resources.js';
import { resolveSeccomp } from './seccomp.js';
import { pathRestrictions, planLsm } from './security.js';

const OCI_VERSION = '1.0.2-dev';

/** Annotation keys crisp adds to every spec (CRI annotations cannot override them). */
export const ANNOTATIONS = {
  sandboxId: 'io.crisp.sandbox-id',
  sandboxName: 'io.crisp.sandbox-name',
  sandboxNamespace: 'io.crisp.sandbox-namespace',
  sandboxUid: 'io.crisp.sandbox-uid',
  containerType: 'io.crisp.container-type',
  containerName: 'io.crisp.container-name',
  imageName: 'io.crisp.image-name',
  imageId: 'io.crisp.image-id',
} as const;

export interface GeneratedSpec {
  spec: RuntimeSpec;
  /** Things requested but not applied on this host; the caller logs them. */
  warnings: string[];
  /** Host paths whose mount must be made shared/slave before the container starts. */
  hostPropagation: { hostPath: string; need: PropagationNeed }[];
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function checkId(value: string, field: string): void {
  if (!ID_PATTERN.test(value)) throw invalidArgument(`${field}: "${value}" is not a valid id`);
}

function podAnnotations(sandboxId: string, sandbox: PodSandboxConfig__Output): Record<string, string> {
  const meta = sandbox.metadata;
  return {
    [ANNOTATIONS.sandboxId]: sandboxId,
    [ANNOTATIONS.sandboxName]: meta?.name ?? '',
    [ANNOTATIONS.sandboxNamespace]: meta?.namespace ?? '',
    [ANNOTATIONS.sandboxUid]: meta?.uid ?? '',
  };
}

function rlimitsOf(rlimits: OciRlimit[] | undefined): { rlimits?: OciRlimit[] } {
  return rlimits && rlimits.length > 0 ? { rlimits: rlimits.map((r) => ({ ...r })) } : {};
}

export function generateSpec(input: SpecInput, user: ResolvedUser): GeneratedSpec {
  checkId(input.containerId, 'containerId');
  checkId(input.sandboxId, 'sandboxId');
  const { container, sandbox, host, pod } = input;
  const sc = container.linux?.security_context ?? null;
  const podSc = sandbox.linux?.security_context ?? null;
  const privileged = sc?.privileged ?? false;
  if (privileged && !podSc?.privileged) {
    throw invalidArgument('linux.security_context.privileged: the container is privileged but its pod sandbox is not');
  }
  const warnings: string[] = [];

  const ns = planNamespaces({
    options: sc?.namespace_options ?? podSc?.namespace_options ?? null,
    pod,
    host,
    ...(input.targetPidns !== undefined ? { targetPidns: input.targetPidns } : {}),
  });

  const env = new EnvBuilder();
  env.addLines(input.image.config.Env ?? []);
  env.addCri(container.envs);
  if (!env.has('PATH')) env.addLines([DEFAULT_PATH]);
  if (!ns.hostUts) env.setIfAbsent('HOSTNAME', pod.hostname);
  if (container.tty) env.setIfAbsent('TERM', 'xterm');
  env.setIfAbsent('HOME', user.home);

  const caps = computeCapabilities(
    {
      add: sc?.capabilities?.add_capabilities ?? [],
      drop: sc?.capabilities?.drop_capabilities ?? [],
      ambient: sc?.capabilities?.add_ambient_capabilities ?? [],
      privileged,
    },
    host.capabilities,
  );
  warnings.push(...caps.warnings);

  const podGroups = (podSc?.supplemental_groups ?? []).map((g, i) => {
    if (!/^\d+$/.test(g)) throw invalidArgument(`pod linux.security_context.supplemental_groups[${i}]: "${g}" is not a valid gid`);
    return Number(g);
  });
  const additionalGids = [...new Set([...user.additionalGids, ...podGroups])];

  const readonlyRootfs = sc?.readonly_rootfs ?? false;
  const mountPlan = planMounts({
    pod,
    criMounts: input.mounts ?? container.mounts.map(validateCriMount),
    privileged,
    readonlyRootfs,
    podFiles: true,
    ...(input.terminationMessage ? { terminationMessage: input.terminationMessage } : {}),
  });

  const lsm = planLsm(sc, host);
  warnings.push(...lsm.warnings);

  const seccomp = privileged
    ? undefined
    : resolveSeccomp(
        seccompChoice(sc, input.seccompDefaultWhenEmpty === false ? 'unconfined' : 'runtime-default'),
        host.defaultSeccompProfile,
        input.localhostSeccomp,
        { arch: host.arch, kernelRelease: host.kernelRelease, capabilities: caps.capabilities.bounding },
      );

  const res = planResources(container.linux?.resources ?? null, host, { ...(input.pidsLimit !== undefined && { pidsLimit: input.pidsLimit }) });
  warnings.push(...res.warnings);
  const devices = planDevices(privileged, container.devices, host.devices);
  const paths = pathRestrictions(sc, privileged);

  const spec: RuntimeSpec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: container.tty,
      user: { uid: user.uid, gid: user.gid, additionalGids },
      args: processArgs(input.image.config, container.command, container.args),
      env: env.lines(),
      cwd: workingDir(container.working_dir, input.image.config),
      capabilities: caps.capabilities,
      noNewPrivileges: sc?.no_new_privs ?? false,
      ...(res.oomScoreAdj !== undefined ? { oomScoreAdj: res.oomScoreAdj } : {}),
      ...(lsm.apparmorProfile ? { apparmorProfile: lsm.apparmorProfile } : {}),
      ...rlimitsOf(input.rlimits),
    },
    root: { path: input.rootfs, readonly: readonlyRootfs },
    mounts: mountPlan.mounts,
    annotations: {
      ...container.annotations,
      ...podAnnotations(input.sandboxId, sandbox),
      [ANNOTATIONS.containerType]: 'container',
      [ANNOTATIONS.containerName]: container.metadata?.name ?? '',
      [ANNOTATIONS.imageName]: input.image.name,
      [ANNOTATIONS.imageId]: input.image.id,
    },
    linux: {
      namespaces: ns.namespaces,
      resources: { devices: devices.cgroupRules, ...res.resources },
      cgroupsPath: cgroupsPathFor(pod.cgroupParent, input.sandboxId, input.containerId),
      maskedPaths: paths.maskedPaths,
      readonlyPaths: paths.readonlyPaths,
    },
  };
  if (!ns.hostUts) spec.hostname = pod.hostname;
  if (devices.devices.length > 0) spec.linux.devices = devices.devices;
  const sysctls = validateSysctls(sandbox.linux?.sysctls ?? {}, ns);
  if (Object.keys(sysctls).length > 0) spec.linux.sysctl = sysctls;
  if (seccomp) spec.linux.seccomp = seccomp;
  if (mountPlan.rootfsPropagation) spec.linux.rootfsPropagation = mountPlan.rootfsPropagation;
  return { spec, warnings, hostPropagation: mountPlan.hostPropagation };
}

export interface InfraSpecInput {
  sandboxId: string;
  sandbox: PodSandboxConfig__Output;
  /** The infra image's mounted rootfs. */
  rootfs: string;
  /** The infra image (its Entrypoint/Cmd run unless `command` is given). */
  image?: ImageInfo;
  /** The process that holds the pod's PID namespace, e.g. ['/pause']. */
  command?: string[];
  pod: Omit<PodResources, 'pidns'>;
  host: HostFacts;
  rlimits?: OciRlimit[];
}

/** kubelet gives pod infra containers this score so they outlive the pod's workloads. */
const INFRA_OOM_SCORE_ADJ = -998;

/**
 * Spec of the pod's infra (pause) container: the holder of the pod-level PID namespace, which the
 * pod's containers join through /proc/<pid>/ns/pid. It needs no capabilities and a read-only root.
 */
export function generateInfraSpec(input: InfraSpecInput): GeneratedSpec {
  checkId(input.sandboxId, 'sandboxId');
  const { sandbox, host, pod } = input;
  const podSc = sandbox.linux?.security_context ?? null;
  const warnings: string[] = [];
  const ns = planNamespaces({ options: podSc?.namespace_options ?? null, pod, host, infra: true });
  const args = processArgs(input.image?.config ?? {}, input.command ?? [], []);
  const uidText = podSc?.run_as_user?.value;
  const gidText = podSc?.run_as_group?.value;
  if (gidText !== undefined && uidText === undefined) {
    throw invalidArgument('pod linux.security_context.run_as_group is set without run_as_user');
  }
  const toId = (v: string | undefined, field: string) => {
    if (v === undefined) return 0;
    if (!/^\d+$/.test(v) || Number(v) > 0xfffffffe) throw invalidArgument(`pod linux.security_context.${field}: "${v}" is not a valid id`);
    return Number(v);
  };
  const uid = toId(uidText, 'run_as_user');
  const gid = toId(gidText, 'run_as_group');
  const caps = computeCapabilities({ add: [], drop: ['ALL'], ambient: [], privileged: false }, host.capabilities);
  const mountPlan = planMounts({ pod, criMounts: [], privileged: false, readonlyRootfs: true, podFiles: false });
  // pause makes a handful of syscalls: the runtime default always suits it, whatever profile
  // the pod asks for its containers (a Localhost one is theirs to load, not the infra's).
  const seccomp = resolveSeccomp(
    seccompChoice(null, 'runtime-default'),
    host.defaultSeccompProfile,
    undefined,
    { arch: host.arch, kernelRelease: host.kernelRelease, capabilities: [] },
  );
  const oom = clampOomScoreAdj(INFRA_OOM_SCORE_ADJ, host.oomScoreAdj);
  if (oom.warning) warnings.push(oom.warning);
  const env = new EnvBuilder();
  env.addLines(input.image?.config.Env ?? []);
  if (!env.has('PATH')) env.addLines([DEFAULT_PATH]);
  const paths = pathRestrictions(null, false);

  const spec: RuntimeSpec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid, gid, additionalGids: [gid] },
      args,
      env: env.lines(),
      cwd: '/',
      capabilities: caps.capabilities,
      noNewPrivileges: true,
      oomScoreAdj: oom.value,
      ...rlimitsOf(input.rlimits),
    },
    root: { path: input.rootfs, readonly: true },
    mounts: mountPlan.mounts,
    annotations: {
      ...sandbox.annotations,
      ...podAnnotations(input.sandboxId, sandbox),
      [ANNOTATIONS.containerType]: 'sandbox',
      ...(input.image ? { [ANNOTATIONS.imageName]: input.image.name, [ANNOTATIONS.imageId]: input.image.id } : {}),
    },
    linux: {
      namespaces: ns.namespaces,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      cgroupsPath: cgroupsPathFor(pod.cgroupParent, input.sandboxId, input.sandboxId),
      maskedPaths: paths.maskedPaths,
      readonlyPaths: paths.readonlyPaths,
    },
  };
  if (!ns.hostUts) spec.hostname = pod.hostname;
  const sysctls = validateSysctls(sandbox.linux?.sysctls ?? {}, ns);
  if (Object.keys(sysctls).length > 0) spec.linux.sysctl = sysctls;
  if (seccomp) spec.linux.seccomp = seccomp;
  return { spec, warnings, hostPropagation: [] };
}
