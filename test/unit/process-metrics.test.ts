// The process and Node figures under the names and types prom-client's default metrics gave them
// (crisp used those before, and dashboards read them), with sane values; and the text format's
// escaping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { MetricsRegistry, type Sample } from '../../src/metrics/exposition.js';
import { registerProcessMetrics } from '../../src/metrics/process-metrics.js';

/** name → type, from the # TYPE lines of an exposition. */
const typesOf = (text: string) => new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
const valueOf = (text: string, line: RegExp) => Number(line.exec(text)?.[1]);

test('every family prom-client\'s default metrics expose is there, with the same type', async (t) => {
  const ours = new MetricsRegistry();
  const stop = registerProcessMetrics(ours, { prefix: 'crisp_', eventLoopSampleMs: 100 });
  t.after(stop);
  const theirs = new Registry();
  collectDefaultMetrics({ register: theirs, prefix: 'crisp_', eventLoopMonitoringPrecision: 100 });
  assert.deepEqual(typesOf(ours.metrics()), typesOf(await theirs.metrics()));
});

test('the figures are the process\'s own', async (t) => {
  const registry = new MetricsRegistry();
  const stop = registerProcessMetrics(registry, { prefix: 'crisp_', eventLoopSampleMs: 20 });
  t.after(stop);
  // some CPU, a GC, and a few of the delay timer's ticks
  let x = 0;
  for (let i = 0; i < 2e6; i++) x += Math.sqrt(i);
  assert.ok(x > 0);
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)(); // a full collection, without --expose-gc on the command line
  registry.metrics(); // a scrape starts the delay figures afresh
  await new Promise((resolve) => setTimeout(resolve, 200));
  const text = registry.metrics();
  const rss = valueOf(text, /^crisp_process_resident_memory_bytes (\S+)$/m);
  assert.ok(rss > 10 * 1024 * 1024 && Math.abs(rss - process.memoryUsage().rss) < 64 * 1024 * 1024, `RSS ${rss}`);
  const cpu = valueOf(text, /^crisp_process_cpu_seconds_total (\S+)$/m);
  const { user, system } = process.cpuUsage();
  assert.ok(cpu > 0 && cpu <= (user + system) / 1e6, `CPU ${cpu} s`);
  assert.ok(Math.abs(valueOf(text, /^crisp_process_start_time_seconds (\S+)$/m) - (Date.now() / 1000 - process.uptime())) < 2);
  assert.ok(valueOf(text, /^crisp_process_open_fds (\S+)$/m) >= 3);
  assert.ok(valueOf(text, /^crisp_nodejs_heap_size_used_bytes (\S+)$/m) > 0);
  assert.ok(valueOf(text, /^crisp_nodejs_heap_space_size_used_bytes\{space="old"\} (\S+)$/m) > 0);
  assert.match(text, new RegExp(`^crisp_nodejs_version_info\\{version="${process.version.replace(/\./g, '\\.')}",major="\\d+",minor="\\d+",patch="\\d+"\\} 1$`, 'm'));
  assert.ok(valueOf(text, /^crisp_nodejs_active_resources_total (\S+)$/m) >= 1, 'the delay timer at least');
  // the delay histogram holds the intervals between the 20 ms timer's ticks since the last scrape
  const min = valueOf(text, /^crisp_nodejs_eventloop_lag_min_seconds (\S+)$/m);
  const p99 = valueOf(text, /^crisp_nodejs_eventloop_lag_p99_seconds (\S+)$/m);
  assert.ok(min >= 0.019 && p99 >= min, `min ${min} s, p99 ${p99} s`);
  assert.ok(valueOf(text, /^crisp_nodejs_gc_duration_seconds_count\{kind="major"\} (\S+)$/m) >= 1, 'the full collection');
});

test('help text and label values are escaped as the text format asks', () => {
  const registry = new MetricsRegistry();
  registry.register({
    name: 'odd', help: 'a back\\slash and a\nnew line', type: 'gauge',
    samples: (): Sample[] => [{ labels: { path: 'C:\\x "y"\nz' }, value: NaN }, { labels: { n: 3 }, value: -Infinity }, { value: 0.25 }],
  });
  assert.equal(registry.metrics(), [
    '# HELP odd a back\\\\slash and a\\nnew line',
    '# TYPE odd gauge',
    'odd{path="C:\\\\x \\"y\\"\\nz"} NaN',
    'odd{n="3"} -Inf',
    'odd 0.25',
    '',
  ].join('\n'));
  assert.throws(() => registry.register({ name: 'odd', help: '', type: 'gauge', samples: () => [] }), /odd is registered already/);
});
