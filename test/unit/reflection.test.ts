// Server reflection answers through the real server, though it is built on its first call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startCriServer } from '../../src/cri/server.js';
import { Readiness } from '../../src/cri/wrap.js';
import { silentLogger } from '../../src/log.js';

const require = createRequire(import.meta.url);
const protoPath = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');

test('reflection lists the CRI services and describes a symbol', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-reflection-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'crisp.sock');
  const readiness = new Readiness();
  readiness.markReady();
  const server = await startCriServer({ socketPath, logger: silentLogger, readiness, image: {}, runtime: {} });
  t.after(() => server.shutdown(100));
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true })) as any;
  const client = new pkg.grpc.reflection.v1.ServerReflection(`unix://${socketPath}`, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const ask = (request: Record<string, unknown>) => new Promise<any>((resolve, reject) => {
    const stream = client.ServerReflectionInfo();
    stream.on('data', (response: unknown) => {
      resolve(response);
      stream.end();
    });
    stream.on('error', reject);
    stream.write(request);
  });
  const listed = await ask({ list_services: '*' });
  const names = listed.list_services_response.service.map((s: { name: string }) => s.name);
  assert.ok(names.includes('runtime.v1.RuntimeService'), names.join(', '));
  assert.ok(names.includes('runtime.v1.ImageService'));
  const described = await ask({ file_containing_symbol: 'runtime.v1.RuntimeService' });
  assert.ok(described.file_descriptor_response.file_descriptor_proto.length > 0);
});
