import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenCache } from '../../src/streaming/tokens.js';
import { ResizeDecoder, outcomeStatus, outcomeText } from '../../src/streaming/remote-command.js';
import { expectedStreams } from '../../src/streaming/spdy-remote-command.js';
import { negotiate } from '../../src/streaming/server.js';
import { RecordSplitter } from '../../src/streaming/relay.js';
import { resizeMessage } from '../../src/streaming/attach-process.js';
import { runcExecArgs } from '../../src/streaming/exec-process.js';
import { execProcess } from '../../src/actors/monitor/exec-process-file.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('tokens are single-use and expire', () => {
  let now = 1000;
  const cache = new TokenCache<string>(60_000, 2, () => now);
  const a = cache.insert('a');
  assert.match(a, /^[A-Za-z0-9_-]{24}$/);
  assert.equal(cache.consume(a), 'a');
  assert.equal(cache.consume(a), undefined, 'a second use fails');
  const b = cache.insert('b');
  now += 60_000;
  assert.equal(cache.consume(b), undefined, 'expired after a minute');
  cache.insert('c');
  cache.insert('d');
  assert.throws(() => cache.insert('e'), /waiting for their clients/);
  now += 60_001;
  assert.doesNotThrow(() => cache.insert('f'), 'expired tokens make room');
});

test('the v4 Status carries the exit code as a NonZeroExitCode cause', () => {
  assert.deepEqual(outcomeStatus({ exitCode: 0 }, ['true']), { metadata: {}, status: 'Success' });
  const failed = outcomeStatus({ exitCode: 7 }, ['sh', '-c', 'exit 7']);
  assert.equal(failed.reason, 'NonZeroExitCode');
  assert.deepEqual(failed.details, { causes: [{ reason: 'ExitCode', message: '7' }] });
  assert.match(failed.message!, /exit code 7/);
  assert.equal(outcomeStatus({ error: 'boom' }, undefined).reason, 'InternalError');
  assert.equal(outcomeText({ exitCode: 0 }, []), '');
});

test('resize events are parsed from newline-separated JSON, split anywhere', () => {
  const d = new ResizeDecoder();
  const sizes: unknown[] = [];
  d.on('resize', (s) => sizes.push(s));
  d.push(Buffer.from('{"Width":80,"Hei'));
  d.push(Buffer.from('ght":24}\n{"Width":100,"Height":40}\n'));
  d.push(Buffer.from('{"Width":1,"Height":2}'));
  d.push(Buffer.from('garbage\n'));
  assert.deepEqual(sizes, [{ width: 80, height: 24 }, { width: 100, height: 40 }, { width: 1, height: 2 }]);
});

test('which SPDY streams a request waits for, per protocol version', () => {
  const tty = { tty: true, stdin: true, stdout: true, stderr: false };
  assert.deepEqual(expectedStreams(tty, 'v4.channel.k8s.io'), ['error', 'stdin', 'stdout', 'resize']);
  assert.deepEqual(expectedStreams(tty, 'v2.channel.k8s.io'), ['error', 'stdin', 'stdout']);
  assert.deepEqual(expectedStreams({ tty: false, stdin: false, stdout: true, stderr: true }, 'v4.channel.k8s.io'), ['error', 'stdout', 'stderr']);
});

test('protocol negotiation takes the client order, as Kubernetes does', () => {
  assert.equal(negotiate(['v5.channel.k8s.io', 'v4.channel.k8s.io'], ['v4.channel.k8s.io', 'v3.channel.k8s.io']), 'v4.channel.k8s.io');
  assert.equal(negotiate(['v3.channel.k8s.io', 'v4.channel.k8s.io'], ['v4.channel.k8s.io', 'v3.channel.k8s.io']), 'v3.channel.k8s.io');
  assert.equal(negotiate(['nope'], ['v4.channel.k8s.io']), undefined);
});

test('seqpacket relay records are split back on their length prefixes', () => {
  const s = new RecordSplitter();
  const rec = (b: string) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), Buffer.from(b)]);
  const all = Buffer.concat([rec('\x02out'), rec('\x03err'), rec('')]);
  assert.deepEqual(s.push(all.subarray(0, 5)).map(String), []);
  assert.deepEqual(s.push(all.subarray(5)).map(String), ['\x02out', '\x03err', '']);
});

test('the exec process is the container\'s own with the command; a terminal gets TERM=xterm', async (t) => {
  const bundle = mkdtempSync(join(tmpdir(), 'crisp-exec-'));
  t.after(() => rmSync(bundle, { recursive: true, force: true }));
  const process = { user: { uid: 1001, gid: 1001, additionalGids: [10] }, args: ['/app'], env: ['PATH=/bin', 'TERM=dumb'], cwd: '/w', capabilities: { bounding: ['CAP_KILL'] }, noNewPrivileges: true, consoleSize: { height: 1, width: 1 } };
  writeFileSync(join(bundle, 'config.json'), JSON.stringify({ process }));
  const plain = await execProcess(bundle, ['id', '-u'], false);
  assert.deepEqual(plain, { user: process.user, args: ['id', '-u'], env: ['PATH=/bin', 'TERM=dumb'], cwd: '/w', capabilities: process.capabilities, noNewPrivileges: true, terminal: false });
  const tty = await execProcess(bundle, ['sh'], true);
  assert.deepEqual([tty.terminal, tty.env], [true, ['PATH=/bin', 'TERM=xterm']]);
  await assert.rejects(execProcess(join(bundle, 'gone'), ['sh'], false), /cannot be read/);
});

test('exec and attach helpers: runc arguments, conmon resize message', () => {
  assert.deepEqual(runcExecArgs({ runcRoot: '/r', containerId: 'c', pidFile: '/p', processFile: '/x.json' }), ['--root', '/r', 'exec', '--pid-file', '/p', '--process', '/x.json', 'c']);
  assert.equal(resizeMessage({ width: 120, height: 40 }), '1 40 120\n');
  assert.equal(resizeMessage({ width: -1, height: 1e9 }), '1 65535 0\n');
});
