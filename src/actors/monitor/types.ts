// Shapes the monitor hands back to the core. Timestamps are nanoseconds since the epoch as
// bigint, because a Number cannot hold them exactly (CRI carries them as int64).

// Unknown: nobody could collect the exit status (conmon was gone); code 255, as containerd reports it.
type ExitReason = 'Completed' | 'Error' | 'OOMKilled' | 'Unknown';

export interface ExitInfo {
  /** The container's exit status as conmon saw it: the code, or 128+signal; -1 if unknown. */
  exitCode: number;
  /** When the exit file was written, in ns since the epoch. */
  finishedAt: bigint;
  /** The container's memory cgroup recorded an OOM kill while it ran. */
  oomKilled: boolean;
  reason: ExitReason;
  /** Set when crisp had to infer the exit (conmon vanished without writing an exit file). */
  message?: string;
}

type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped';

export interface RuntimeState {
  status: ContainerStatus;
  pid: number;
}

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
  /** Output beyond maxOutputBytes (per stream) was dropped. */
  truncated: boolean;
  timedOut: boolean;
}

/** OCI runtime-spec `linux.resources`, the part `runc update -r` understands. */
export interface LinuxResources {
  memory?: {
    limit?: number;
    reservation?: number;
    swap?: number;
    kernel?: number;
    kernelTCP?: number;
    swappiness?: number;
    disableOOMKiller?: boolean;
    useHierarchy?: boolean;
  };
  cpu?: {
    shares?: number;
    quota?: number;
    period?: number;
    realtimeRuntime?: number;
    realtimePeriod?: number;
    cpus?: string;
    mems?: string;
    idle?: number;
  };
  pids?: { limit: number };
  blockIO?: {
    weight?: number;
    leafWeight?: number;
    weightDevice?: Array<{ major: number; minor: number; weight?: number; leafWeight?: number }>;
    throttleReadBpsDevice?: Array<{ major: number; minor: number; rate: number }>;
    throttleWriteBpsDevice?: Array<{ major: number; minor: number; rate: number }>;
    throttleReadIOPSDevice?: Array<{ major: number; minor: number; rate: number }>;
    throttleWriteIOPSDevice?: Array<{ major: number; minor: number; rate: number }>;
  };
  hugepageLimits?: Array<{ pageSize: string; limit: number }>;
  unified?: Record<string, string>;
  devices?: Array<{ allow: boolean; type?: string; major?: number; minor?: number; access?: string }>;
}
