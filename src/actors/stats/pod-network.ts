// A pod's network counters, read inside its network namespace. /proc/<pid>/net/dev shows the
// counters of the namespace <pid> lives in, so when one of the pod's containers runs (it
// does whenever the counters move) they are read without any spawn; the namespace's inode is
// compared with the pinned file's first, so a recycled pid never reports another pod. A pod
// with no process in it is read by a child of the spawn helper that enters the namespace
// (host/syscalls.ts; nsenter + cat without the helper), and every answer is cached briefly:
// kubelet and crictl ask for the same pods within the same second. procfs is read with the
// sync calls, which cost a tenth of fs/promises' CPU for files this small. A stats call reads
// its pods side by side (stats-deps.ts); at most four reads inside a namespace run at once, so a
// node with many pods whose containers have all exited (finished jobs) does not fork one per pod.
import { readFileSync, statSync } from 'node:fs';
import { readInside } from '../../host/syscalls.js';
import { internal, messageOf } from '../../errors.js';
import { nowNs } from '../../events/clock.js';
import { concurrencyLimit } from '../../async.js';

export interface InterfaceCounters {
  name: string;
  rxBytes: bigint;
  rxErrors: bigint;
  txBytes: bigint;
  txErrors: bigint;
}

export interface PodNetworkSample {
  atNs: bigint;
  interfaces: InterfaceCounters[];
}

/** Parses /proc/net/dev; the loopback interface is left out, as kubelet ignores it. */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/);
    if (name === 'lo' || f.length < 16 || !f.every((v) => /^\d+$/.test(v))) continue;
    out.push({ name, rxBytes: BigInt(f[0]!), rxErrors: BigInt(f[2]!), txBytes: BigInt(f[8]!), txErrors: BigInt(f[10]!) });
  }
  return out;
}

function inodeOf(path: string): bigint | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return (st.dev << 64n) | st.ino;
  } catch {
    return undefined;
  }
}

const READS_INSIDE_AT_ONCE = 4;

export class PodNetworkReader {
  private readonly cache = new Map<string, PodNetworkSample>();
  private readonly inflight = new Map<string, Promise<PodNetworkSample>>();
  private readonly insideSlot = concurrencyLimit(READS_INSIDE_AT_ONCE);

  constructor(private readonly cacheMs = 1000) {}

  /** Counters of the pod whose netns is pinned at `netnsPath`; `pids` are its containers' processes. */
  read(podId: string, netnsPath: string, pids: number[]): Promise<PodNetworkSample> {
    const cached = this.cache.get(podId);
    if (cached && nowNs() - cached.atNs < BigInt(this.cacheMs) * 1_000_000n) return Promise.resolve(cached);
    let pending = this.inflight.get(podId);
    if (!pending) {
      pending = this.measure(netnsPath, pids)
        .then((sample) => (this.cache.set(podId, sample), sample))
        .finally(() => this.inflight.delete(podId));
      this.inflight.set(podId, pending);
    }
    return pending;
  }

  retainOnly(podIds: Set<string>): void {
    for (const id of this.cache.keys()) if (!podIds.has(id)) this.cache.delete(id);
  }

  private async measure(netnsPath: string, pids: number[]): Promise<PodNetworkSample> {
    const wanted = inodeOf(netnsPath);
    if (wanted !== undefined) {
      for (const pid of pids) {
        if (inodeOf(`/proc/${pid}/ns/net`) !== wanted) continue;
        try {
          const text = readFileSync(`/proc/${pid}/net/dev`, 'utf8');
          return { atNs: nowNs(), interfaces: parseNetDev(text) };
        } catch {
          // exited between the two reads: try the next one
        }
      }
    }
    let text: string;
    try {
      text = await this.insideSlot(() => readInside({ net: netnsPath }, '/proc/self/net/dev'));
    } catch (err) {
      throw internal(`reading network counters in ${netnsPath} failed: ${messageOf(err)}`, err);
    }
    return { atNs: nowNs(), interfaces: parseNetDev(text) };
  }
}
