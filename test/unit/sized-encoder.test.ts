import { test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { checkSizedEncodable, encodeSized } from '../../src/cri/sized-encoder.js';
import { runtimeServiceDefinition } from '../../src/cri/proto.js';
import { PROTO_PATH } from '../../src/paths.js';

// The sized encoder must write protobufjs's bytes exactly, for whatever shape the stats
// collector hands it: compared here on random messages of every type it serves.
const root = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
root.resolveAll();
const AS_BUILT = ['ListContainerStatsResponse', 'ListPodSandboxStatsResponse', 'ContainerStatsResponse', 'PodSandboxStatsResponse', 'StreamContainerStatsResponse', 'StreamPodSandboxStatsResponse'];

// A small seeded generator, so a failure names a seed that reproduces it.
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

const STRINGS = ['', 'a', 'density-12', 'io.kubernetes.pod.namespace', 'é', 'ünïcödé-✓', '🚀 pod', 'x'.repeat(45), 'y'.repeat(200), `${'z'.repeat(39)}é`];
const INT64S: unknown[] = [0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -123456789, '0', '1733369000000000123', '18446744073709551615', '9223372036854775807', '-5', 3.7];
const UINT32S = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 - 1];
const DOUBLES = [0, -0, 1.5, -2.25, 1e-300, 123456.789, Number.MAX_VALUE];

function randomValue(field: protobuf.Field, r: ReturnType<typeof rng>, depth: number): unknown {
  const resolved = field.resolve().resolvedType;
  if (resolved instanceof protobuf.Type) return depth > 6 ? {} : randomMessage(resolved, r, depth + 1);
  switch (field.type) {
    case 'string': return r.pick(STRINGS);
    case 'int64': case 'uint64': return r.pick(INT64S);
    case 'uint32': return r.pick(UINT32S);
    case 'int32': return r.pick([0, 5, -1, -300, 2 ** 31 - 1]);
    case 'double': case 'float': return field.type === 'float' ? r.pick([0, 1.5, -2]) : r.pick(DOUBLES);
    case 'bool': return r.next() < 0.5;
    default: throw new Error(`no generator for ${field.type}`);
  }
}

function randomMessage(type: protobuf.Type, r: ReturnType<typeof rng>, depth = 0): Record<string, unknown> {
  const m: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const roll = r.next();
    if (roll < 0.15) continue; // absent
    if (roll < 0.25) { m[field.name] = r.pick([null, undefined]); continue; }
    if (field.map) {
      const map: Record<string, string> = {};
      for (let i = r.int(4); i > 0; i--) map[r.pick(STRINGS)] = r.pick(STRINGS);
      m[field.name] = map;
    } else if (field.repeated) {
      m[field.name] = Array.from({ length: r.int(4) }, () => randomValue(field, r, depth));
    } else {
      m[field.name] = randomValue(field, r, depth);
    }
  }
  return m;
}

test('the sized encoder writes protobufjs\'s bytes for random messages of every stats type', () => {
  for (const name of AS_BUILT) {
    const type = root.lookupType(`runtime.v1.${name}`);
    checkSizedEncodable(type);
    for (let seed = 1; seed <= 300; seed++) {
      const message = randomMessage(type, rng(seed * 7919 + name.length));
      const expected = Buffer.from(type.encode(message as unknown as protobuf.Message).finish());
      assert.deepEqual(encodeSized(type, message), expected, `${name}, seed ${seed}: ${JSON.stringify(message).slice(0, 300)}`);
    }
  }
});

test('the sized encoder skips what protobufjs skips: inherited properties, null and undefined, empty repeated fields', () => {
  const type = root.lookupType('runtime.v1.ContainerStats');
  const inherited = Object.create({ cpu: { timestamp: '5' } }) as Record<string, unknown>;
  inherited['attributes'] = { id: 'c', labels: Object.create({ hidden: 'x' }), annotations: null };
  inherited['memory'] = undefined;
  inherited['io'] = null;
  const expected = Buffer.from(type.encode(inherited as unknown as protobuf.Message).finish());
  assert.deepEqual(encodeSized(type, inherited), expected);
  assert.deepEqual(encodeSized(root.lookupType('runtime.v1.ListContainerStatsResponse'), { stats: [] }), Buffer.alloc(0));
});

test('the stats responses go through the sized encoder, other messages through protobufjs, with the same bytes', () => {
  const response = { stats: [{ attributes: { id: 'c', metadata: { name: 'app', attempt: 0 }, labels: { a: 'b' }, annotations: {} }, cpu: { timestamp: '1733369000000000123', usage_core_nano_seconds: { value: 2 ** 40 } } }] };
  const type = root.lookupType('runtime.v1.ListContainerStatsResponse');
  const serialize = runtimeServiceDefinition['ListContainerStats']!.responseSerialize;
  assert.deepEqual(serialize(response), Buffer.from(type.encode(response as unknown as protobuf.Message).finish()));
});

test('a type with a field it cannot write is refused when it is planned, naming the field', () => {
  assert.throws(() => checkSizedEncodable(root.lookupType('runtime.v1.ContainerStatus')), /ContainerStatus\.state is an enum/);
});
