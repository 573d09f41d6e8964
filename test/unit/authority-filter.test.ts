import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, createServer as netServer, Socket } from 'node:net';
import { connect as h2connect, createServer as h2server } from 'node:http2';
import type { Duplex } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HpackDecoder, encodeLiterals } from '../../src/cri/hpack.js';
import { AuthorityFilter, fixAuthority } from '../../src/cri/authority-filter.js';
import { openConnection } from '../../src/cri/connection-opening.js';
import { startVersionServer } from '../helpers/cri-server.js';
import { PREFACE, SETTINGS, SETTINGS_ACK, bombFrames, frame, rawConnection, requestBlock, sendRaw, versionAnswers } from '../helpers/h2-frames.js';

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

// ---- the opening: who gets the socket ------------------------------------------------------------

/** A plain HTTP/2 server behind openConnection that answers every stream as a gRPC call; records what it was given. */
async function openingServer(t: import('node:test').TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-opening-'));
  const socketPath = join(dir, 's.sock');
  const given: (Socket | Duplex)[] = [];
  const h2 = h2server();
  h2.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
  const listener = netServer((socket) => openConnection(socket, (stream) => {
    given.push(stream);
    h2.emit('connection', stream);
  }));
  await new Promise<void>((resolve) => listener.listen(socketPath, resolve));
  t.after(() => {
    listener.close();
    h2.close();
    for (const s of given) s.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  return { socketPath, given };
}

test('a client whose :authority is fine gets HTTP/2 on the socket itself; a socket-path authority goes through the filter', async (t) => {
  const { socketPath, given } = await openingServer(t);
  assert.equal(await versionAnswers(socketPath, 'localhost'), true);
  assert.equal(given.length, 1);
  assert.ok(given[0] instanceof Socket && !(given[0] instanceof AuthorityFilter), 'handed over as the socket, read natively by HTTP/2');
  assert.equal(await versionAnswers(socketPath, socketPath), true);
  assert.equal(given.length, 2);
  assert.ok(given[1] instanceof AuthorityFilter);
});

test('a request sent before the acknowledgement of the opening SETTINGS waits for it; the server never sees that acknowledgement', async (t) => {
  for (const authority of ['localhost', '/run/crisp/crisp.sock']) {
    const { socketPath, given } = await openingServer(t);
    const client = rawConnection(socketPath);
    t.after(() => client.close());
    client.write(PREFACE, SETTINGS, frame(0x1, 0x4, 1, requestBlock(authority)), frame(0x0, 0x1, 1, Buffer.from([0, 0, 0, 0, 0])));
    // The opening's own SETTINGS arrives at once.
    await client.waitFor((f) => f.type === 0x4 && !(f.flags & 0x1));
    await new Promise((r) => setTimeout(r, 150));
    if (authority === 'localhost') {
      assert.equal(given.length, 0, 'not handed over before the acknowledgement');
      assert.ok(!client.frames.some((f) => f.streamId === 1), 'no answer before the acknowledgement');
    }
    client.write(SETTINGS_ACK);
    // The answer's trailers (HEADERS with END_STREAM on stream 1); an acknowledgement the server
    // did not expect would have cost a GOAWAY instead.
    await client.waitFor((f) => f.type === 0x1 && f.streamId === 1 && (f.flags & 0x1) !== 0);
    // The server's own SETTINGS follow the opening's; acknowledged as a client does, they match
    // what the server sent (had it been given the opening's acknowledgement too, this second one
    // would be unexpected, and a protocol error), and the connection serves a second call.
    await client.waitFor(() => client.frames.filter((f) => f.type === 0x4 && !(f.flags & 0x1)).length === 2);
    client.write(SETTINGS_ACK, frame(0x1, 0x4, 3, requestBlock(authority)), frame(0x0, 0x1, 3, Buffer.from([0, 0, 0, 0, 0])));
    await client.waitFor((f) => f.type === 0x1 && f.streamId === 3 && (f.flags & 0x1) !== 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!client.frames.some((f) => f.type === 0x7), `no GOAWAY (${authority})`);
    assert.equal(given.length, 1);
  }
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
  const state = await sendRaw(socketPath, [PREFACE, SETTINGS, SETTINGS_ACK, good, data, ...bombFrames(3, 200_000)]);
  assert.ok(state === 'closed' || state === 'open');
  assert.equal(await versionAnswers(socketPath), true);
});

test('a bomb on a rewritten connection (old Go client authority) cuts that connection only', async (t) => {
  const socketPath = await startVersionServer(t);
  const good = frame(0x1, 0x4, 1, requestBlock(socketPath));
  const data = frame(0x0, 0x1, 1, Buffer.from([0, 0, 0, 0, 0]));
  assert.equal(await sendRaw(socketPath, [PREFACE, SETTINGS, SETTINGS_ACK, good, data, ...bombFrames(3, 200_000)]), 'closed');
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
