import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CpuRates } from '../../src/actors/stats/cpu-rate.js';
import { parseNetDev } from '../../src/actors/stats/pod-network.js';
import { WritableLayerCache } from '../../src/actors/storage/writable-layer-cache.js';
import { metricDescriptors, podSandboxMetrics } from '../../src/actors/stats/pod-metrics.js';
import { podCgroupPath } from '../../src/actors/stats/collector.js';
import { parsePressure } from '../../src/actors/stats/psi.js';
import { parseListenAddress } from '../../src/metrics/server.js';
import { mapYielding } from '../../src/actors/stats/stats-deps.js';

test('cpu rate: none for the first sample, then cores × 1e9 over the window, reset on a counter that went back', () => {
  const rates = new CpuRates();
  assert.equal(rates.observe('a', 1_000_000_000n, 10_000_000_000n), undefined);
  assert.equal(rates.observe('a', 1_500_000_000n, 11_000_000_000n), 500_000_000n);
  // a sample too close to the last one reuses the last rate instead of a noisy one
  assert.equal(rates.observe('a', 1_600_000_000n, 11_010_000_000n), 500_000_000n);
  assert.equal(rates.observe('a', 100n, 12_000_000_000n), undefined);
  rates.retainOnly(new Set());
  assert.equal(rates.observe('a', 200n, 13_000_000_000n), undefined);
});

test('/proc/net/dev: counters per interface, loopback left out', () => {
  const text = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    '    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0',
    '  eth0: 5000  40 2 0 0 0 0 0 7000 50 3 0 0 0 0 0',
  ].join('\n');
  assert.deepEqual(parseNetDev(text), [{ name: 'eth0', rxBytes: 5000n, rxErrors: 2n, txBytes: 7000n, txErrors: 3n }]);
});

test('writable layer cache: first call waits for a walk, later calls answer at once and refresh in the background', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-test-stats-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let walks = 0;
  const cache = new WritableLayerCache({ refreshMs: 20, walk: async () => ({ bytes: 4096 * ++walks, inodes: walks }) });
  t.after(() => cache.close());
  const first = await cache.usage('c1', dir);
  assert.equal(first.bytes, 4096);
  assert.equal((await cache.usage('c1', dir)).bytes, 4096, 'fresh figure reused');
  await sleep(30);
  assert.equal((await cache.usage('c1', dir)).bytes, 4096, 'a stale figure is answered while it refreshes');
  await sleep(10);
  assert.equal((await cache.usage('c1', dir)).bytes, 8192, 'the background walk replaced it');
  cache.retainOnly(new Set());
  assert.equal((await cache.usage('c1', dir)).inodes, 3, 'a forgotten container is walked afresh');
  assert.throws(() => new WritableLayerCache({ refreshMs: 0 }), /refreshMs/);
});

test('writable layer cache walks the real tree with du semantics', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-test-stats-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cache = new WritableLayerCache({ refreshMs: 1000 });
  t.after(() => cache.close());
  writeFileSync(join(dir, 'f'), Buffer.alloc(100_000, 1));
  const usage = await cache.usage('x', dir);
  assert.ok(usage.bytes >= 100_000, `bytes ${usage.bytes}`);
  assert.equal(usage.inodes, 2);
});

test('pod cgroup: the cgroup_parent, or crisp\'s own per pod', () => {
  const state = (parent: string) => ({ value: 'ready', context: { config: { linux: { cgroup_parent: parent } } } }) as never;
  assert.equal(podCgroupPath('abc', state('/kubepods/pod1')), '/kubepods/pod1');
  assert.equal(podCgroupPath('abc', state('')), '/crisp/abc');
  assert.equal(podCgroupPath('abc', undefined), '/crisp/abc');
});

test('pod metrics: every metric is described and carries as many label values as its descriptor has keys', () => {
  const descriptors = new Map(metricDescriptors().map((d) => [d.name!, d.label_keys!]));
  const v = (n: number | bigint) => ({ value: String(n) });
  const ts = '1700000000000000000';
  const metrics = podSandboxMetrics({
    attributes: { id: 'pod1', metadata: { name: 'web' } },
    linux: {
      cpu: { timestamp: ts, usage_core_nano_seconds: v(3_500_000_000n) },
      memory: { timestamp: ts, working_set_bytes: v(1000), usage_bytes: v(2000), rss_bytes: v(500), page_faults: v(7) },
      process: { timestamp: ts, process_count: v(2) },
      network: { timestamp: ts, interfaces: [{ name: 'eth0', rx_bytes: v(10), tx_bytes: v(20), rx_errors: v(0), tx_errors: v(0) }] },
      containers: [{
        attributes: { id: 'c1', metadata: { name: 'app' } },
        cpu: { timestamp: ts, usage_core_nano_seconds: v(2_000_000_000n) },
        writable_layer: { timestamp: ts, fs_id: { mountpoint: '/x' }, used_bytes: v(4096), inodes_used: v(3) },
      }],
    },
  }, new Map([['c1', 'busybox:latest']]));
  const all = [...metrics.metrics!, ...metrics.container_metrics!.flatMap((c) => c.metrics!)];
  for (const m of all) assert.equal(m.label_values!.length, descriptors.get(m.name!)?.length, m.name);
  const cpu = metrics.container_metrics![0]!.metrics!.find((m) => m.name === 'container_cpu_usage_seconds_total')!;
  assert.equal(cpu.value!.value, '2');
  assert.deepEqual(cpu.label_values, ['c1', 'app', 'busybox:latest']);
  const rx = metrics.metrics!.find((m) => m.name === 'container_network_receive_bytes_total')!;
  assert.deepEqual(rx.label_values, ['pod1', 'web', '', 'eth0']);
  assert.equal(rx.metric_type, 'COUNTER');
});

test('metrics address: host:port, with a clear error otherwise', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:9090'), { host: '127.0.0.1', port: 9090 });
  assert.deepEqual(parseListenAddress('[::1]:9090'), { host: '::1', port: 9090 });
  assert.throws(() => parseListenAddress('127.0.0.1:0'), /metrics_address/);
  assert.throws(() => parseListenAddress('nohost'), /metrics_address/);
});

test('pressure files: some and full lines, each total and average; junk is skipped', () => {
  assert.deepEqual(parsePressure('some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'), {
    Some: { Total: 12345, Avg10: 1.5, Avg60: 0.25, Avg300: 0 },
    Full: { Total: 0, Avg10: 0, Avg60: 0, Avg300: 0 },
  });
  assert.deepEqual(parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=7'), { Some: { Total: 7, Avg10: 0, Avg60: 0, Avg300: 0 } });
  // a total past what a double holds exactly stays a decimal string
  assert.deepEqual(parsePressure('full avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551615\n'), {
    Full: { Total: '18446744073709551615', Avg10: 0, Avg60: 0, Avg300: 0 },
  });
  assert.deepEqual(parsePressure('some total=5 avg10=2.00\n'), { Some: { Total: 5, Avg10: 2, Avg60: 0, Avg300: 0 } }, 'fields in any order');
  assert.equal(parsePressure(''), undefined);
  assert.equal(parsePressure('some avg10=x total=-1\n'), undefined);
  assert.equal(parsePressure('sometimes avg10=0.00 total=1\nnone total=2\n'), undefined);
});

test('stats entities: started a few per turn of the event loop, their waits overlapping, the results in order', async () => {
  const waits = Array.from({ length: 20 }, () => {
    let resolve!: (v: number) => void;
    return { promise: new Promise<number>((res) => (resolve = res)), resolve };
  });
  const started: number[] = [];
  const all = mapYielding(waits.map((_, i) => i), (i) => {
    started.push(i);
    return waits[i]!.promise;
  });
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7], 'the first few start before the event loop gets a turn');
  while (started.length < 20) await new Promise<void>((resolve) => setImmediate(resolve));
  // Every one started while none had finished: a slow one holds back no other.
  for (let i = 19; i >= 0; i--) waits[i]!.resolve(i * 10);
  assert.deepEqual(await all, waits.map((_, i) => i * 10));

  // A failure is the call's failure, and is not reported as unhandled while the rest are started.
  const failing = mapYielding([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], async (i) => {
    if (i === 0) throw new Error('cgroup gone');
    return i;
  });
  await assert.rejects(failing, /cgroup gone/);
});
