import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { connect as h2connect } from 'node:http2';
import { HpackDecoder, encodeLiterals } from '../../src/cri/hpack.js';
import { fixAuthority } from '../../src/cri/authority-filter.js';
import { startVersionServer } from '../helpers/cri-server.js';
import { PREFACE, SETTINGS, bombFrames, frame, requestBlock, sendRaw, versionAnswers } from '../helpers/h2-frames.js';

test('HPACK: the RFC 7541 C.4 requests decode, Huffman strings and dynamic table included', () => {
  const decoder = new HpackDecoder();
  const first = decoder.decode(Buffer.from('828684418cf1e3c2e5f23a6ba0ab90f4ff', 'hex'));
  assert.deepEqual(first.map((f) => [f.name, f.value]), [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']]);
  // The second request refers to the entry the first one added (index 62).
  const second = decoder.decode(Buffer.from('828684be5886a8eb10649cbf', 'hex'));
  assert.deepEqual(second.map((f) => [f.name, f.value]).at(-1), ['cache-control', 'no-cache']);
  assert.deepEqual(second.map((f) => f.value)[3], 'www.example.com');
});

test('HPACK: literals written out read back the same, sensitivity kept; bad input is refused', () => {
  const fields = [
    { name: ':authority', value: 'localhost', sensitive: false },
    { name: 'x-long', value: 'v'.repeat(300), sensitive: false },
    { name: 'authorization', value: 'secret', sensitive: true },
  ];
  assert.deepEqual(new HpackDecoder().decode(encodeLiterals(fields)), fields);
  assert.throws(() => new HpackDecoder().decode(Buffer.from([0xff, 0xff])), /integer|index/);
  assert.throws(() => new HpackDecoder().decode(Buffer.from([0xbf])), /not in the table/);
});

test('only an :authority that is not a valid authority is replaced', () => {
  const fix = (value: string) => fixAuthority([{ name: ':authority', value, sensitive: false }])[0]!.value;
  assert.equal(fix('/run/crisp/crisp.sock'), 'localhost');
  assert.equal(fix('localhost'), 'localhost');
  assert.equal(fix('127.0.0.1:1234'), '127.0.0.1:1234');
});

test('a gRPC call whose :authority is the socket path (old Go clients) is served', async (t) => {
  const socketPath = await startVersionServer(t);
  const session = h2connect('http://localhost', { createConnection: () => netConnect(socketPath) });
  t.after(() => session.close());
  const request = session.request({
    ':method': 'POST', ':path': '/runtime.v1.RuntimeService/Version', ':authority': socketPath,
    'content-type': 'application/grpc', te: 'trailers',
  });
  request.end(Buffer.from([0, 0, 0, 0, 0]));
  const chunks: Buffer[] = [];
  request.on('data', (c: Buffer) => chunks.push(c));
  const trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    request.on('trailers', resolve);
    request.on('error', reject);
  });
  assert.equal(trailers['grpc-status'], '0');
  assert.match(Buffer.concat(chunks).toString('latin1'), /crisp/);
});

// ---- hostile header blocks: the connection that sends one is cut, the server goes on -----------


test('a header-block bomb as the first block (decoded by the filter) cuts that connection only', async (t) => {
  const socketPath = await startVersionServer(t);
  const rssBefore = process.memoryUsage().rss;
  assert.equal(await sendRaw(socketPath, [PREFACE, SETTINGS, ...bombFrames(1, 200_000)]), 'closed');
  assert.ok(process.memoryUsage().rss - rssBefore < 200 * 1024 * 1024, 'the bomb was not decoded in full');
  assert.equal(await versionAnswers(socketPath), true);
  assert.equal(await versionAnswers(socketPath, socketPath), true);
});

test('a header-block bomb after a good first block (passed through to HTTP/2) is refused and the server goes on', async (t) => {
  const socketPath = await startVersionServer(t);
  const good = frame(0x1, 0x4, 1, requestBlock('localhost'));
  const data = frame(0x0, 0x1, 1, Buffer.from([0, 0, 0, 0, 0]));
  const state = await sendRaw(socketPath, [PREFACE, SETTINGS, good, data, ...bombFrames(3, 200_000)]);
  assert.ok(state === 'closed' || state === 'open');
  assert.equal(await versionAnswers(socketPath), true);
});

test('a bomb on a rewritten connection (old Go client authority) cuts that connection only', async (t) => {
  const socketPath = await startVersionServer(t);
  const good = frame(0x1, 0x4, 1, requestBlock(socketPath));
  const data = frame(0x0, 0x1, 1, Buffer.from([0, 0, 0, 0, 0]));
  assert.equal(await sendRaw(socketPath, [PREFACE, SETTINGS, good, data, ...bombFrames(3, 200_000)]), 'closed');
  assert.equal(await versionAnswers(socketPath, socketPath), true);
});

test('malformed header frames cut their connection: bad padding, CONTINUATION floods, giant frames, interleaving', async (t) => {
  const socketPath = await startVersionServer(t);
  const cases: [string, Buffer[]][] = [
    ['padding longer than the frame', [frame(0x1, 0x4 | 0x8, 1, Buffer.from([200, 0x82]))]],
    ['CONTINUATION flood without END_HEADERS', [frame(0x1, 0, 1, Buffer.from([0x82])), ...Array.from({ length: 10 }, () => frame(0x9, 0, 1, Buffer.alloc(16_000, 0x82)))]],
    ['a 16 MB frame header', [frame(0x1, 0x4, 1, Buffer.alloc(10), 16 * 1024 * 1024 - 1)]],
    ['CONTINUATION with no header block', [frame(0x9, 0x4, 1, Buffer.from([0x82]))]],
    ['a DATA frame inside a header block', [frame(0x1, 0, 1, Buffer.from([0x82])), frame(0x0, 0, 1, Buffer.from('x'))]],
    ['an HPACK index beyond the table', [frame(0x1, 0x4, 1, Buffer.from([0xff, 0x80, 0x01]))]],
  ];
  for (const [what, frames] of cases) {
    assert.equal(await sendRaw(socketPath, [PREFACE, SETTINGS, ...frames]), 'closed', what);
  }
  assert.equal(await versionAnswers(socketPath), true);
});
