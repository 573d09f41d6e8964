import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runtimeServiceDefinition, imageServiceDefinition } from '../../src/cri/proto.js';
import { encodeListsOnce, perState } from '../../src/cri/list-encoding.js';

const pod = (i: number) => ({
  id: `pod-${i}`,
  metadata: { name: `p${i}`, uid: `u${i}`, namespace: 'ns', attempt: i },
  state: i % 2 ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY',
  created_at: String(1_700_000_000_000_000_000n + BigInt(i)),
  labels: { app: 'x', i: String(i) },
  annotations: { note: 'é'.repeat(i) },
  runtime_handler: i % 3 ? '' : 'crun',
});

test('a List response encoded item by item is byte for byte the whole encoding, and decodes the same', () => {
  const whole = runtimeServiceDefinition.ListPodSandbox!.responseSerialize as (v: unknown) => Buffer;
  const byItem = encodeListsOnce(runtimeServiceDefinition, { ListPodSandbox: 'items' }).ListPodSandbox!;
  const items = Array.from({ length: 40 }, (_, i) => pod(i));
  for (const response of [{ items }, { items: items.slice(3, 4) }, { items: [] }]) {
    const bytes = (byItem.responseSerialize as (v: unknown) => Buffer)(response);
    assert.deepEqual(bytes, whole(response));
    const decoded = byItem.responseDeserialize(bytes) as { items: { id: string }[] };
    assert.deepEqual(decoded.items.map((p) => p.id), response.items.map((p) => p.id));
  }
  // The same item objects in a later call reuse their bytes; a new object is encoded afresh.
  const again = [...items.slice(0, 39), { ...items[39]!, state: 'SANDBOX_NOTREADY' }];
  assert.deepEqual((byItem.responseSerialize as (v: unknown) => Buffer)({ items: again }), whole({ items: again }));
});

test('methods not named, and responses with other fields, are encoded as before', () => {
  const wrapped = encodeListsOnce(imageServiceDefinition, { ListImages: 'images' });
  assert.equal(wrapped.ImageStatus, imageServiceDefinition.ImageStatus);
  const whole = imageServiceDefinition.ListImages!.responseSerialize as (v: unknown) => Buffer;
  const odd = { images: [{ id: 'sha256:x', repo_tags: ['a'], repo_digests: [], size: '1', uid: null, username: '', spec: null, pinned: false }], extra: 1 };
  assert.deepEqual((wrapped.ListImages!.responseSerialize as (v: unknown) => Buffer)(odd), whole(odd));
  assert.throws(() => encodeListsOnce(imageServiceDefinition, { NoSuchMethod: 'x' }), /no method NoSuchMethod/);
});

test('perState builds an item once per state of its stream', () => {
  let builds = 0;
  const item = perState((id: string, s: { value: string; context: { n: number } }) => ({ id, n: s.context.n, v: s.value, build: ++builds }));
  const context = { n: 1 };
  const first = item('a', { value: 'ready', context });
  assert.equal(item('a', { value: 'ready', context }), first, 'same context and value: the same object');
  assert.notEqual(item('a', { value: 'notready', context }), first, 'a new value');
  assert.notEqual(item('a', { value: 'notready', context: { n: 1 } }).build, first.build, 'a new context');
  assert.equal(builds, 3);
});
