// The monitor actor's library surface: running containers under conmon + runc.
export { ContainerRuntime, type ContainerRuntimeOptions, type CreateOptions } from './container-runtime.js';
export type { ContainerRecord } from './container-records.js';
export type { ExitInfo, ExitReason, ContainerStatus, RuntimeState, ExecSyncResult, LinuxResources } from './types.js';
export { clampOomScoreAdj, readOomScoreAdj, adjustOomScore } from './oom-score.js';
export { parseSignal } from './signals.js';
export * from './cgroups.js';
