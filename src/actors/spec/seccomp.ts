// Seccomp profiles: the containers-common format (/usr/share/containers/seccomp.json, a superset
// of the OCI shape) is turned into the OCI linux.seccomp for one container, keeping only the rules
// that apply to this architecture, kernel and capability set, as containers/common does.

import { readFile, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { failedPrecondition, invalidArgument, notFound } from '../../errors.js';
import { seccompChoice, type SeccompChoice, type SeccompRequest } from '../../machines/container-rules.js';
import type { LoadedSeccompProfile } from './input.js';
import type { OciSeccomp, OciSeccompArg, OciSyscall, SeccompAction } from './oci-types.js';

const ACTIONS = new Set<SeccompAction>([
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
]);
const OPERATORS = new Set([
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
]);

/** libseccomp's name of each main architecture, keyed by the Go name seccomp profiles filter on. */
const SECCOMP_ARCH_OF: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64',
  arm64: 'SCMP_ARCH_AARCH64',
  mips64: 'SCMP_ARCH_MIPS64',
  mips64n32: 'SCMP_ARCH_MIPS64N32',
  mipsel64: 'SCMP_ARCH_MIPSEL64',
  mipsel64n32: 'SCMP_ARCH_MIPSEL64N32',
  s390x: 'SCMP_ARCH_S390X',
  ppc64le: 'SCMP_ARCH_PPC64LE',
  riscv64: 'SCMP_ARCH_RISCV64',
};

/** Node's process.arch → the Go architecture name profiles use. */
export function goArch(nodeArch: string): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', ppc64: 'ppc64le', loong64: 'loong64' };
  return map[nodeArch] ?? nodeArch;
}

export interface SeccompContext {
  arch: string;
  kernelRelease: string;
  /** The container's bounding capabilities (CAP_* names). */
  capabilities: readonly string[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringList(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
    throw invalidArgument(`${where}: expected a list of strings`);
  }
  return v as string[];
}

function errnoValue(name: unknown, ret: unknown, where: string): number | undefined {
  if (typeof name === 'string' && name !== '') {
    if (/^\d+$/.test(name)) return Number(name);
    const value = (osConstants.errno as Record<string, number>)[name];
    if (value === undefined) throw invalidArgument(`${where}: unknown errno "${name}"`);
    return value;
  }
  if (ret === undefined || ret === null) return undefined;
  if (typeof ret !== 'number' || !Number.isInteger(ret) || ret < 0) {
    throw invalidArgument(`${where}: errnoRet must be a non-negative integer`);
  }
  return ret;
}

function action(v: unknown, where: string): SeccompAction {
  if (typeof v !== 'string' || !ACTIONS.has(v as SeccompAction)) {
    throw invalidArgument(`${where}: unknown seccomp action ${JSON.stringify(v)}`);
  }
  return v as SeccompAction;
}

/** "5.10.0-21-amd64" ≥ "4.8"? Compares the numeric major.minor.patch prefix. */
export function kernelAtLeast(release: string, min: string): boolean {
  const parse = (s: string) => (s.match(/^(\d+)(?:\.(\d+))?(?:\.(\d+))?/) ?? []).slice(1, 4).map((n) => Number(n ?? 0));
  const have = parse(release);
  const want = parse(min);
  if (want.length === 0) return true;
  for (let i = 0; i < 3; i++) {
    const h = have[i] ?? 0;
    const w = want[i] ?? 0;
    if (h !== w) return h > w;
  }
  return true;
}

function ruleApplies(rule: Json, ctx: SeccompContext, where: string): boolean {
  const includes = isObject(rule.includes) ? rule.includes : {};
  const excludes = isObject(rule.excludes) ? rule.excludes : {};
  const inArches = stringList(includes.arches, `${where}.includes.arches`);
  const inCaps = stringList(includes.caps, `${where}.includes.caps`);
  const exArches = stringList(excludes.arches, `${where}.excludes.arches`);
  const exCaps = stringList(excludes.caps, `${where}.excludes.caps`);
  if (exArches.includes(ctx.arch)) return false;
  if (exCaps.some((c) => ctx.capabilities.includes(c))) return false;
  if (inArches.length > 0 && !inArches.includes(ctx.arch)) return false;
  if (inCaps.some((c) => !ctx.capabilities.includes(c))) return false;
  if (typeof includes.minKernel === 'string' && includes.minKernel !== '' && !kernelAtLeast(ctx.kernelRelease, includes.minKernel)) {
    return false;
  }
  return true;
}

function translateArgs(v: unknown, where: string): OciSeccompArg[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalidArgument(`${where}: expected a list`);
  if (v.length === 0) return undefined;
  return v.map((a: unknown, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(a)) throw invalidArgument(`${at}: expected an object`);
    const { index, value, valueTwo, op } = a;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) {
      throw invalidArgument(`${at}.index: must be 0..5`);
    }
    if (typeof value !== 'number') throw invalidArgument(`${at}.value: must be a number`);
    if (typeof op !== 'string' || !OPERATORS.has(op)) throw invalidArgument(`${at}.op: unknown operator ${JSON.stringify(op)}`);
    const arg: OciSeccompArg = { index, value, op };
    if (typeof valueTwo === 'number' && valueTwo !== 0) arg.valueTwo = valueTwo;
    return arg;
  });
}

/**
 * Translates a seccomp profile (containers-common or plain OCI JSON) into the OCI shape for one
 * container. `source` names the profile in error messages.
 */
export function translateSeccompProfile(profile: unknown, ctx: SeccompContext, source: string): OciSeccomp {
  if (!isObject(profile)) throw invalidArgument(`seccomp profile ${source}: expected a JSON object`);
  const defaultAction = action(profile.defaultAction, `seccomp profile ${source}: defaultAction`);
  const out: OciSeccomp = { defaultAction };
  const defaultErrnoRet = errnoValue(profile.defaultErrno, profile.defaultErrnoRet, `seccomp profile ${source}: defaultErrno`);
  if (defaultErrnoRet !== undefined) out.defaultErrnoRet = defaultErrnoRet;

  const architectures = stringList(profile.architectures, `seccomp profile ${source}: architectures`);
  const archMap = Array.isArray(profile.archMap) ? profile.archMap : [];
  if (architectures.length > 0 && archMap.length > 0) {
    throw invalidArgument(`seccomp profile ${source}: give either architectures or archMap, not both`);
  }
  if (architectures.length > 0) out.architectures = [...architectures];
  const native = SECCOMP_ARCH_OF[ctx.arch];
  for (const entry of archMap) {
    if (native && isObject(entry) && entry.architecture === native) {
      out.architectures = [native, ...stringList(entry.subArchitectures, `seccomp profile ${source}: archMap.subArchitectures`)];
      break;
    }
  }
  const flags = stringList(profile.flags, `seccomp profile ${source}: flags`);
  if (flags.length > 0) out.flags = flags;
  if (typeof profile.listenerPath === 'string' && profile.listenerPath !== '') out.listenerPath = profile.listenerPath;
  if (typeof profile.listenerMetadata === 'string' && profile.listenerMetadata !== '') out.listenerMetadata = profile.listenerMetadata;

  const rules = profile.syscalls ?? [];
  if (!Array.isArray(rules)) throw invalidArgument(`seccomp profile ${source}: syscalls must be a list`);
  const syscalls: OciSyscall[] = [];
  rules.forEach((rule: unknown, i) => {
    const where = `seccomp profile ${source}: syscalls[${i}]`;
    if (!isObject(rule)) throw invalidArgument(`${where}: expected an object`);
    if (!ruleApplies(rule, ctx, where)) return;
    const names = stringList(rule.names, `${where}.names`);
    if (typeof rule.name === 'string' && rule.name !== '') {
      if (names.length > 0) throw invalidArgument(`${where}: give either name or names, not both`);
      names.push(rule.name);
    }
    if (names.length === 0) return;
    const call: OciSyscall = { names: [...names], action: action(rule.action, `${where}.action`) };
    const errnoRet = errnoValue(rule.errno, rule.errnoRet, `${where}.errnoRet`);
    if (errnoRet !== undefined) call.errnoRet = errnoRet;
    const args = translateArgs(rule.args, `${where}.args`);
    if (args) call.args = args;
    syscalls.push(call);
  });
  if (syscalls.length > 0) out.syscalls = syscalls;
  return out;
}

/**
 * Reads the Localhost profile a container asks for, so that generateSpec can stay pure.
 * Returns undefined when the container does not ask for one.
 */
export async function loadLocalhostSeccompProfile(
  securityContext: SeccompRequest | null,
): Promise<LoadedSeccompProfile | undefined> {
  const choice = seccompChoice(securityContext, 'unconfined');
  if (choice.kind !== 'localhost') return undefined;
  let text: string;
  try {
    const info = await stat(choice.path);
    if (!info.isFile()) throw invalidArgument(`seccomp Localhost profile ${choice.path} is not a regular file`);
    text = await readFile(choice.path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw notFound(`seccomp Localhost profile ${choice.path} does not exist`);
    }
    throw err;
  }
  try {
    return { path: choice.path, profile: JSON.parse(text) as unknown };
  } catch (err) {
    throw invalidArgument(`seccomp Localhost profile ${choice.path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The OCI seccomp section for a choice, or undefined for unconfined. */
export function resolveSeccomp(
  choice: SeccompChoice,
  defaultProfile: unknown,
  localhost: LoadedSeccompProfile | undefined,
  ctx: SeccompContext,
): OciSeccomp | undefined {
  switch (choice.kind) {
    case 'unconfined':
      return undefined;
    case 'runtime-default':
      if (defaultProfile === null || defaultProfile === undefined) {
        throw failedPrecondition('seccomp RuntimeDefault requested but the host has no default profile (/usr/share/containers/seccomp.json)');
      }
      return translateSeccompProfile(defaultProfile, ctx, 'RuntimeDefault');
    case 'localhost':
      if (!localhost || localhost.path !== choice.path) {
        throw failedPrecondition(`seccomp Localhost profile ${choice.path} was not loaded (call loadLocalhostSeccompProfile first)`);
      }
      return translateSeccompProfile(localhost.profile, ctx, choice.path);
  }
}
