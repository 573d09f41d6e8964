// Every configuration key crisp knows: where it lives in crisp.conf, its command-line flag,
// its default and what it means. Loading, validation, `crisp config` and `--help` all read
// this one table, so a key cannot be documented in one place and parsed differently in another.

type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface CrispConfig {
  root: string;
  runroot: string;
  logLevel: LogLevel;
  socket: string;
  streamAddress: string;
  streamPort: number;
  runtimePath: string;
  conmonPath: string;
  cgroupDriver: 'cgroupfs';
  conmonCgroup: string;
  commandsCgroup: string;
  enableTracing: boolean;
  tracingEndpoint: string;
  tracingSamplingRatePerMillion: number;
  pauseImage: string;
  registriesConf: string;
  maxConcurrentDownloads: number;
  pullProgressTimeoutMs: number;
  pullMinBytesPerSecond: number;
  contentGcIntervalMs: number;
  maxLayerExpansion: number;
  cniConfigDir: string;
  cniPluginDirs: string[];
  enableMetrics: boolean;
  metricsAddress: string;
  shutdownTimeoutMs: number;
  eventRetentionMs: number;
  recoveryItemTimeoutMs: number;
  /** RuntimeClass handlers beside the default: [crisp.runtime.runtimes.NAME] tables. */
  runtimes: Record<string, RuntimeTable>;
}

/** One [crisp.runtime.runtimes.NAME] table. */
export interface RuntimeTable {
  /** The OCI runtime: a path, or a name looked up on PATH. */
  runtimePath: string;
  /** Its --root; default <runroot>/runtimes/NAME. */
  runtimeRoot?: string;
}

/** The handler table, its keys, and what each means (rendered by `crisp config`). */
export const RUNTIMES_SECTION = 'crisp.runtime.runtimes';
export const RUNTIME_TABLE_KEYS: Record<string, { prop: keyof RuntimeTable; doc: string }> = {
  runtime_path: { prop: 'runtimePath', doc: 'The OCI runtime of this handler: a path, or a name looked up on PATH.' },
  runtime_root: { prop: 'runtimeRoot', doc: 'Its --root, where it keeps container state; default <runroot>/runtimes/NAME.' },
};
/**
 * Handlers offered when no [crisp.runtime.runtimes] table is configured, each only where its
 * runtime is installed: Debian's crun beside the default runc.
 */
export const DEFAULT_OPTIONAL_RUNTIMES: Record<string, RuntimeTable> = { crun: { runtimePath: 'crun' } };

type ValueType = 'string' | 'path' | 'int' | 'bool' | 'duration' | 'paths' | 'level' | 'address' | 'cgroup-driver';

export interface KeySpec {
  prop: keyof CrispConfig;
  section: string;
  key: string;
  type: ValueType;
  flag?: string;
  doc: string;
  min?: number;
  max?: number;
}

export const DEFAULTS: CrispConfig = {
  root: '/var/lib/crisp',
  runroot: '/run/crisp',
  logLevel: 'info',
  socket: '/run/crisp/crisp.sock',
  streamAddress: '127.0.0.1',
  streamPort: 0,
  runtimePath: 'runc',
  conmonPath: 'conmon',
  cgroupDriver: 'cgroupfs',
  conmonCgroup: 'pod',
  commandsCgroup: 'crisp-commands',
  enableTracing: false,
  tracingEndpoint: 'http://127.0.0.1:4318/v1/traces',
  tracingSamplingRatePerMillion: 1_000_000,
  pauseImage: 'registry.k8s.io/pause:3.9',
  registriesConf: '/etc/containers/registries.conf',
  maxConcurrentDownloads: 3,
  pullProgressTimeoutMs: 5 * 60_000,
  pullMinBytesPerSecond: 1024,
  contentGcIntervalMs: 10 * 60_000,
  maxLayerExpansion: 1100,
  cniConfigDir: '/etc/cni/net.d',
  cniPluginDirs: ['/usr/lib/cni', '/opt/cni/bin'],
  enableMetrics: true,
  metricsAddress: '127.0.0.1:9090',
  shutdownTimeoutMs: 10_000,
  eventRetentionMs: 24 * 3_600_000,
  recoveryItemTimeoutMs: 30_000,
  runtimes: {},
};

export const KEYS: KeySpec[] = [
  { prop: 'root', section: 'crisp', key: 'root', type: 'path', flag: 'root',
    doc: 'Persistent state: the event log (state.db), image blobs and layers, container directories.' },
  { prop: 'runroot', section: 'crisp', key: 'runroot', type: 'path', flag: 'runroot',
    doc: 'Runtime state that does not survive a reboot: exit files, pinned namespaces, conmon sockets.' },
  { prop: 'logLevel', section: 'crisp', key: 'log_level', type: 'level', flag: 'log-level',
    doc: 'Log level: trace, debug, info, warn, error, fatal or silent.' },
  { prop: 'eventRetentionMs', section: 'crisp', key: 'event_retention', type: 'duration',
    doc: 'History of ended streams (removed pods and containers, finished pulls) is compacted this long after it ends; "0s" keeps it forever.' },
  { prop: 'recoveryItemTimeoutMs', section: 'crisp', key: 'recovery_item_timeout', type: 'duration', flag: 'recovery-item-timeout',
    doc: 'At start-up, how long the server waits for any one container or pod to recover before it opens anyway (that item goes on in the background).' },
  { prop: 'shutdownTimeoutMs', section: 'crisp', key: 'shutdown_timeout', type: 'duration',
    doc: 'How long a SIGTERM waits for calls in flight before closing them (containers keep running).' },
  { prop: 'socket', section: 'crisp.api', key: 'listen', type: 'path', flag: 'socket',
    doc: 'The CRI gRPC unix socket kubelet and crictl connect to.' },
  { prop: 'streamAddress', section: 'crisp.api', key: 'stream_address', type: 'string', flag: 'stream-address',
    doc: 'Address of the exec/attach/port-forward streaming server.' },
  { prop: 'streamPort', section: 'crisp.api', key: 'stream_port', type: 'int', flag: 'stream-port', min: 0, max: 65535,
    doc: 'Port of the streaming server; 0 picks a free port.' },
  { prop: 'runtimePath', section: 'crisp.runtime', key: 'runtime_path', type: 'string', flag: 'runtime',
    doc: 'The OCI runtime for the default handler: a path, or a name looked up on PATH.' },
  { prop: 'conmonPath', section: 'crisp.runtime', key: 'conmon_path', type: 'string', flag: 'conmon',
    doc: 'The conmon binary that monitors each container: a path, or a name looked up on PATH.' },
  { prop: 'conmonCgroup', section: 'crisp.runtime', key: 'conmon_cgroup', type: 'string',
    doc: 'Where each conmon is moved so that a restart of the crisp service leaves containers running: "pod" (a cgroup of its own beside the pod\'s containers), "daemon" (stay in the daemon\'s cgroup), or an absolute cgroupfs path. Only hierarchies where the daemon sits below the root are touched.' },
  { prop: 'commandsCgroup', section: 'crisp.runtime', key: 'commands_cgroup', type: 'string', flag: 'commands-cgroup',
    doc: 'A cgroup made below the daemon\'s own in the cpu hierarchy for the commands crisp runs (runc, CNI plugins, conmon until it moves) and the helper that starts them, so that the daemon\'s event loop does not queue behind them for a core while pods start; "daemon" leaves them in the daemon\'s cgroup. Only where the daemon sits below the root (a service); on cgroup v2 the daemon moves itself into a crisp-daemon leaf beside it.' },
  { prop: 'cgroupDriver', section: 'crisp.runtime', key: 'cgroup_driver', type: 'cgroup-driver',
    doc: 'cgroup driver reported to kubelet; crisp manages cgroups with cgroupfs.' },
  { prop: 'pauseImage', section: 'crisp.image', key: 'pause_image', type: 'string', flag: 'pause-image',
    doc: 'Image of the infra container, run only for pods that need a pod-level PID namespace.' },
  { prop: 'registriesConf', section: 'crisp.image', key: 'registries_conf', type: 'path', flag: 'registries-conf',
    doc: 'containers-registries.conf(5) file (v2) with mirrors, insecure and blocked registries; its .d directory is read too.' },
  { prop: 'maxConcurrentDownloads', section: 'crisp.image', key: 'max_concurrent_downloads', type: 'int', min: 1, max: 64,
    doc: 'Layers downloaded at once per pull.' },
  { prop: 'pullProgressTimeoutMs', section: 'crisp.image', key: 'pull_progress_timeout', type: 'duration',
    doc: 'A pull whose bytes stop moving this long is cancelled; "0s" turns the watchdog off.' },
  { prop: 'pullMinBytesPerSecond', section: 'crisp.image', key: 'pull_min_rate', type: 'int', min: 0, max: 1_000_000_000,
    doc: 'Bytes per second a pull must average over each pull_progress_timeout window, or it is cancelled (a registry trickling bytes); 0 turns the floor off.' },
  { prop: 'contentGcIntervalMs', section: 'crisp.image', key: 'content_gc_interval', type: 'duration',
    doc: 'How often layers and blobs no image refers to are collected (they are also collected after a failed pull and after RemoveImage); "0s" turns the periodic pass off.' },
  { prop: 'maxLayerExpansion', section: 'crisp.image', key: 'max_layer_expansion', type: 'int', min: 0, max: 1_000_000,
    doc: 'A layer that unpacks to more than this many times its compressed size (and over 64 MiB) is refused as a decompression bomb; gzip never expands past ~1032 times. 0 turns the bound off.' },
  { prop: 'cniConfigDir', section: 'crisp.network', key: 'cni_config_dir', type: 'path', flag: 'cni-config-dir',
    doc: 'CNI network configurations; the first in lexical order is used. crisp writes its default network here when it is empty.' },
  { prop: 'cniPluginDirs', section: 'crisp.network', key: 'cni_plugin_dirs', type: 'paths', flag: 'cni-plugin-dir',
    doc: 'Directories searched for CNI plugin binaries, in order.' },
  { prop: 'enableTracing', section: 'crisp.tracing', key: 'enable_tracing', type: 'bool', flag: 'enable-tracing',
    doc: 'Send OpenTelemetry traces: a span per CRI call and one per step the event log records.' },
  { prop: 'tracingEndpoint', section: 'crisp.tracing', key: 'endpoint', type: 'string', flag: 'tracing-endpoint',
    doc: 'The OTLP/HTTP (protobuf) traces URL of a collector, e.g. http://127.0.0.1:4318/v1/traces.' },
  { prop: 'tracingSamplingRatePerMillion', section: 'crisp.tracing', key: 'sampling_rate_per_million', type: 'int', min: 0, max: 1_000_000,
    doc: 'Traces kept per million calls that arrive without a sampled parent (a traceparent from kubelet decides for its own).' },
  { prop: 'enableMetrics', section: 'crisp.metrics', key: 'enable_metrics', type: 'bool', flag: 'enable-metrics',
    doc: 'Serve Prometheus metrics over HTTP.' },
  { prop: 'metricsAddress', section: 'crisp.metrics', key: 'metrics_address', type: 'address', flag: 'metrics-address',
    doc: 'host:port of the metrics endpoint.' },
];

export const SECTIONS = [...new Set(KEYS.map((k) => k.section))];
