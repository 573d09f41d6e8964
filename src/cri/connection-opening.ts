// Every connection to the CRI socket is read here before the HTTP/2 server sees it, because of
// old Go gRPC clients (grpc-go before 1.5x: crictl and critest 1.26 among them), which send the
// unix socket's path as the :authority of every call. Node's HTTP/2 server (nghttp2) rejects that
// value as malformed and resets the stream, so those clients could not talk to crisp at all.
//
// A client sends the same :authority on every stream of a connection, so its first header block
// decides. When it needs no fix (kubelet, newer crictl) the HTTP/2 server gets the socket itself:
// the bytes read so far are put back and, from then on, nghttp2 reads and writes the socket
// natively, with no JavaScript per frame. (A JavaScript stream under HTTP/2 costs CPU on every
// chunk, and Node reports each of its writes done only on the next event-loop turn, so under load
// a reply's trailers left one busy turn after its message.) Only a connection whose first block
// needs the fix is served through AuthorityFilter (authority-filter.ts).
//
// A gRPC client waits for the server's SETTINGS before its first request, and the HTTP/2 server
// is not attached yet, so the opening sends an empty SETTINGS frame of its own and removes the
// client's acknowledgement of it from the bytes the server will read (the server acknowledges
// nothing it did not send). The server's own SETTINGS follow once it is attached.
//
// The opening reads frames within http2-frames.ts's bounds and holds at most MAX_OPENING_BYTES.
// It has no time limit: a gRPC client may connect and stay quiet until its first call, and the
// opening holds no more than an idle connection. A client past any bound loses its connection;
// every other connection is untouched. On a connection handed over, Node's HTTP/2 server enforces
// its own limits (maxHeaderListPairs, maxHeaderListSize).
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { HpackDecoder } from './hpack.js';
import { ACK, FrameReader, SETTINGS, decodeBlock, frame } from './http2-frames.js';
import { AuthorityFilter, needsFix } from './authority-filter.js';

const MAX_OPENING_BYTES = 256 * 1024;
const EMPTY_SETTINGS = frame(SETTINGS, 0, 0, Buffer.alloc(0));

/**
 * Reads a new connection's opening and gives `serve` what the HTTP/2 server should read: the
 * socket itself, its opening put back, when the first request's :authority is fine; an
 * AuthorityFilter over it when it is not. A client that breaks the bounds loses its connection.
 */
export function openConnection(socket: Socket, serve: (stream: Socket | Duplex) => void): void {
  const held: Buffer[] = [];
  let heldBytes = 0;
  let acknowledged = false;
  let verdict: 'as-is' | 'fix' | undefined;
  const decoder = new HpackDecoder();
  const hold = (raw: Buffer) => {
    held.push(raw);
    heldBytes += raw.length;
    if (heldBytes > MAX_OPENING_BYTES) throw new Error(`HTTP/2: an opening longer than ${MAX_OPENING_BYTES} bytes before the first request`);
  };
  const reader = new FrameReader({
    preface: hold,
    frame: (type, flags, raw) => {
      // The acknowledgement of the opening's own SETTINGS: the server must not see it.
      if (type === SETTINGS && flags & ACK && !acknowledged) acknowledged = true;
      else hold(raw);
    },
    block: (block) => {
      block.raw.forEach(hold);
      verdict = needsFix(decodeBlock(decoder, block)) ? 'fix' : 'as-is';
    },
  });
  const end = (cut?: boolean) => {
    socket.off('data', onData);
    socket.off('error', onGone);
    socket.off('close', onGone);
    if (cut) socket.destroy();
  };
  const onGone = () => end();
  function onData(chunk: Buffer) {
    try {
      reader.push(chunk);
    } catch {
      // A client that breaks the framing rules or the bounds loses its connection; it has no
      // stream to be told why on.
      return end(true);
    }
    if (verdict === 'fix') {
      end();
      serve(new AuthorityFilter(socket, Buffer.concat([...held, reader.stop()]), !acknowledged));
    } else if (verdict === 'as-is' && acknowledged) {
      end();
      socket.pause();
      socket.unshift(Buffer.concat([...held, reader.stop()]));
      serve(socket);
    }
  }
  socket.on('data', onData);
  socket.on('error', onGone);
  socket.on('close', onGone);
  socket.write(EMPTY_SETTINGS);
}
