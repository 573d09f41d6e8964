// Go gRPC clients before grpc-go 1.5x (crictl and critest 1.26 among them) send the unix
// socket's path as the HTTP/2 :authority of every call. Node's HTTP/2 server (nghttp2) rejects
// that value as malformed and resets the stream, so those clients could not talk to crisp at
// all. So every connection's opening is read here before the HTTP/2 server sees it.
//
// A client sends the same :authority on every stream of a connection, so its first header block
// decides. When it needs no fix (kubelet, newer crictl) the HTTP/2 server gets the socket itself:
// the bytes read so far are put back and, from then on, nghttp2 reads and writes the socket
// natively, with no JavaScript per frame. (A JavaScript stream under HTTP/2 costs CPU on every
// chunk, and Node reports each of its writes done only on the next event-loop turn, so under load
// a reply's trailers left one busy turn after its message.) Only a connection whose first block
// needs the fix is served through AuthorityFilter, which decodes every header block and writes it
// out again with an invalid :authority replaced by "localhost" (what newer gRPC clients send over
// unix sockets).
//
// A gRPC client waits for the server's SETTINGS before its first request, and the HTTP/2 server
// is not attached yet, so the opening sends an empty SETTINGS frame of its own and removes the
// client's acknowledgement of it from the bytes the server will read (the server acknowledges
// nothing it did not send). The server's own SETTINGS follow once it is attached.
//
// What this reads, it bounds: a header block may buffer at most MAX_BLOCK_BYTES before
// END_HEADERS and decode to at most MAX_HEADER_LIST_BYTES (RFC 7540's header list size: name +
// value + 32 per field), so a few bytes of indexed fields cannot expand into megabytes; an
// opening holds at most MAX_OPENING_BYTES. (It has no time limit: a gRPC client may connect
// and stay quiet until its first call, and the opening holds no more than an idle connection.)
// A client past any bound loses its connection; every other connection is untouched. On a
// connection handed over, Node's HTTP/2 server enforces its own limits (maxHeaderListPairs,
// maxHeaderListSize).
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { HpackDecoder, encodeLiterals, type HeaderField } from './hpack.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;
const HEADERS = 0x1;
const SETTINGS = 0x4;
const CONTINUATION = 0x9;
const ACK = 0x1;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
// The smallest SETTINGS_MAX_FRAME_SIZE a peer may advertise; Node's server uses it.
const MAX_PAYLOAD = 16_384;
const AUTHORITY = /^[A-Za-z0-9\-._~%!$&'()*+,;=:@[\]]*$/;
const MAX_BLOCK_BYTES = 64 * 1024;
const MAX_HEADER_LIST_BYTES = 64 * 1024;
const MAX_OPENING_BYTES = 256 * 1024;

export function fixAuthority(fields: HeaderField[]): HeaderField[] {
  return fields.map((f) => (f.name === ':authority' && !AUTHORITY.test(f.value) ? { ...f, value: 'localhost' } : f));
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(FRAME_HEADER);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

const EMPTY_SETTINGS = frame(SETTINGS, 0, 0, Buffer.alloc(0));

interface HeaderBlock {
  streamId: number;
  flags: number;
  priority: Buffer | null;
  fragments: Buffer[];
  size: number;
  /** The frames as received. */
  raw: Buffer[];
}

interface FrameSink {
  preface(raw: Buffer): void;
  /** A frame outside any header block. */
  frame(type: number, flags: number, raw: Buffer): void;
  /** A complete header block (HEADERS and its CONTINUATIONs). */
  block(block: HeaderBlock): void;
}

/**
 * Cuts a client's bytes into its preface, frames and header blocks, within the bounds above;
 * throws on a client that breaks them or the framing rules. `stop()` ends the reading and returns
 * the bytes not yet given to the sink.
 */
class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private pending: HeaderBlock | null = null;
  private stopped = false;

  constructor(private readonly sink: FrameSink) {}

  push(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    if (!this.prefaceSeen) {
      if (this.buffered.length < PREFACE.length) return;
      if (!this.buffered.subarray(0, PREFACE.length).equals(PREFACE)) throw new Error('HTTP/2: the connection did not open with the client preface');
      this.prefaceSeen = true;
      const raw = this.buffered.subarray(0, PREFACE.length);
      this.buffered = this.buffered.subarray(PREFACE.length);
      this.sink.preface(raw);
    }
    while (!this.stopped && this.buffered.length >= FRAME_HEADER) {
      const length = this.buffered.readUIntBE(0, 3);
      // The server never raises SETTINGS_MAX_FRAME_SIZE above 16 KiB, so a larger frame is a
      // protocol error anyway; refusing it before buffering keeps a client from making this
      // reader hold up to 16 MB per connection.
      if (length > MAX_PAYLOAD) throw new Error(`HTTP/2: a ${length}-byte frame is larger than the ${MAX_PAYLOAD} bytes allowed`);
      if (this.buffered.length < FRAME_HEADER + length) return;
      const raw = Buffer.from(this.buffered.subarray(0, FRAME_HEADER + length));
      this.buffered = this.buffered.subarray(FRAME_HEADER + length);
      const type = raw[3]!;
      if (type === HEADERS || type === CONTINUATION) this.headerFrame(type, raw[4]!, raw.readUInt32BE(5) & 0x7fffffff, raw);
      else if (this.pending) throw new Error('HTTP/2: a frame interrupted a header block (CONTINUATION expected)');
      else this.sink.frame(type, raw[4]!, raw);
    }
  }

  stop(): Buffer {
    this.stopped = true;
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return rest;
  }

  private headerFrame(type: number, flags: number, streamId: number, raw: Buffer): void {
    const payload = raw.subarray(FRAME_HEADER);
    if (type === HEADERS) {
      if (this.pending) throw new Error('HTTP/2: HEADERS inside an unfinished header block');
      let body = payload;
      let padding = 0;
      if (flags & PADDED) {
        padding = body[0] ?? 0;
        body = body.subarray(1);
      }
      let priority: Buffer | null = null;
      if (flags & PRIORITY) {
        priority = body.subarray(0, 5);
        body = body.subarray(5);
      }
      if (padding > body.length) throw new Error('HTTP/2: HEADERS padding longer than the frame');
      const fragment = body.subarray(0, body.length - padding);
      this.pending = { streamId, flags, priority, fragments: [fragment], size: fragment.length, raw: [raw] };
    } else {
      if (!this.pending || this.pending.streamId !== streamId) throw new Error('HTTP/2: CONTINUATION without a header block');
      this.pending.fragments.push(payload);
      this.pending.raw.push(raw);
      this.pending.size += payload.length;
    }
    if (this.pending.size > MAX_BLOCK_BYTES) throw new Error(`HTTP/2: a header block longer than ${MAX_BLOCK_BYTES} bytes`);
    if (flags & END_HEADERS) {
      const block = this.pending;
      this.pending = null;
      this.sink.block(block);
    }
  }
}

const decodeBlock = (decoder: HpackDecoder, block: HeaderBlock) => decoder.decode(Buffer.concat(block.fragments), MAX_HEADER_LIST_BYTES);

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
      verdict = decodeBlock(decoder, block).some((f) => f.name === ':authority' && !AUTHORITY.test(f.value)) ? 'fix' : 'as-is';
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

/**
 * A socket as the HTTP/2 server sees it, with the client's header blocks rewritten. It starts
 * from the opening `openConnection` read (from the preface on), and drops the client's
 * acknowledgement of the opening's SETTINGS if that had not arrived yet.
 */
export class AuthorityFilter extends Duplex {
  private readonly decoder = new HpackDecoder();
  private readonly reader: FrameReader;

  constructor(private readonly socket: Socket, opening: Buffer, private ackPending: boolean) {
    super({ allowHalfOpen: false });
    this.reader = new FrameReader({
      preface: (raw) => this.forward(raw),
      frame: (type, flags, raw) => {
        if (type === SETTINGS && flags & ACK && this.ackPending) this.ackPending = false;
        else this.forward(raw);
      },
      block: (block) => this.rewrite(block),
    });
    const read = (chunk: Buffer) => {
      try {
        this.reader.push(chunk);
      } catch (err) {
        this.destroy(err as Error);
      }
    };
    read(opening);
    socket.on('data', read);
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  // Stream plumbing: server → client bytes go straight to the socket. The HTTP/2 session writes
  // a reply as several small frames (headers, data, trailers) in one tick; corked for that tick,
  // they leave in one system call rather than one each, as they would from a native socket.
  private corked = false;
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    // Done as soon as the socket takes it (or, when it pushes back, once it drains): waiting for
    // each write to complete would let only one frame into the cork at a time.
    if (this.socket.write(chunk)) callback();
    else this.socket.once('drain', () => callback());
  }
  override _final(callback: (err?: Error | null) => void): void {
    this.socket.end(callback);
  }
  override _read(): void {
    this.socket.resume();
  }
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined);
    callback(err);
  }
  // What HTTP/2 sessions ask of their socket.
  get remoteAddress() {
    return this.socket.remoteAddress;
  }
  setNoDelay(noDelay?: boolean) {
    this.socket.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, delay?: number) {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }
  setTimeout(ms: number, callback?: () => void) {
    this.socket.setTimeout(ms, callback);
    return this;
  }

  private forward(bytes: Buffer): void {
    if (!this.push(bytes)) this.socket.pause();
  }

  private rewrite(block: HeaderBlock): void {
    const encoded = encodeLiterals(fixAuthority(decodeBlock(this.decoder, block)));
    const first = MAX_PAYLOAD - (block.priority ? 5 : 0);
    const head = encoded.subarray(0, first);
    let rest = encoded.subarray(first);
    const flags = (block.flags & (END_STREAM | PRIORITY)) | (rest.length === 0 ? END_HEADERS : 0);
    this.forward(frame(HEADERS, flags, block.streamId, block.priority ? Buffer.concat([block.priority, head]) : head));
    while (rest.length > 0) {
      const piece = rest.subarray(0, MAX_PAYLOAD);
      rest = rest.subarray(MAX_PAYLOAD);
      this.forward(frame(CONTINUATION, rest.length === 0 ? END_HEADERS : 0, block.streamId, piece));
    }
  }
}
