// Container and pod stats from the cgroup files themselves (v1, hybrid and v2), the overlay
// upper dir and the pod's network namespace. No process is spawned per container: a stats
// call is a handful of small file reads per cgroup, plus at most one cached nsenter per pod
// that has no process to read its namespace through.
import { dirname } from 'node:path';
import type { EventStore } from '../../events/store.js';
import { nowNs } from '../../events/clock.js';
import type { EntityState } from '../../machines/index.js';
import { detectCgroupLayout, resolveCgroupPaths, type CgroupLayout, type CgroupPaths } from '../monitor/cgroups.js';
import { containerLayout, type ContainerLayout } from '../monitor/container-layout.js';
import { cgroupsPathFor } from '../spec/resources.js';
import { silentLogger, type Logger } from '../../log.js';
import { isPinned } from '../network/namespaces.js';
import { CpuRates } from './cpu-rate.js';
import { readCgroupSample } from './cgroup-sample.js';
import { WritableLayerCache } from '../storage/writable-layer-cache.js';
import { PodNetworkReader } from './pod-network.js';
import { sandboxState } from '../sandbox/sandbox-streams.js';
import type { ContainerStats } from '../../cri/proto/gen/runtime/v1/ContainerStats.js';
import type { PodSandboxStats } from '../../cri/proto/gen/runtime/v1/PodSandboxStats.js';
import type { CpuUsage } from '../../cri/proto/gen/runtime/v1/CpuUsage.js';
import type { MemoryUsage } from '../../cri/proto/gen/runtime/v1/MemoryUsage.js';
import type { SwapUsage } from '../../cri/proto/gen/runtime/v1/SwapUsage.js';
import type { NetworkUsage } from '../../cri/proto/gen/runtime/v1/NetworkUsage.js';
import type { ProcessUsage } from '../../cri/proto/gen/runtime/v1/ProcessUsage.js';
import type { IoUsage } from '../../cri/proto/gen/runtime/v1/IoUsage.js';

type ContainerState = EntityState<'container'>;
type SandboxState = EntityState<'sandbox'>;

export interface StatsCollectorOptions {
  /** crisp's --root: containers' upper dirs live under <root>/containers. */
  root: string;
  /** How old a writable-layer figure may get before a background walk refreshes it. */
  layerRefreshMs?: number;
  /** The daemon's one cache of writable-layer walks (ImageFsInfo sums the same figures); made here when absent. */
  writableLayers?: WritableLayerCache;
  /** How long a pod's network counters are reused. */
  networkCacheMs?: number;
  logger?: Logger;
  cgroupLayout?: () => Promise<CgroupLayout>;
}

interface CgroupUsage {
  cpu?: CpuUsage;
  memory?: MemoryUsage;
  swap?: SwapUsage;
  process?: ProcessUsage;
  io?: IoUsage;
}

// As protobufjs encodes a UInt64Value cheapest: a number while a double holds the value exactly
// (a decimal string goes through Long.fromString on every encode), a string beyond that.
const u64 = (v: bigint | number) => ({ value: v <= Number.MAX_SAFE_INTEGER ? Number(v) : String(v) });

// kubelet asks ListPodSandboxStats and ListContainerStats together, and a pod's stats hold its
// containers' too: a cgroup sampled this recently answers again with the same sample (and its
// timestamp), rather than having the kernel build memory.stat and the rest anew for each call.
const SAMPLE_REUSE_MS = 500;

/** The cgroupfs directory of a pod: its cgroup_parent, or the one crisp makes when there is none. */
export function podCgroupPath(sandboxId: string, sandbox: SandboxState | undefined): string {
  return dirname(cgroupsPathFor(sandbox?.context.config?.linux?.cgroup_parent ?? '', sandboxId, sandboxId));
}

function containerCgroupPath(containerId: string, state: ContainerState, sandbox: SandboxState | undefined): string {
  return cgroupsPathFor(sandbox?.context.config?.linux?.cgroup_parent ?? '', state.context.sandboxId, containerId);
}

export class StatsCollector {
  private readonly rates = new CpuRates();
  private readonly recent = new Map<string, { atMs: number; usage: CgroupUsage }>();
  /** Each cgroup's directories, by the key its samples are kept under: they never change. */
  private readonly cgroups = new Map<string, { cgroupsPath: string; paths: CgroupPaths }>();
  private readonly layouts = new Map<string, ContainerLayout>();
  private readonly layers: WritableLayerCache;
  private readonly ownsLayers: boolean;
  private readonly network: PodNetworkReader;
  private readonly logger: Logger;
  private layout?: Promise<CgroupLayout>;

  constructor(private readonly store: EventStore, private readonly o: StatsCollectorOptions) {
    this.logger = o.logger ?? silentLogger;
    this.layers = o.writableLayers ?? new WritableLayerCache({ refreshMs: o.layerRefreshMs ?? 10_000, logger: this.logger });
    this.ownsLayers = o.writableLayers === undefined;
    this.network = new PodNetworkReader(o.networkCacheMs ?? 1000);
  }

  private async paths(key: string, cgroupsPath: string): Promise<CgroupPaths> {
    const known = this.cgroups.get(key);
    if (known?.cgroupsPath === cgroupsPath) return known.paths;
    this.layout ??= (this.o.cgroupLayout ?? detectCgroupLayout)();
    const paths = resolveCgroupPaths(await this.layout, cgroupsPath);
    this.cgroups.set(key, { cgroupsPath, paths });
    return paths;
  }


  async containerStats(id: string, state: ContainerState): Promise<ContainerStats> {
    const c = state.context;
    const stats: ContainerStats = {
      attributes: { id, metadata: c.config?.metadata ?? null, labels: c.config?.labels ?? {}, annotations: c.config?.annotations ?? {} },
    };
    let layout = this.layouts.get(id);
    if (!layout) this.layouts.set(id, (layout = containerLayout(this.o.root, id)));
    const [usage, layer] = await Promise.all([
      c.pid !== null ? this.safeUsage(`container:${id}`, () => containerCgroupPath(id, state, sandboxState(this.store, c.sandboxId))) : undefined,
      this.layers.usage(id, layout.upper).catch((err: unknown) => {
        this.logger.warn({ err, container: id }, 'writable layer walk failed');
        return undefined;
      }),
    ]);
    if (usage?.cpu) stats.cpu = usage.cpu;
    if (usage?.memory) stats.memory = usage.memory;
    if (usage?.swap) stats.swap = usage.swap;
    if (usage?.io) stats.io = usage.io;
    if (layer) {
      stats.writable_layer = {
        timestamp: String(layer.atNs),
        fs_id: { mountpoint: layout.dir },
        used_bytes: u64(layer.bytes),
        inodes_used: u64(layer.inodes),
      };
    }
    return stats;
  }

  async podStats(id: string, state: SandboxState, containers: [string, ContainerState][]): Promise<PodSandboxStats> {
    const config = state.context.config;
    const pids = containers.map(([, s]) => s.context.pid).filter((p): p is number => p !== null);
    const netns = state.context.namespaces.net;
    const [usage, network, containerStats] = await Promise.all([
      this.safeUsage(`pod:${id}`, () => podCgroupPath(id, state)),
      netns && state.value === 'ready' ? this.networkUsage(id, netns, pids) : undefined,
      Promise.all(containers.map(([cid, s]) => this.containerStats(cid, s))),
    ]);
    return {
      attributes: { id, metadata: config?.metadata ?? null, labels: config?.labels ?? {}, annotations: config?.annotations ?? {} },
      linux: {
        cpu: usage?.cpu ?? null,
        memory: usage?.memory ?? null,
        network: network ?? null,
        process: usage?.process ?? null,
        io: usage?.io ?? null,
        containers: containerStats,
      },
    };
  }

  /** Forgets cached figures of containers and pods that are gone. */
  retainOnly(containerIds: Set<string>, podIds: Set<string>): void {
    this.layers.retainOnly(containerIds);
    this.network.retainOnly(podIds);
    const keys = new Set([...[...containerIds].map((i) => `container:${i}`), ...[...podIds].map((i) => `pod:${i}`)]);
    this.rates.retainOnly(keys);
    for (const key of this.recent.keys()) if (!keys.has(key)) this.recent.delete(key);
    for (const key of this.cgroups.keys()) if (!keys.has(key)) this.cgroups.delete(key);
    for (const id of this.layouts.keys()) if (!containerIds.has(id)) this.layouts.delete(id);
  }

  close(): void {
    if (this.ownsLayers) this.layers.close();
  }

  private async networkUsage(id: string, netns: string, pids: number[]): Promise<NetworkUsage | undefined> {
    try {
      const sample = await this.network.read(id, netns, pids);
      const interfaces = sample.interfaces.map((i) => ({
        name: i.name, rx_bytes: u64(i.rxBytes), rx_errors: u64(i.rxErrors), tx_bytes: u64(i.txBytes), tx_errors: u64(i.txErrors),
      }));
      return {
        timestamp: String(sample.atNs),
        default_interface: interfaces.find((i) => i.name === 'eth0') ?? interfaces[0] ?? null,
        interfaces,
      };
    } catch (err) {
      // A pod being stopped while its stats are read loses its namespace under the read: no
      // counters, and nothing wrong. Anything else is worth a warning.
      if (await isPinned(netns, 'net')) this.logger.warn({ err, sandbox: id }, 'reading pod network counters failed');
      else this.logger.debug({ sandbox: id }, 'pod network namespace released while its counters were read');
      return undefined;
    }
  }

  // One unreadable cgroup (a cgroup_parent crisp cannot place, a racing removal) must not fail
  // the stats of every other container in a List call.
  private async safeUsage(key: string, path: () => string): Promise<CgroupUsage | undefined> {
    try {
      return await this.cgroupUsage(key, path());
    } catch (err) {
      this.logger.warn({ err, cgroup: key }, 'reading cgroup stats failed');
      return undefined;
    }
  }

  private async cgroupUsage(key: string, cgroupsPath: string): Promise<CgroupUsage> {
    const recent = this.recent.get(key);
    if (recent && performance.now() - recent.atMs < SAMPLE_REUSE_MS) return recent.usage;
    const usage = this.sample(key, await this.paths(key, cgroupsPath));
    this.recent.set(key, { atMs: performance.now(), usage });
    return usage;
  }

  private sample(key: string, paths: CgroupPaths): CgroupUsage {
    const { cpuNs, memory: m, swap, processes, pressure } = readCgroupSample(paths);
    const at = nowNs();
    const timestamp = String(at);
    const out: CgroupUsage = {};
    if (cpuNs !== undefined) {
      const rate = this.rates.observe(key, cpuNs, at);
      out.cpu = {
        timestamp,
        usage_core_nano_seconds: u64(cpuNs),
        ...(rate !== undefined && { usage_nano_cores: u64(rate) }),
        ...(pressure.cpu && { psi: pressure.cpu }),
      };
    }
    if (m) {
      out.memory = {
        timestamp,
        working_set_bytes: u64(m.workingSetBytes),
        usage_bytes: u64(m.usageBytes),
        ...(m.limitBytes !== undefined && { available_bytes: u64(m.limitBytes > m.workingSetBytes ? m.limitBytes - m.workingSetBytes : 0n) }),
        ...(m.rssBytes !== undefined && { rss_bytes: u64(m.rssBytes) }),
        ...(m.pageFaults !== undefined && { page_faults: u64(m.pageFaults) }),
        ...(m.majorPageFaults !== undefined && { major_page_faults: u64(m.majorPageFaults) }),
        ...(pressure.memory && { psi: pressure.memory }),
      };
    }
    if (swap) {
      out.swap = {
        timestamp,
        swap_usage_bytes: u64(swap.usageBytes),
        ...(swap.limitBytes !== undefined && {
          swap_available_bytes: u64(swap.limitBytes > swap.usageBytes ? swap.limitBytes - swap.usageBytes : 0n),
        }),
      };
    }
    if (processes !== undefined) out.process = { timestamp, process_count: u64(processes) };
    if (pressure.io) out.io = { timestamp, psi: pressure.io };
    return out;
  }
}
