import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { connect as netConnect } from 'node:net';
import { startCriServer } from '../../src/cri/server.js';
import { Readiness } from '../../src/cri/wrap.js';
import { silentLogger } from '../../src/log.js';
import { CrispError, invalidArgument, notFound } from '../../src/errors.js';
import { call, criClients } from '../helpers/cri-client.js';

function tempSocket(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-sock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'nested', 'crisp.sock');
}

async function serve(t: { after(fn: () => Promise<void> | void): void }, socketPath: string, readiness = new Readiness()) {
  const observed: [string, grpc.status][] = [];
  const aborts: string[] = [];
  const server = await startCriServer({
    socketPath,
    logger: silentLogger,
    readiness,
    observe: (rpc, code) => observed.push([rpc, code]),
    runtime: {
      Version: () => ({ version: '0.1.0', runtime_name: 'test', runtime_version: '1', runtime_api_version: 'v1' }),
      PodSandboxStatus: async (req: { pod_sandbox_id: string }, rpc: { signal: AbortSignal }) => {
        // the call's signal, asked for at once or only after the client has given up
        if (req.pod_sandbox_id === 'late-signal') await sleep(400);
        if (req.pod_sandbox_id === 'signal' || req.pod_sandbox_id === 'late-signal') {
          const signal = rpc.signal;
          if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
          aborts.push(`${req.pod_sandbox_id}: ${(signal.reason as Error).message}`);
          throw signal.reason;
        }
        if (req.pod_sandbox_id === '') throw invalidArgument('pod_sandbox_id is empty');
        if (req.pod_sandbox_id === 'boom') throw new Error('disk on fire');
        if (req.pod_sandbox_id === 'late') throw new CrispError('DeadlineExceeded', 'too slow');
        throw notFound(`pod sandbox ${req.pod_sandbox_id} not found`);
      },
    },
    image: {},
  });
  const clients = criClients(socketPath);
  t.after(async () => {
    clients.close();
    await server.shutdown(100);
  });
  return { server, clients, observed, readiness, aborts };
}

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return grpc.status.OK;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
};

test('the readiness gate answers UNAVAILABLE until start-up is done, and health follows it', async (t) => {
  const socket = tempSocket(t);
  const { clients, readiness } = await serve(t, socket);
  await assert.rejects(call(clients.runtime, clients.runtime.Version, {}), (err: grpc.ServiceError) =>
    err.code === grpc.status.UNAVAILABLE && /starting/.test(err.details));
  const require = createRequire(import.meta.url);
  const healthProto = protoLoader.loadSync(require('grpc-health-check').protoPath, { enums: String });
  const Health = (grpc.loadPackageDefinition(healthProto) as any).grpc.health.v1.Health;
  const health = new Health(`unix://${socket}`, grpc.credentials.createInsecure());
  t.after(() => health.close());
  const check = () => new Promise<string>((resolve, reject) =>
    health.Check({ service: 'runtime.v1.RuntimeService' }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))));
  assert.equal(await check(), 'NOT_SERVING');
  readiness.markReady();
  assert.equal((await call(clients.runtime, clients.runtime.Version, {})).runtime_name, 'test');
  assert.equal(await check(), 'SERVING');
});

test('domain errors map to their gRPC codes through one table; others are INTERNAL', async (t) => {
  const ready = new Readiness();
  ready.markReady();
  const { clients, observed } = await serve(t, tempSocket(t), ready);
  const status = (id: string) => codeOf(call(clients.runtime, clients.runtime.PodSandboxStatus, { pod_sandbox_id: id }));
  assert.equal(await status(''), grpc.status.INVALID_ARGUMENT);
  assert.equal(await status('nope'), grpc.status.NOT_FOUND);
  assert.equal(await status('late'), grpc.status.DEADLINE_EXCEEDED);
  assert.equal(await status('boom'), grpc.status.INTERNAL);
  await assert.rejects(call(clients.runtime, clients.runtime.PodSandboxStatus, { pod_sandbox_id: '' }), (err: grpc.ServiceError) =>
    /pod_sandbox_id is empty/.test(err.details));
  assert.deepEqual(observed.map(([, code]) => code).slice(0, 4), [3, 5, 4, 13]);
});

test('a call the client gives up on aborts its signal, whether the handler asked for it before or after', async (t) => {
  const ready = new Readiness();
  ready.markReady();
  const { clients, aborts } = await serve(t, tempSocket(t), ready);
  for (const id of ['signal', 'late-signal']) {
    await assert.rejects(call(clients.runtime, clients.runtime.PodSandboxStatus, { pod_sandbox_id: id }, 150), (err: grpc.ServiceError) =>
      err.code === grpc.status.DEADLINE_EXCEEDED);
  }
  const deadline = Date.now() + 5000;
  while (aborts.length < 2 && Date.now() < deadline) await sleep(20);
  assert.deepEqual(aborts.sort(), ['late-signal: PodSandboxStatus was cancelled by the client', 'signal: PodSandboxStatus was cancelled by the client']);
});

test('RPCs without an implementation answer UNIMPLEMENTED, never a fake success', async (t) => {
  const ready = new Readiness();
  ready.markReady();
  const { clients } = await serve(t, tempSocket(t), ready);
  await assert.rejects(call(clients.runtime, clients.runtime.RunPodSandbox, {}), (err: grpc.ServiceError) =>
    err.code === grpc.status.UNIMPLEMENTED && /RunPodSandbox/.test(err.details));
  await assert.rejects(call(clients.image, clients.image.ListImages, {}), (err: grpc.ServiceError) => err.code === grpc.status.UNIMPLEMENTED);
  const stream = clients.runtime.GetContainerEvents({});
  const code = await new Promise<number>((resolve) => {
    stream.on('error', (err: grpc.ServiceError) => resolve(err.code));
    stream.on('end', () => resolve(grpc.status.OK));
    stream.on('data', () => undefined);
  });
  assert.equal(code, grpc.status.UNIMPLEMENTED);
});

test('the socket is 0660 in a 0755 directory; a stale socket is replaced, a live one refused', async (t) => {
  const socket = tempSocket(t);
  await serve(t, socket);
  assert.equal(statSync(socket).mode & 0o777, 0o660);
  assert.equal(statSync(join(socket, '..')).mode & 0o777, 0o755);
  await assert.rejects(serve(t, socket), /another server is already listening/);

  // A crashed server leaves its socket file behind: make one by killing a listener outright.
  const stale = tempSocket(t);
  mkdirSync(join(stale, '..'), { recursive: true });
  const holder = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1])", stale]);
  while (!existsSync(stale)) await sleep(10);
  holder.kill('SIGKILL');
  await new Promise((resolve) => holder.once('exit', resolve));
  assert.ok(existsSync(stale), 'a dead socket file is present');
  const { clients } = await serve(t, stale);
  assert.equal(await codeOf(call(clients.runtime, clients.runtime.Version, {})), grpc.status.UNAVAILABLE);

  const notSocket = tempSocket(t);
  const dir = join(notSocket, '..');
  mkdirSync(dir, { recursive: true });
  writeFileSync(notSocket, 'precious');
  await assert.rejects(serve(t, notSocket), /is not a socket/);
});

test('an error quoting a huge bad value is answered with a short prefix, and the connection goes on', async (t) => {
  const ready = new Readiness();
  ready.markReady();
  const { clients } = await serve(t, tempSocket(t), ready);
  const huge = 'x'.repeat(1024 * 1024);
  await assert.rejects(
    call(clients.runtime, clients.runtime.PodSandboxStatus, { pod_sandbox_id: huge }, 10_000),
    (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND && err.details.length < 1200 && /more characters/.test(err.details),
  );
  // the same client, the same connection: still answered
  assert.equal((await call(clients.runtime, clients.runtime.Version, {})).runtime_name, 'test');
});

test('shutdown closes a connection whose first request has not come yet', async (t) => {
  const socketPath = tempSocket(t);
  const readiness = new Readiness();
  readiness.markReady();
  const server = await startCriServer({
    socketPath, logger: silentLogger, readiness, image: {},
    runtime: { Version: () => ({ version: '0.1.0', runtime_name: 'test', runtime_version: '1', runtime_api_version: 'v1' }) },
  });
  // A client that connected and said nothing yet: the server's opening holds it, not gRPC.
  const quiet = netConnect(socketPath);
  quiet.on('error', () => undefined);
  await new Promise((resolve) => quiet.once('connect', resolve));
  quiet.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'));
  quiet.resume();
  const closed = new Promise((resolve) => quiet.once('close', resolve));
  const clients = criClients(socketPath);
  t.after(() => clients.close());
  assert.equal((await call(clients.runtime, clients.runtime.Version, {})).runtime_name, 'test');
  await server.shutdown(2000);
  await Promise.race([closed, sleep(1500).then(() => assert.fail('the quiet connection was left open'))]);
});
