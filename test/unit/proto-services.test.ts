import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enumFieldBelow, fullPackageDefinition, imageServiceDefinition, loadCriRoot, messageTypesOf, prepareCodecs, runtimeServiceDefinition, sampleMessage } from '../../src/cri/proto.js';
import { PROTO_JSON_PATH, PROTO_PATH } from '../../src/paths.js';

// The daemon's service definitions are made from the parsed proto, not by proto-loader (which
// builds descriptors only reflection needs); on the wire they must be proto-loader's, method for method.
const services: [string, grpc.ServiceDefinition][] = [
  ['runtime.v1.RuntimeService', runtimeServiceDefinition],
  ['runtime.v1.ImageService', imageServiceDefinition],
];

const samples: Record<string, unknown> = {
  RunPodSandboxRequest: {
    config: {
      metadata: { name: 'p', uid: 'u', namespace: 'ns', attempt: 2 },
      hostname: 'h', log_directory: '/var/log/pods/x', labels: { a: 'b' }, annotations: { 'k/x': 'é' },
      dns_config: { servers: ['10.0.0.10'], searches: ['ns.svc'], options: ['ndots:5'] },
      port_mappings: [{ protocol: 'UDP', container_port: 53, host_port: 5353, host_ip: '' }],
      linux: { cgroup_parent: '/kubepods', security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
    },
    runtime_handler: 'crun',
  },
  ListContainerStatsResponse: {
    stats: [
      { attributes: { id: 'c', metadata: { name: 'n', attempt: 0 } }, cpu: { timestamp: '1733369000000000123', usage_core_nano_seconds: { value: '18446744073709551615' } } },
      containerStats('d'),
    ],
  },
  // As the stats collector builds them: encoded without fromObject (src/cri/proto.ts)
  ListPodSandboxStatsResponse: {
    stats: [{
      attributes: { id: 'p', metadata: { name: 'pod', uid: 'u', namespace: 'ns', attempt: 1 }, labels: { app: 'x' }, annotations: { 'a/b': 'é' } },
      linux: {
        cpu: containerStats('x').cpu,
        memory: containerStats('x').memory,
        network: {
          timestamp: '1733369000000000999',
          default_interface: { name: 'eth0', rx_bytes: { value: 1 }, rx_errors: { value: 0 }, tx_bytes: { value: 2 ** 40 }, tx_errors: { value: 0 } },
          interfaces: [{ name: 'eth0', rx_bytes: { value: 1 }, rx_errors: { value: 0 }, tx_bytes: { value: 2 ** 40 }, tx_errors: { value: 0 } }],
        },
        process: { timestamp: '1733369000000000999', process_count: { value: 3 } },
        io: null,
        containers: [containerStats('c1'), containerStats('c2')],
      },
    }],
  },
  ImageFsInfoResponse: { image_filesystems: [{ timestamp: '1', fs_id: { mountpoint: '/var/lib/crisp' }, used_bytes: { value: '7' } }] },
};

function containerStats(id: string) {
  const timestamp = '1733369000000000123';
  const psi = { Some: { Total: 1234, Avg10: 0.5, Avg60: 0, Avg300: 0 }, Full: { Total: '18446744073709551615', Avg10: 0, Avg60: 0, Avg300: 0 } };
  return {
    attributes: { id, metadata: { name: `n-${id}`, attempt: 2 }, labels: { 'io.kubernetes.pod.name': 'p' }, annotations: {} },
    cpu: { timestamp, usage_core_nano_seconds: { value: 123456789 }, usage_nano_cores: { value: 0 }, psi },
    memory: { timestamp, working_set_bytes: { value: 4096 }, usage_bytes: { value: 8192 }, available_bytes: { value: Number.MAX_SAFE_INTEGER }, rss_bytes: { value: '9007199254740993' }, page_faults: { value: 7 }, major_page_faults: { value: 0 }, psi },
    swap: { timestamp, swap_usage_bytes: { value: 0 } },
    writable_layer: { timestamp, fs_id: { mountpoint: `/var/lib/crisp/containers/${id}` }, used_bytes: { value: 12288 }, inodes_used: { value: 11 } },
    io: undefined,
  };
}

test('each CRI method is what proto-loader defines: path, streaming, name and codec', () => {
  // The options gen:proto's types are generated for (package.json), spelled out here on purpose.
  const full = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  assert.deepEqual(Object.keys(fullPackageDefinition()), Object.keys(full));
  for (const [name, ours] of services) {
    const theirs = full[name] as grpc.ServiceDefinition;
    assert.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort(), name);
    for (const [method, def] of Object.entries(theirs)) {
      const mine = ours[method]!;
      for (const key of ['path', 'requestStream', 'responseStream', 'originalName'] as const) assert.equal(mine[key], def[key], `${name}.${method} ${key}`);
      // An empty message both ways: the same bytes, and the same defaults filled in.
      assert.deepEqual(mine.requestSerialize({}), def.requestSerialize({}), `${method} request`);
      assert.deepEqual(mine.responseDeserialize(Buffer.alloc(0)), def.responseDeserialize(Buffer.alloc(0)), `${method} response`);
      assert.deepEqual(mine.requestDeserialize(Buffer.alloc(0)), def.requestDeserialize(Buffer.alloc(0)), `${method} request`);
    }
  }
  const methods = Object.values(full['runtime.v1.RuntimeService'] as grpc.ServiceDefinition).concat(Object.values(full['runtime.v1.ImageService'] as grpc.ServiceDefinition));
  const byType = (type: string) => {
    const found = [...services.flatMap(([, s]) => Object.entries(s))].find(([method]) => `${method}Request` === type || `${method}Response` === type);
    assert.ok(found, type);
    const theirs = methods.find((m) => m.path.endsWith(`/${found[0]}`))!;
    return type.endsWith('Request')
      ? { mine: [found[1].requestSerialize, found[1].requestDeserialize], theirs: [theirs.requestSerialize, theirs.requestDeserialize] }
      : { mine: [found[1].responseSerialize, found[1].responseDeserialize], theirs: [theirs.responseSerialize, theirs.responseDeserialize] };
  };
  for (const [type, value] of Object.entries(samples)) {
    const { mine, theirs } = byType(type);
    const bytes = (mine[0] as (v: unknown) => Buffer)(value);
    assert.ok(bytes.length > 20, type);
    assert.deepEqual(bytes, (theirs[0] as (v: unknown) => Buffer)(value), `${type} bytes`);
    assert.deepEqual((mine[1] as (b: Buffer) => unknown)(bytes), (theirs[1] as (b: Buffer) => unknown)(bytes), `${type} decoded`);
  }
});

test('the stats responses encoded as built hold no enum; an enum below is found where there is one', () => {
  const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
  for (const name of ['ContainerStatsResponse', 'ListContainerStatsResponse', 'StreamContainerStatsResponse', 'PodSandboxStatsResponse', 'ListPodSandboxStatsResponse', 'StreamPodSandboxStatsResponse']) {
    assert.equal(enumFieldBelow(root.lookupType(`runtime.v1.${name}`)), undefined, name);
  }
  assert.equal(enumFieldBelow(root.lookupType('runtime.v1.ListContainersResponse')), 'Container.state');
});

test('an array is refused as a message, as proto-loader refuses it', () => {
  assert.throws(() => runtimeServiceDefinition.Version!.requestSerialize([] as never), /array/);
});

test('the message types of a method are its request, its response and every message below them', () => {
  const names = messageTypesOf(['RunPodSandbox']).map((t) => t.name);
  for (const name of ['RunPodSandboxRequest', 'RunPodSandboxResponse', 'PodSandboxConfig', 'LinuxPodSandboxConfig', 'LinuxSandboxSecurityContext', 'NamespaceOption', 'Int64Value']) {
    assert.ok(names.includes(name), name);
  }
  assert.ok(!names.includes('CreateContainerRequest'));
  assert.equal(new Set(names).size, names.length, 'each type once');
  // Both services: PullImage is the image service's.
  assert.ok(messageTypesOf(['PullImage']).some((t) => t.name === 'AuthConfig'));
  assert.throws(() => messageTypesOf(['RunPodSandbox', 'RunPod']), /no such CRI method: RunPod$/);
});

test('codecs prepared ahead are the ones protobufjs makes on first use: the same bytes both ways', async () => {
  const types = messageTypesOf(['RunPodSandbox', 'CreateContainer', 'StartContainer']);
  const waiting = types.filter((t) => !Object.hasOwn(t, 'decode'));
  assert.ok(waiting.length > 10, 'nested types are made on first use until prepared');
  await prepareCodecs(types);
  for (const t of types) assert.ok(Object.hasOwn(t, 'decode') && Object.hasOwn(t, 'fromObject'), t.name);
  const full = protoLoader.loadSync(PROTO_PATH, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const theirs = (full['runtime.v1.RuntimeService'] as grpc.ServiceDefinition).RunPodSandbox!;
  const request = {
    config: {
      metadata: { name: 'web', uid: 'u1', namespace: 'default', attempt: 1 },
      hostname: 'web', log_directory: '/var/log/pods/x', dns_config: { servers: ['10.0.0.10'], searches: ['svc'], options: ['ndots:5'] },
      port_mappings: [{ protocol: 'UDP', container_port: 53, host_port: 5353, host_ip: '' }],
      labels: { app: 'web' }, annotations: { a: 'b' },
      linux: { cgroup_parent: '/kubepods/pod1', security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' }, run_as_user: { value: '1000' } }, sysctls: { 'net.core.somaxconn': '1024' } },
    },
    runtime_handler: 'runc',
  };
  const mine = runtimeServiceDefinition.RunPodSandbox!;
  const bytes = mine.requestSerialize(request);
  assert.deepEqual(bytes, theirs.requestSerialize(request));
  assert.deepEqual(mine.requestDeserialize(bytes), theirs.requestDeserialize(bytes));
});

test('the proto gen:proto wrote as JSON is the parsed .proto, type for type', () => {
  const parsed = loadCriRoot(PROTO_PATH, '/nonexistent/api.json');
  const asJson = (root: protobuf.Root) => JSON.stringify(root.toJSON());
  assert.equal(asJson(loadCriRoot(PROTO_PATH, PROTO_JSON_PATH)), asJson(parsed));
  assert.ok(parsed.lookupType('runtime.v1.RunPodSandboxRequest').fields['config'], 'keepCase: field names as the proto spells them');
});

test('loadCriRoot takes the JSON only when it is not older than the .proto', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-proto-json-'));
  try {
    const json = join(dir, 'api.json');
    writeFileSync(json, JSON.stringify({ nested: { only: { nested: { One: { fields: { a: { type: 'string', id: 1 } } } } } } }));
    assert.ok(loadCriRoot(PROTO_PATH, json).lookupType('only.One'), 'a newer JSON is what is loaded');
    utimesSync(json, new Date(0), new Date(0));
    const root = loadCriRoot(PROTO_PATH, json);
    assert.equal(root.lookup('only.One'), null, 'a JSON older than the .proto is not used');
    assert.ok(root.lookupType('runtime.v1.RunPodSandboxRequest'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the sample message the codecs are prepared on sets every field of every CRI message, each to a value that is not its default', () => {
  const all = messageTypesOf([...Object.keys(runtimeServiceDefinition), ...Object.keys(imageServiceDefinition)]);
  assert.ok(all.length > 100, `${all.length} types`);
  for (const type of all) {
    const back = type.toObject(type.decode(type.encode(type.fromObject(sampleMessage(type))).finish()), { longs: String, enums: String, defaults: false });
    const unset = type.fieldsArray.filter((f) => !f.partOf || f.partOf.fieldsArray[0] === f).map((f) => f.name).filter((name) => back[name] === undefined);
    // A message field is left out only where its type is already being filled above it (a cycle).
    for (const name of unset) assert.ok(type.fields[name]!.resolvedType instanceof protobuf.Type, `${type.name}.${name} is not set`);
    const scalars = type.fieldsArray.filter((f) => !(f.resolvedType instanceof protobuf.Type) && !f.map && !f.repeated);
    for (const f of scalars) {
      const unsetValue = f.resolvedType instanceof protobuf.Enum ? f.resolvedType.valuesById[0] : f.typeDefault;
      assert.notDeepEqual(back[f.name], unsetValue, `${type.name}.${f.name} holds its default`);
    }
  }
});
