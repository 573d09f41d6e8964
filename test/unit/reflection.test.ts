// Server reflection answers through the real server, though it is built on its first call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startVersionServer } from '../helpers/cri-server.js';

const require = createRequire(import.meta.url);
const protoPath = (version: string) => join(dirname(require.resolve('@grpc/reflection/package.json')), `build/proto/grpc/reflection/${version}/reflection.proto`);

for (const version of ['v1', 'v1alpha']) test(`reflection (${version}) lists the CRI services and describes a symbol`, async (t) => {
  const socketPath = await startVersionServer(t);
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath(version), { keepCase: true })) as any;
  const client = new pkg.grpc.reflection[version].ServerReflection(`unix://${socketPath}`, grpc.credentials.createInsecure());
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
