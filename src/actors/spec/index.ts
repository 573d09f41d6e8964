// The spec actor's library: OCI runtime spec generation and the IO helpers that feed it.

export type * from './oci-types.js';
export type * from './input.js';
export { generateSpec, generateInfraSpec } from './generate.js';
export { resolveUserFrom, readUserDatabase } from './user.js';
export { readHostFacts } from './host-facts.js';
export { prepareMounts, releasePreparedMounts } from './mounts.js';
export { loadLocalhostSeccompProfile } from './seccomp.js';
export { writeSpecFile } from './bundle.js';
export { podResourcesOf } from './pod-resources.js';
