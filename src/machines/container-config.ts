// What a CreateContainer request must hold before a container stream is started for it. The
// checks here need nothing but the request; those that need the pod or the image (is the pod
// ready, is the image present) are made by the handler against live state.
import { posix } from 'node:path';
import { invalidArgument } from '../errors.js';
import { checkStringMap, quote, rejectNul } from './request-bounds.js';
import { normalizeCapability, seccompChoice, validateCriMount } from './container-rules.js';
import type { ContainerConfig__Output } from '../cri/proto/gen/runtime/v1/ContainerConfig.js';
import type { CreateContainerRequest__Output } from '../cri/proto/gen/runtime/v1/CreateContainerRequest.js';

export interface ValidCreateRequest {
  sandboxId: string;
  config: ContainerConfig__Output;
  imageName: string;
}

// kubelet's container names are DNS labels; anything a file or cgroup path cannot hold is refused.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;

export function validateCreateContainer(request: CreateContainerRequest__Output): ValidCreateRequest {
  const sandboxId = request.pod_sandbox_id.trim();
  if (sandboxId === '') throw invalidArgument('pod_sandbox_id: required');
  const config = request.config;
  if (!config) throw invalidArgument('config: required');
  const name = config.metadata?.name ?? '';
  if (name === '') throw invalidArgument('config.metadata.name: required');
  if (!NAME.test(name)) throw invalidArgument(`config.metadata.name: ${quote(name)} must be 1 to 253 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  const imageName = config.image?.image?.trim() ?? '';
  if (imageName === '') throw invalidArgument('config.image.image: required');
  if (imageName.length > 1024) throw invalidArgument(`config.image.image: ${quote(imageName)} is longer than 1024 characters`);
  rejectNul(config, 'config');
  checkStringMap(config.labels, 'config.labels');
  checkStringMap(config.annotations, 'config.annotations');
  if (config.working_dir !== '' && !posix.isAbsolute(config.working_dir)) {
    throw invalidArgument(`config.working_dir: ${quote(config.working_dir)} must be an absolute path`);
  }

  const sc = config.linux?.security_context;
  if (sc?.run_as_group && !sc.run_as_user && (sc.run_as_username ?? '') === '') {
    throw invalidArgument('config.linux.security_context.run_as_group: set without run_as_user or run_as_username');
  }
  if (sc?.run_as_user && (sc.run_as_username ?? '') !== '') {
    throw invalidArgument('config.linux.security_context: run_as_user and run_as_username are both set');
  }
  // Checked here so a bad request is INVALID_ARGUMENT at once, not a failed spec-write step.
  if (sc) {
    seccompChoice(sc, 'runtime-default');
    const caps = sc.capabilities;
    const lists = [['add_capabilities', caps?.add_capabilities, true], ['drop_capabilities', caps?.drop_capabilities, true], ['add_ambient_capabilities', caps?.add_ambient_capabilities, false]] as const;
    for (const [field, names, allowAll] of lists) {
      (names ?? []).forEach((name, i) => {
        if (!(allowAll && name.trim().toUpperCase() === 'ALL')) normalizeCapability(name, `config.linux.security_context.capabilities.${field}[${i}]`);
      });
    }
  }
  const logPath = config.log_path;
  if (logPath !== '') {
    if (posix.isAbsolute(logPath)) throw invalidArgument(`config.log_path: ${JSON.stringify(logPath)} must be relative to the pod's log_directory`);
    if (posix.normalize(logPath).split('/').includes('..')) throw invalidArgument(`config.log_path: ${JSON.stringify(logPath)} must not leave the pod's log_directory`);
  }
  config.envs.forEach((env, i) => {
    if (env.key === '' || env.key.includes('=')) throw invalidArgument(`config.envs[${i}].key: ${JSON.stringify(env.key)} is not a variable name`);
  });
  config.mounts.forEach((mount, i) => validateCriMount(mount, i));
  if (config.stdin_once && !config.stdin) throw invalidArgument('config.stdin_once: set without stdin');
  return { sandboxId, config, imageName };
}

/** The name a container holds in its pod: one live container per (pod, name, attempt). */
export function containerNameKey(sandboxId: string, config: ContainerConfig__Output): string {
  return `${sandboxId}/${config.metadata?.name ?? ''}/${config.metadata?.attempt ?? 0}`;
}

/**
 * Where conmon writes the container's log: kubelet names a file relative to the pod's
 * log_directory. Without either, the log stays with the container's own files.
 */
export function containerLogPath(logDirectory: string, config: ContainerConfig__Output, fallback: string): string {
  if (logDirectory === '' || config.log_path === '') return fallback;
  return posix.join(logDirectory, config.log_path);
}
