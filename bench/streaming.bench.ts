// Streaming against its baselines, in one run of the real daemon: an exec round trip of
// `true` through the streaming server (Exec RPC, SPDY upgrade, streams, exit status) against
// ExecSync of the same command; and a 100 MB download through port-forward against the
// same download over a direct connection to the pod's address.
// Run as root: node --import tsx bench/streaming.bench.ts [iterations]
import { connect } from 'node:net';
import { startTestNode } from '../test/helpers/node-env.js';
import { call } from '../test/helpers/cri-client.js';
import { percentile } from './lib/floor.js';
import { SpdyClient, collect } from '../test/helpers/spdy-client.js';

const ITERATIONS = Number(process.argv[2] ?? process.env['BENCH_ITERATIONS'] ?? 40);
const SIZE = 100 * 1024 * 1024;

const REQUEST = `GET /big HTTP/1.0\r\nHost: pod\r\n\r\n`;

/** Sends an HTTP/1.0 GET over `socket`-like streams and counts the bytes until the end. */
async function download(write: (b: Buffer) => void, data: NodeJS.ReadableStream): Promise<number> {
  let bytes = 0;
  data.on('data', (b: Buffer) => (bytes += b.length));
  const ended = new Promise<void>((resolve) => data.once('end', () => resolve()));
  write(Buffer.from(REQUEST));
  await ended;
  return bytes;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark runs containers: run it as root');
  const node = await startTestNode(['--log-level', 'warn']);
  try {
    const rt = node.daemon.clients.runtime;
    const image = node.image;
    const pod = await node.runPod(`bench${node.tag}`);
    const command = ['/bin/sh', '-c', `dd if=/dev/zero of=/tmp/big bs=1048576 count=${SIZE / 1048576} 2>/dev/null && exec httpd -f -p 8081 -h /tmp`];
    const { container_id: id } = await call(rt, rt.CreateContainer, { pod_sandbox_id: pod, sandbox_config: null, config: { metadata: { name: 'web', attempt: 0 }, image: { image }, command, log_path: 'web.log' } }, 60_000);
    await call(rt, rt.StartContainer, { container_id: id }, 30_000);
    const ip = (await call(rt, rt.PodSandboxStatus, { pod_sandbox_id: pod, verbose: false })).status!.network!.ip!;

    // ---- exec round trip
    const streamed: number[] = [];
    const sync: number[] = [];
    for (let i = 0; i < ITERATIONS + 3; i++) {
      let t = performance.now();
      const { url } = await call(rt, rt.Exec, { container_id: id, cmd: ['/bin/true'], tty: false, stdin: false, stdout: true, stderr: true });
      const client = await SpdyClient.connect(url, ['v4.channel.k8s.io']);
      const error = await client.open({ streamType: 'error' });
      const out = await client.open({ streamType: 'stdout' });
      const err = await client.open({ streamType: 'stderr' });
      const [status] = await Promise.all([collect(error), collect(out), collect(err)]);
      if (JSON.parse(status.toString()).status !== 'Success') throw new Error(`exec failed: ${status}`);
      client.close();
      if (i >= 3) streamed.push(performance.now() - t);
      t = performance.now();
      const r = await call(rt, rt.ExecSync, { container_id: id, cmd: ['/bin/true'], timeout: 10 });
      if (r.exit_code !== 0) throw new Error('ExecSync failed');
      if (i >= 3) sync.push(performance.now() - t);
    }

    // ---- port-forward throughput (the file is written by the time httpd answers)
    const direct = async () => {
      for (;;) {
        const socket = connect({ host: ip, port: 8081 });
        try {
          await new Promise((resolve, reject) => (socket.once('connect', resolve), socket.once('error', reject)));
        } catch {
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        const t = performance.now();
        const bytes = await download((b) => socket.write(b), socket);
        return { ms: performance.now() - t, bytes };
      }
    };
    const forwarded = async () => {
      const { url } = await call(rt, rt.PortForward, { pod_sandbox_id: pod, port: [8081] });
      const client = await SpdyClient.connect(url, ['portforward.k8s.io']);
      const error = await client.open({ streamType: 'error', port: '8081', requestID: '0' });
      error.end();
      const data = await client.open({ streamType: 'data', port: '8081', requestID: '0' });
      const t = performance.now();
      const bytes = await download((b) => data.write(b), data.data);
      const ms = performance.now() - t;
      client.close();
      return { ms, bytes };
    };
    const d0 = await direct(); // warm-up, and waits for httpd
    const runs = { direct: [] as number[], forwarded: [] as number[] };
    for (let i = 0; i < 3; i++) {
      const a = await direct();
      const b = await forwarded();
      if (a.bytes < SIZE || b.bytes < SIZE) throw new Error(`short download: ${a.bytes} / ${b.bytes} (warm-up ${d0.bytes})`);
      runs.direct.push((a.bytes / 1048576) / (a.ms / 1000));
      runs.forwarded.push((b.bytes / 1048576) / (b.ms / 1000));
    }
    const round = (n: number) => Math.round(n * 100) / 100;
    const e = { streamP50: percentile(streamed, 50), streamP95: percentile(streamed, 95), syncP50: percentile(sync, 50), syncP95: percentile(sync, 95) };
    console.log(`exec round trip of /bin/true, ${ITERATIONS} runs (ms)`);
    console.log(`  streaming (Exec + SPDY)  p50 ${round(e.streamP50)}  p95 ${round(e.streamP95)}`);
    console.log(`  ExecSync                 p50 ${round(e.syncP50)}  p95 ${round(e.syncP95)}`);
    console.log(`  ratio p50 ${round(e.streamP50 / e.syncP50)}x`);
    const best = (xs: number[]) => Math.max(...xs);
    console.log(`download of ${SIZE / 1048576} MiB, best of 3 (MiB/s)`);
    console.log(`  port-forward (SPDY)      ${round(best(runs.forwarded))}`);
    console.log(`  direct to the pod's IP   ${round(best(runs.direct))}`);
    console.log(`  ratio ${round(best(runs.forwarded) / best(runs.direct))}x`);
  } finally {
    await node.cleanup();
  }
}

await main();
