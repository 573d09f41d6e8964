// crisp's own gRPC health service, spoken to through grpc/health/v1/health.proto as the
// grpc-health-check package ships it (the file clients such as grpc_health_probe are built from):
// so the names and field numbers declared in src/cri/health.ts are checked against the real ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HealthService } from '../../src/cri/health.js';

const require = createRequire(import.meta.url);
const protoPath = join(require.resolve('grpc-health-check/package.json'), '..', 'proto', 'health', 'v1', 'health.proto');

async function serve(t: { after(fn: () => Promise<void> | void): void }, health: HealthService) {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-health-'));
  const server = new grpc.Server();
  health.addToServer(server);
  const socket = join(dir, 'health.sock');
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, enums: String, defaults: true })) as any;
  const client = new pkg.grpc.health.v1.Health(`unix://${socket}`, grpc.credentials.createInsecure());
  t.after(async () => {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });
  return client;
}

test('Check answers each named service\'s status, and NOT_FOUND naming an unknown one', async (t) => {
  const health = new HealthService({ '': 'SERVING', 'runtime.v1.RuntimeService': 'NOT_SERVING' });
  const client = await serve(t, health);
  const check = (service: string) => new Promise<string>((resolve, reject) =>
    client.Check({ service }, (err: grpc.ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))));
  assert.equal(await check(''), 'SERVING');
  assert.equal(await check('runtime.v1.RuntimeService'), 'NOT_SERVING');
  health.setStatus('runtime.v1.RuntimeService', 'SERVING');
  assert.equal(await check('runtime.v1.RuntimeService'), 'SERVING');
  await assert.rejects(check('nope.Service'), (err: grpc.ServiceError) =>
    err.code === grpc.status.NOT_FOUND && /nope\.Service/.test(err.details));
});

test('Watch sends the status at once and then each change; an unknown service is SERVICE_UNKNOWN until named', async (t) => {
  const health = new HealthService({ a: 'NOT_SERVING' });
  const client = await serve(t, health);
  const watch = (service: string, count: number) => {
    const seen: string[] = [];
    const stream = client.Watch({ service });
    const done = new Promise<string[]>((resolve, reject) => {
      stream.on('data', (res: { status: string }) => {
        seen.push(res.status);
        if (seen.length === count) {
          stream.cancel();
          resolve(seen);
        }
      });
      stream.on('error', (err: grpc.ServiceError) => {
        if (err.code !== grpc.status.CANCELLED) reject(err);
      });
    });
    return { seen, done };
  };
  const a = watch('a', 3);
  const b = watch('b', 2);
  while (a.seen.length < 1 || b.seen.length < 1) await new Promise((resolve) => setTimeout(resolve, 5));
  health.setStatus('a', 'SERVING');
  health.setStatus('a', 'SERVING'); // no change, no message
  health.setStatus('b', 'SERVING');
  health.setStatus('a', 'NOT_SERVING');
  assert.deepEqual(await a.done, ['NOT_SERVING', 'SERVING', 'NOT_SERVING']);
  assert.deepEqual(await b.done, ['SERVICE_UNKNOWN', 'SERVING']);
});

test('List answers every named service with its status', async (t) => {
  const client = await serve(t, new HealthService({ '': 'SERVING', 'runtime.v1.ImageService': 'NOT_SERVING' }));
  const listed = await new Promise<{ statuses: Record<string, { status: string }> }>((resolve, reject) =>
    client.List({}, (err: grpc.ServiceError | null, res: { statuses: Record<string, { status: string }> }) => (err ? reject(err) : resolve(res))));
  assert.deepEqual(
    Object.fromEntries(Object.entries(listed.statuses).map(([service, { status }]) => [service, status])),
    { '': 'SERVING', 'runtime.v1.ImageService': 'NOT_SERVING' },
  );
});
