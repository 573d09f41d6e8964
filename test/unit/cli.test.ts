import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EventStore } from '../../src/events/store.js';
import Database from 'better-sqlite3';
import { CRISP_BIN } from '../helpers/daemon.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { containerLife, hexId, sandboxRun } from '../helpers/events.js';

const run = promisify(execFile);
const crisp = (...args: string[]) => run(process.execPath, [CRISP_BIN, ...args], { timeout: 20_000 });
const fails = (...args: string[]) => crisp(...args).then(() => assert.fail(`crisp ${args.join(' ')} should fail`), (err) => err);

function stateDir(t: { after(fn: () => void): void }) {
  const root = mkdtempSync(join(tmpdir(), 'crisp-cli-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

test('every command has --help; version and unknown commands behave', async () => {
  for (const command of ['daemon', 'config', 'version', 'events', 'replay', 'trace', 'salvage']) {
    const { stdout } = await crisp(command, '--help');
    assert.match(stdout, /^Usage: crisp /, command);
  }
  assert.match((await crisp('--help')).stdout, /Commands:/);
  assert.match((await crisp('version')).stdout, /^crisp \d+\.\d+\.\d+ \(CRI runtime API v1\)/);
  const err = await fails('frobnicate');
  assert.equal(err.code, 1);
  assert.match(err.stderr, /unknown command "frobnicate"/);
  assert.match((await crisp('daemon', '--help')).stdout, /--cni-plugin-dir/);
});

test('events and replay read the log of --root; the old rebuild-projections says there is nothing to rebuild', async (t) => {
  const root = stateDir(t);
  const sandbox = hexId();
  const container = hexId();
  const store = EventStore.open(join(root, 'state.db'));
  store.append({ kind: 'sandbox', streamId: sandbox, expectedVersion: 0, events: [sandboxRun(), { type: 'SandboxReady' }] });
  const stored = store.append({ kind: 'container', streamId: container, expectedVersion: 0, events: containerLife(sandbox).slice(0, 6) });
  store.close();

  const all = (await crisp('events', '--root', root)).stdout.trim().split('\n');
  assert.equal(all.length, 8);
  assert.match(all[0]!, /sandbox\s+\w{13}\s+v1\s+SandboxRunRequested/);

  const json = (await crisp('events', '--root', root, '--stream', container.slice(0, 10), '--json')).stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(json.map((e) => e.event.type), containerLife(sandbox).slice(0, 6).map((e) => e.type));
  assert.ok(json.every((e) => e.stream === container && /^\d{4}-\d\d-\d\dT.*\.\d{9}Z$/.test(e.time)));
  assert.equal((await crisp('events', '--root', root, '--kind', 'sandbox')).stdout.trim().split('\n').length, 2);
  assert.equal((await crisp('events', '--root', root, '--since', '2000-01-01T00:00:00Z')).stdout.trim().split('\n').length, 8);
  assert.equal((await crisp('events', '--root', root, '--since', '2999-01-01T00:00:00Z')).stdout, '');
  assert.match((await fails('events', '--root', root, '--kind', 'pods')).stderr, /--kind "pods"/);
  assert.match((await fails('events', '--root', root, '--stream', 'ffffffff')).stderr, /no stream matches/);

  const replayed = (await crisp('replay', container.slice(0, 12), '--root', root)).stdout;
  assert.match(replayed, /ContainerCreateRequested: "new" → "creating"/);
  assert.match(replayed, /\+[\d.]+(µs|ms|s) ContainerStarted: "starting" → "running"/);
  assert.match(replayed, /^state: "running"$/m);
  const atCreated = (await crisp('replay', container, '--root', root, '--seq', String(stored[3]!.seq))).stdout;
  assert.match(atCreated, /^state: "created"$/m);
  assert.doesNotMatch(atCreated, /ContainerStartRequested/);

  const rebuilt = await fails('rebuild-projections', '--root', root);
  assert.match(rebuilt.stderr, /no query tables since schema 3.*crisp salvage --from/);
  assert.match((await fails('salvage', '--root', root)).stderr, /--from KEPT-COPY is required/);
});

test('events --follow prints events as another process commits them', async (t) => {
  const root = stateDir(t);
  const store = EventStore.open(join(root, 'state.db'));
  t.after(() => store.close());
  const follower = spawn(process.execPath, [CRISP_BIN, 'events', '--root', root, '--follow']);
  t.after(() => follower.kill('SIGKILL'));
  let output = '';
  follower.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const waitFor = async (pattern: RegExp) => {
    for (let i = 0; i < 200 && !pattern.test(output); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(output, pattern);
  };
  const id = hexId();
  store.append({ kind: 'sandbox', streamId: id, expectedVersion: 0, events: [sandboxRun()] });
  await waitFor(/SandboxRunRequested/);
  store.append({ kind: 'sandbox', streamId: id, expectedVersion: 1, events: [{ type: 'SandboxReady' }] });
  await waitFor(/SandboxReady/);
  follower.kill('SIGINT');
});

test('the README demo works on a fresh clone: events, replay and trace read state.db.example with --db', async () => {
  const example = join(PACKAGE_ROOT, 'state.db.example');
  const pods = (await crisp('events', '--db', example, '--kind', 'sandbox', '--json')).stdout.trim().split('\n').map((l) => JSON.parse(l));
  const pod = pods.find((e) => e.event.type === 'SandboxRunRequested')!.stream as string;
  assert.match((await crisp('replay', '--db', example, pod.slice(0, 12))).stdout, /^state: "removed"$/m);

  const text = (await crisp('trace', '--db', example, pod.slice(0, 12))).stdout.trim().split('\n');
  // One line for the trace, one per stream, one per step (every event but the first of each
  // stream and the requests, which end a wait rather than a step).
  const db = new Database(example, { readonly: true });
  const rows = db.prepare("SELECT stream_id, type, version FROM events WHERE stream_kind IN ('sandbox', 'container')").all() as { stream_id: string; type: string; version: number }[];
  db.close();
  const containers = new Set(rows.filter((r) => r.type === 'ContainerCreateRequested').map((r) => r.stream_id));
  const ours = rows.filter((r) => r.stream_id === pod || containers.has(r.stream_id));
  const steps = ours.filter((r) => r.version > 1 && !r.type.endsWith('Requested'));
  assert.equal(text.length, 1 + 1 + containers.size + steps.length, text.join('\n'));
  for (const step of steps) assert.ok(text.some((l) => l.trimStart().startsWith(step.type) && /\|[ █!]+\| \S+$/.test(l)), `a bar for ${step.type}`);

  // Trace Event format: complete events with µs times on one process, a named thread per stream.
  const chrome = JSON.parse((await crisp('trace', '--db', example, pod, '--format', 'chrome')).stdout) as { traceEvents: Record<string, unknown>[] };
  const complete = chrome.traceEvents.filter((e) => e.ph === 'X');
  assert.equal(complete.length, 1 + containers.size + steps.length);
  for (const e of complete) {
    assert.equal(typeof e.name, 'string');
    assert.ok(Number.isInteger(e.ts) && Number.isInteger(e.dur) && (e.dur as number) >= 0, JSON.stringify(e));
    assert.equal(e.pid, 1);
    assert.ok(chrome.traceEvents.some((m) => m.ph === 'M' && m.name === 'thread_name' && m.tid === e.tid), 'its thread is named');
  }
  const err = await fails('trace', '--db', example, pod, '--format', 'svg');
  assert.match(err.stderr, /--format "svg": expected text, chrome or otlp/);
});
