// A retried request is recognised whatever the log's JSON round trip did to it (issue 15,
// section 1): for random configs built from the proto's own descriptors, the decoded request and
// the config replayed from the event log are the same request in canonical form, and any one
// field changed is found and named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullPackageDefinition } from '../../src/cri/proto.js';
import { canonical, differingField } from '../../src/machines/request-compare.js';
import { EventStore } from '../../src/events/store.js';
import { stateOf } from '../../src/machines/index.js';
import type { PodSandboxConfig__Output } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { ContainerConfig__Output } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';

const packageDefinition = fullPackageDefinition();

interface Field { name: string; label: string; type: string; typeName: string }
interface Message { field: Field[]; nestedType: Message[]; enumType: { name: string; value: { name: string }[] }[]; name: string; options?: { mapEntry?: boolean } | null }

/** A small seeded generator, so a failure can be replayed from its seed. */
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  return {
    int: (n: number) => Math.floor(next() * n),
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof rng>;

const ALPHABET = ['a', 'Z', '0', '-', '.', '/', ' ', 'é', '"', '\\', '{', '😀'];
function randomString(r: Rng): string {
  return Array.from({ length: r.int(8) }, () => ALPHABET[r.int(ALPHABET.length)]).join('');
}

function lookup(typeName: string, scope: Message): { kind: 'message'; type: Message } | { kind: 'enum'; values: string[] } {
  const nested = scope.nestedType.find((n) => n.name === typeName);
  if (nested) return { kind: 'message', type: nested };
  const nestedEnum = scope.enumType.find((n) => n.name === typeName);
  if (nestedEnum) return { kind: 'enum', values: nestedEnum.value.map((v) => v.name) };
  const def = packageDefinition[`runtime.v1.${typeName}`] as unknown as { format: string; type: Message & { value: { name: string }[] } };
  if (!def) throw new Error(`no type ${typeName}`);
  return def.format.includes('Enum') ? { kind: 'enum', values: def.type.value.map((v) => v.name) } : { kind: 'message', type: def.type };
}

function scalar(field: Field, scope: Message, r: Rng): unknown {
  switch (field.type) {
    case 'TYPE_STRING': return randomString(r);
    case 'TYPE_BOOL': return r.chance(0.5);
    case 'TYPE_INT64': case 'TYPE_UINT64': case 'TYPE_SINT64': return String(r.chance(0.2) ? '9007199254740993' : r.int(1e6) - (field.type === 'TYPE_INT64' ? 5e5 : 0));
    case 'TYPE_INT32': case 'TYPE_SINT32': return r.int(2000) - 1000;
    case 'TYPE_UINT32': return r.int(65536);
    case 'TYPE_DOUBLE': case 'TYPE_FLOAT': return r.int(100) / 4;
    case 'TYPE_BYTES': return Buffer.from(randomString(r));
    case 'TYPE_ENUM': {
      const e = lookup(field.typeName, scope);
      return e.kind === 'enum' ? e.values[r.int(e.values.length)] : undefined;
    }
    default: throw new Error(`field ${field.name}: type ${field.type}`);
  }
}

function randomMessage(type: Message, r: Rng, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.field) {
    if (!r.chance(0.6)) continue; // absent: the decoder fills in its default
    if (field.type === 'TYPE_MESSAGE') {
      const t = lookup(field.typeName, type);
      if (t.kind !== 'message') continue;
      if (t.type.options?.mapEntry) {
        out[field.name] = Object.fromEntries(Array.from({ length: r.int(4) }, () => [randomString(r), randomString(r)]));
      } else if (depth < 4) {
        out[field.name] = field.label === 'LABEL_REPEATED'
          ? Array.from({ length: r.int(3) }, () => randomMessage(t.type, r, depth + 1))
          : randomMessage(t.type, r, depth + 1);
      }
    } else {
      out[field.name] = field.label === 'LABEL_REPEATED' ? Array.from({ length: r.int(4) }, () => scalar(field, type, r)) : scalar(field, type, r);
    }
  }
  return out;
}

const messageType = (name: string) => (packageDefinition[`runtime.v1.${name}`] as unknown as { type: Message }).type;
function decode<T>(requestType: string, request: Record<string, unknown>): T {
  const def = packageDefinition[`runtime.v1.${requestType}`] as unknown as { serialize(v: unknown): Buffer; deserialize(b: Buffer): T };
  return def.deserialize(def.serialize(request));
}

test('canonical(decoded request) equals canonical(config replayed from the log), for random pod and container configs', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-test-canonical-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'state.db');
  const decoded = new Map<string, { sandbox: PodSandboxConfig__Output; container: ContainerConfig__Output }>();
  let store = EventStore.open(path);
  const r = rng(20261203);
  for (let i = 0; i < 200; i++) {
    const sandbox = decode<{ config: PodSandboxConfig__Output }>('RunPodSandboxRequest', { config: randomMessage(messageType('PodSandboxConfig'), r, 0) }).config;
    const container = decode<{ config: ContainerConfig__Output }>('CreateContainerRequest', { config: randomMessage(messageType('ContainerConfig'), r, 0) }).config;
    const sid = i.toString(16).padStart(64, '0');
    const cid = (i + 1000).toString(16).padStart(64, 'c');
    store.append({ kind: 'sandbox', streamId: sid, expectedVersion: 0, events: [{ type: 'SandboxRunRequested', config: sandbox, runtimeHandler: '', nameKey: `k${i}`, createdAt: '1' }] });
    store.append({ kind: 'sandbox', streamId: sid, expectedVersion: 1, events: [{ type: 'SandboxReady' }] });
    store.append({ kind: 'container', streamId: cid, expectedVersion: 0, events: [{ type: 'ContainerCreateRequested', sandboxId: sid, config: container, image: { requested: 'i', id: 'sha256:x', ref: 'i' }, nameKey: `c${i}`, logPath: '/l', createdAt: '1' }] });
    decoded.set(sid, { sandbox, container });
    // In memory, before any restart, the held config must compare equal too.
    assert.equal(differingField(stateOf('sandbox', store.stream(sid)!.snapshot).context.config, sandbox, 'config'), undefined);
  }
  store.close();
  store = EventStore.open(path);
  try {
    let i = 0;
    for (const [sid, { sandbox, container }] of decoded) {
      const cid = (i++ + 1000).toString(16).padStart(64, 'c');
      const replayedSandbox = stateOf('sandbox', store.stream(sid)!.snapshot).context.config;
      const replayedContainer = stateOf('container', store.stream(cid)!.snapshot).context.config;
      assert.deepEqual(canonical(replayedSandbox), canonical(sandbox), `sandbox ${i}`);
      assert.deepEqual(canonical(replayedContainer), canonical(container), `container ${i}`);
      assert.equal(differingField(replayedSandbox, sandbox, 'config'), undefined);
      assert.equal(differingField(replayedContainer, container, 'config'), undefined);
    }
  } finally {
    store.close();
  }
});

test('the canonical form ignores key order, defaults and number spelling, and names the first real difference', () => {
  assert.equal(differingField({ a: '1', b: { c: [] } }, { b: null, a: 1 }, 'config'), undefined);
  assert.equal(differingField({ labels: { x: 'y' } }, { labels: { x: 'z' } }, 'config'), 'config.labels.x');
  assert.equal(differingField({ labels: { 'app.kubernetes.io/name': 'y' } }, { labels: {} }, 'config'), 'config.labels["app.kubernetes.io/name"]');
  assert.equal(differingField({ command: ['a', 'b'] }, { command: ['a'] }, 'config'), 'config.command[1]');
  assert.equal(differingField({ command: ['', 'b'] }, { command: ['b'] }, 'config'), 'config.command[0]');
  assert.equal(differingField({ metadata: { attempt: 0 } }, { metadata: { attempt: 1 } }, 'config'), 'config.metadata.attempt');
});
