// Exec, Attach and PortForward through the real daemon: the RPCs hand out URLs, and clients
// speaking SPDY/3.1 (framed by crisp's own module, as client-go frames it) and WebSocket
// drive real containers run by runc under conmon in a pod with its own network namespace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { WebSocket } from 'ws';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { call } from '../helpers/cri-client.js';
import type { ContainerConfig } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import { SpdyClient, collect } from '../helpers/spdy-client.js';

let node: TestNode;
let image: string;
let podId: string;
let shell: string; // a long-running container to exec into

const rt = () => node.daemon.clients.runtime;

before(async () => {
  node = await startTestNode();
  image = node.image;
  podId = await node.runPod(`strpod${node.tag}`);
  shell = await startContainer(['/bin/sleep', '100000']);
  // `nc -ll -p 8080 -e cat` in the pod: what the port-forward tests talk to
  await startContainer(['/bin/nc', '-ll', '-p', '8080', '-e', '/bin/cat']);
});

after(async () => {
  await node?.cleanup();
});

let counter = 0;
async function startContainer(command: string[], extra: Partial<ContainerConfig> = {}): Promise<string> {
  const name = `s${counter++}`;
  const config: ContainerConfig = { metadata: { name, attempt: 0 }, image: { image }, command, log_path: `${name}.log`, ...extra };
  const { container_id } = await call(rt(), rt().CreateContainer, { pod_sandbox_id: podId, config, sandbox_config: null }, 60_000);
  await call(rt(), rt().StartContainer, { container_id }, 30_000);
  return container_id;
}

interface ExecOpts { tty?: boolean; stdin?: boolean; stdout?: boolean; stderr?: boolean }
async function execUrl(cmd: string[], o: ExecOpts = {}): Promise<string> {
  const r = await call(rt(), rt().Exec, { container_id: shell, cmd, tty: o.tty ?? false, stdin: o.stdin ?? false, stdout: o.stdout ?? true, stderr: o.stderr ?? !o.tty });
  return r.url;
}

/** client-go's v4 executor: error stream first, then the std streams, then resize. */
async function spdyExec(url: string, o: ExecOpts, protocols = ['v4.channel.k8s.io']) {
  const client = await SpdyClient.connect(url, protocols);
  const error = await client.open({ streamType: 'error' });
  const stdin = o.stdin ? await client.open({ streamType: 'stdin' }) : undefined;
  const stdout = (o.stdout ?? true) ? await client.open({ streamType: 'stdout' }) : undefined;
  const stderr = (o.stderr ?? !o.tty) && !o.tty ? await client.open({ streamType: 'stderr' }) : undefined;
  const resize = o.tty ? await client.open({ streamType: 'resize' }) : undefined;
  return { client, error, stdin, stdout, stderr, resize, out: stdout ? collect(stdout) : Promise.resolve(Buffer.alloc(0)), err: stderr ? collect(stderr) : Promise.resolve(Buffer.alloc(0)), status: collect(error) };
}

test('Exec validates its request before handing out a URL', async () => {
  const reject = (req: object) => call(rt(), rt().Exec, { container_id: shell, cmd: ['true'], tty: false, stdin: false, stdout: true, stderr: false, ...req }).then(() => null, (e: grpc.ServiceError) => e);
  assert.equal((await reject({ cmd: [] }))?.code, grpc.status.INVALID_ARGUMENT);
  assert.equal((await reject({ stdout: false }))?.code, grpc.status.INVALID_ARGUMENT);
  const both = await reject({ tty: true, stderr: true });
  assert.equal(both?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(both!.details, /stderr/);
  assert.equal((await reject({ container_id: 'f'.repeat(64) }))?.code, grpc.status.NOT_FOUND);
  const pf = await call(rt(), rt().PortForward, { pod_sandbox_id: podId, port: [70000] }).then(() => null, (e: grpc.ServiceError) => e);
  assert.equal(pf?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(pf!.details, /port\[0\]/);
});

test('exec without a TTY: stdout and stderr apart, Success on the v4 error stream', async () => {
  const url = await execUrl(['/bin/sh', '-c', 'echo out; echo err >&2'], { stderr: true });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]+$/);
  const s = await spdyExec(url, { stderr: true });
  assert.equal(s.client.protocol, 'v4.channel.k8s.io');
  assert.equal((await s.out).toString(), 'out\n');
  assert.equal((await s.err).toString(), 'err\n');
  assert.deepEqual(JSON.parse((await s.status).toString()), { metadata: {}, status: 'Success' });
  await s.client.closed;
});

test('a non-zero exit code arrives on the error stream as NonZeroExitCode', async () => {
  const s = await spdyExec(await execUrl(['/bin/sh', '-c', 'exit 7']), {});
  const status = JSON.parse((await s.status).toString());
  assert.equal(status.status, 'Failure');
  assert.equal(status.reason, 'NonZeroExitCode');
  assert.deepEqual(status.details.causes, [{ reason: 'ExitCode', message: '7' }]);
  s.client.close();
});

test('exec with stdin (no TTY) pipes input through; v3 reports errors as text', async () => {
  const url = await execUrl(['/bin/sh', '-c', 'cat; exit 3'], { stdin: true });
  const s = await spdyExec(url, { stdin: true }, ['v3.channel.k8s.io']);
  assert.equal(s.client.protocol, 'v3.channel.k8s.io');
  s.stdin!.write('hello through stdin\n');
  s.stdin!.end();
  assert.equal((await s.out).toString(), 'hello through stdin\n');
  assert.match((await s.status).toString(), /non-zero exit code.*exit code 3/);
  s.client.close();
});

test('exec with a TTY: input echoes through the terminal and resize takes effect', async () => {
  const url = await execUrl(['/bin/sh'], { tty: true, stdin: true });
  const s = await spdyExec(url, { tty: true, stdin: true });
  let seen = '';
  s.stdout!.data.on('data', (b: Buffer) => (seen += b.toString()));
  s.resize!.write(JSON.stringify({ Width: 123, Height: 45 }) + '\n');
  await sleep(200);
  s.stdin!.write('busybox stty size; echo marker-$((6*7))\n');
  const deadline = Date.now() + 10_000;
  while (!seen.includes('marker-42') && Date.now() < deadline) await sleep(50);
  assert.match(seen, /busybox stty size/, 'the typed line echoes back through the TTY');
  assert.match(seen, /45 123\r\n/, `stty size reports the resized window: ${JSON.stringify(seen)}`);
  s.stdin!.write('exit 4\n');
  const status = JSON.parse((await s.status).toString());
  assert.deepEqual(status.details.causes, [{ reason: 'ExitCode', message: '4' }]);
  s.client.close();
});

test('exec with a TTY: the end of the input reaches the command as end-of-file', async () => {
  // with stdin: what the client sent, then its close, which the terminal passes on as ^D
  const withInput = await spdyExec(await execUrl(['/bin/cat'], { tty: true, stdin: true }), { tty: true, stdin: true });
  withInput.stdin!.write('typed-line\n');
  withInput.stdin!.end();
  assert.match((await withInput.out).toString(), /typed-line\r\n/);
  assert.deepEqual(JSON.parse((await withInput.status).toString()), { metadata: {}, status: 'Success' });
  withInput.client.close();
  // without stdin: the command reads end-of-file at once
  const without = await spdyExec(await execUrl(['/bin/sh', '-c', 'read line; echo read-ended-$?'], { tty: true }), { tty: true });
  assert.match((await without.out).toString(), /read-ended-1\r\n/);
  without.client.close();
});

test('tokens are single-use, and a request without one starts nothing', async () => {
  const url = await execUrl(['/bin/true']);
  const s = await spdyExec(url, {});
  await s.status;
  s.client.close();
  await assert.rejects(SpdyClient.connect(url, ['v4.channel.k8s.io']), (e: Error & { statusCode?: number }) => e.statusCode === 404);
  const base = url.slice(0, url.lastIndexOf('/') + 1);
  await assert.rejects(SpdyClient.connect(`${base}not-a-token`, ['v4.channel.k8s.io']), (e: Error & { statusCode?: number }) => e.statusCode === 404);
});

function describe(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ');
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()} (state ${stat[2]}, parent ${stat[3]})`;
  } catch {
    return `${pid} (gone)`;
  }
}

/** Host processes with `marker` as a whole argument (NUL- or space-separated, so wrappers count). */
async function hostPidsWith(marker: string): Promise<number[]> {
  const token = new RegExp(`(^|[\\0 ])${marker}([\\0 ]|$)`);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (token.test(readFileSync(`/proc/${entry}/cmdline`, 'utf8'))) pids.push(Number(entry));
    } catch {
      // exited
    }
  }
  return pids;
}

test('a client that disconnects mid-stream leaves no process behind', async () => {
  // A long random number, matched as a whole argument: other processes on a busy machine may
  // carry any short number in their command lines.
  const marker = `${100_000_000 + Math.floor(Math.random() * 899_999_999)}`;
  for (const tty of [false, true]) {
    const s = await spdyExec(await execUrl(['/bin/sleep', marker], { tty, stdin: tty }), { tty, stdin: tty });
    const deadline = Date.now() + 5_000;
    while ((await hostPidsWith(marker)).length === 0 && Date.now() < deadline) await sleep(50);
    assert.ok((await hostPidsWith(marker)).length > 0, 'the command runs');
    s.client.destroy();
    const gone = Date.now() + 10_000;
    while ((await hostPidsWith(marker)).length > 0 && Date.now() < gone) await sleep(50);
    const left = await hostPidsWith(marker);
    assert.deepEqual(left, [], `tty=${tty}: nothing of the exec is left: ${left.map(describe).join('; ')}`);
  }
});

async function forwardUrl(): Promise<string> {
  return (await call(rt(), rt().PortForward, { pod_sandbox_id: podId, port: [8080] })).url;
}

test('port-forward over SPDY: several connections at once, a large transfer byte-exact', async () => {
  const client = await SpdyClient.connect(await forwardUrl(), ['portforward.k8s.io']);
  assert.equal(client.protocol, 'portforward.k8s.io');
  const connection = async (requestId: number, payload: Buffer) => {
    const error = await client.open({ streamType: 'error', port: '8080', requestID: String(requestId) });
    error.end();
    const data = await client.open({ streamType: 'data', port: '8080', requestID: String(requestId) });
    const received = collect(data);
    const errors = collect(error);
    for (let at = 0; at < payload.length; at += 32 * 1024) data.write(payload.subarray(at, at + 32 * 1024));
    // the echo server answers as it reads; end our side once all came back
    const got: Buffer[] = [];
    let size = 0;
    data.data.on('data', (b: Buffer) => {
      got.push(b);
      size += b.length;
      if (size >= payload.length) data.end();
    });
    await received;
    return { back: Buffer.concat(got), errors: (await errors).toString() };
  };
  const small = [1, 2, 3, 4, 5].map((i) => randomBytes(1000 + i));
  const big = randomBytes(8 * 1024 * 1024);
  const results = await Promise.all([...small.map((p, i) => connection(i, p)), connection(99, big)]);
  results.forEach((r, i) => {
    assert.equal(r.errors, '');
    assert.ok(r.back.equals(i < small.length ? small[i]! : big), `connection ${i} came back byte-exact (${r.back.length} bytes)`);
  });
  // a port nothing listens on: the error stream says so
  const error = await client.open({ streamType: 'error', port: '9', requestID: '200' });
  const data = await client.open({ streamType: 'data', port: '9', requestID: '200' });
  const [message] = await Promise.all([collect(error), collect(data)]);
  assert.match(message.toString(), /port 9/);
  client.close();
});

test('WebSocket v5 exec: channel bytes, stdin close signal, status on channel 3', async () => {
  const url = (await call(rt(), rt().Exec, { container_id: shell, cmd: ['/bin/sh', '-c', 'cat; echo err >&2; exit 2'], tty: false, stdin: true, stdout: true, stderr: true })).url;
  const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v5.channel.k8s.io']);
  const byChannel = new Map<number, Buffer[]>();
  ws.on('message', (m: Buffer) => byChannel.set(m[0]!, [...(byChannel.get(m[0]!) ?? []), m.subarray(1)]));
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  assert.equal(ws.protocol, 'v5.channel.k8s.io');
  ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('over websocket\n')]));
  ws.send(Buffer.from([255, 0]));
  await new Promise((resolve) => ws.once('close', resolve));
  const text = (ch: number) => Buffer.concat(byChannel.get(ch) ?? []).toString();
  assert.equal(text(1), 'over websocket\n');
  assert.equal(text(2), 'err\n');
  assert.equal(JSON.parse(text(3)).details.causes[0].message, '2');
});

test('WebSocket v4 port-forward: port header on each channel, then echoed data', async () => {
  const url = (await forwardUrl()).replace(/^http/, 'ws') + '?port=8080';
  const ws = new WebSocket(url, ['v4.channel.k8s.io']);
  const data: Buffer[] = [];
  const headers: Buffer[] = [];
  const payload = randomBytes(300_000);
  let size = 0;
  const done = new Promise<void>((resolve) => ws.on('message', (m: Buffer) => {
    if (m.length === 3 && headers.length < 2) return void headers.push(m);
    if (m[0] === 0) {
      data.push(m.subarray(1));
      size += m.length - 1;
      if (size >= payload.length) resolve();
    }
  }));
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  ws.send(Buffer.concat([Buffer.from([0]), payload]));
  await done;
  assert.deepEqual(headers.map((h) => [h[0], h.readUInt16LE(1)]), [[0, 8080], [1, 8080]]);
  assert.ok(Buffer.concat(data).equals(payload));
  ws.close();
});

test('attach to a container that echoes its stdin', async () => {
  const id = await startContainer(['/bin/cat'], { stdin: true, stdin_once: false, tty: false });
  const url = (await call(rt(), rt().Attach, { container_id: id, stdin: true, stdout: true, stderr: true, tty: false })).url;
  const client = await SpdyClient.connect(url, ['v4.channel.k8s.io']);
  const error = await client.open({ streamType: 'error' });
  const stdin = await client.open({ streamType: 'stdin' });
  const stdout = await client.open({ streamType: 'stdout' });
  await client.open({ streamType: 'stderr' });
  let seen = '';
  stdout.data.on('data', (b: Buffer) => (seen += b.toString()));
  stdin.write('attached line\n');
  const deadline = Date.now() + 10_000;
  while (!seen.includes('attached line') && Date.now() < deadline) await sleep(50);
  assert.equal(seen, 'attached line\n');
  client.destroy();
  void error;
  // detaching leaves the container running
  const status = await call(rt(), rt().ContainerStatus, { container_id: id, verbose: false });
  assert.equal(status.status?.state, 'CONTAINER_RUNNING');
});
