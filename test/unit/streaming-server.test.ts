import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { StreamingServer, type StreamingBackend } from '../../src/streaming/server.js';
import { SpdyClient, collect } from '../helpers/spdy-client.js';
import type { ExecSpec } from '../../src/streaming/requests.js';

// A backend whose "process" prints its command and exits 0: the server and protocols are
// real (loopback HTTP, SPDY framing), only the node side is left out.
function echoBackend(started: string[]): StreamingBackend {
  return {
    async exec(spec) {
      started.push(spec.cmd.join(' '));
      const stdout = new PassThrough();
      stdout.end(spec.cmd.join(' '));
      return { stdin: null, stdout, stderr: null, exited: Promise.resolve(0), resize: async () => undefined, kill: async () => undefined };
    },
    attach: () => Promise.reject(new Error('not in this test')),
    dialer: () => () => Promise.reject(new Error('not in this test')),
  };
}

const spec = (cmd: string[]): ExecSpec => ({ kind: 'exec', containerId: 'c', cmd, tty: false, stdin: false, stdout: true, stderr: false });

test('an expired or reused token gets 404 and starts nothing; a fresh one runs once', async (t) => {
  const started: string[] = [];
  const server = new StreamingServer({ address: '127.0.0.1', port: 0, backend: echoBackend(started), tokenTtlMs: 100 });
  await server.start();
  t.after(() => server.stop());
  const expired = server.issue(spec(['expired']));
  const fresh = server.issue(spec(['echo', 'fresh']));
  const client = await SpdyClient.connect(fresh, ['v4.channel.k8s.io']);
  const error = await client.open({ streamType: 'error' });
  const out = await client.open({ streamType: 'stdout' });
  assert.equal((await collect(out)).toString(), 'echo fresh');
  assert.deepEqual(JSON.parse((await collect(error)).toString()), { metadata: {}, status: 'Success' });
  client.close();
  await sleep(150);
  for (const url of [expired, fresh]) {
    await assert.rejects(SpdyClient.connect(url, ['v4.channel.k8s.io']), (e: Error & { statusCode?: number }) => e.statusCode === 404);
  }
  assert.deepEqual(started, ['echo fresh']);
});

test('no common protocol is 403; a plain GET is told to upgrade and keeps its token', async (t) => {
  const server = new StreamingServer({ address: '127.0.0.1', port: 0, backend: echoBackend([]) });
  await server.start();
  t.after(() => server.stop());
  const url = server.issue(spec(['x']));
  const plain = await fetch(url);
  assert.equal(plain.status, 400);
  await assert.rejects(SpdyClient.connect(url, ['v9.channel.k8s.io']), (e: Error & { statusCode?: number }) => e.statusCode === 403);
});
