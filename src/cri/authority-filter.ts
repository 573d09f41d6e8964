// Go gRPC clients before grpc-go 1.5x (crictl and critest 1.26 among them) send the unix
// socket's path as the HTTP/2 :authority of every call. Node's HTTP/2 server (nghttp2) rejects
// that value as malformed and resets the stream, so those clients could not talk to crisp at
// all. Each connection therefore passes through this filter: frames from the client are
// forwarded untouched, except header blocks, which are decoded and written out again with an
// invalid :authority replaced by "localhost" (what newer gRPC clients send over unix sockets).
//
// A client sends the same :authority on every stream of a connection, so the first header
// block decides: when it needs no fix, it and every later byte go through untouched and
// unparsed (the common case, kubelet and newer crictl, costs nothing per frame), and the HTTP/2
// server's own HPACK state follows the client's exactly. Only a connection whose first block
// needed the fix has its blocks decoded and rewritten from then on.
//
// What this filter decodes, it bounds: a header block may buffer at most MAX_BLOCK_BYTES before
// END_HEADERS and decode to at most MAX_HEADER_LIST_BYTES (RFC 7540's header list size: name +
// value + 32 per field), so a few bytes of indexed fields cannot expand into megabytes. A client
// past either bound loses its connection; every other connection is untouched. Past the first
// block, Node's HTTP/2 server enforces its own limits (maxHeaderListPairs, maxHeaderListSize).
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { HpackDecoder, encodeLiterals, type HeaderField } from './hpack.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
// The smallest SETTINGS_MAX_FRAME_SIZE a peer may advertise; Node's server uses it.
const MAX_PAYLOAD = 16_384;
const AUTHORITY = /^[A-Za-z0-9\-._~%!$&'()*+,;=:@[\]]*$/;
const MAX_BLOCK_BYTES = 64 * 1024;
const MAX_HEADER_LIST_BYTES = 64 * 1024;

interface PendingBlock {
  streamId: number;
  flags: number;
  priority: Buffer | null;
  fragments: Buffer[];
  size: number;
  /** The frames as received, forwarded as they are if the block needs no fix. */
  raw: Buffer[];
}

type Mode = 'deciding' | 'passthrough' | 'rewrite';

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

/** A socket as the HTTP/2 server sees it, with the client's header blocks rewritten. */
export class AuthorityFilter extends Duplex {
  private buffered: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private pending: PendingBlock | null = null;
  private readonly decoder = new HpackDecoder();
  private mode: Mode = 'deciding';

  constructor(private readonly socket: Socket) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.fromClient(chunk);
      } catch (err) {
        this.destroy(err as Error);
      }
    });
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

  private fromClient(chunk: Buffer): void {
    if (this.mode === 'passthrough') return this.forward(chunk);
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    if (!this.prefaceSeen) {
      if (this.buffered.length < PREFACE.length) return;
      this.forward(this.buffered.subarray(0, PREFACE.length));
      this.buffered = this.buffered.subarray(PREFACE.length);
      this.prefaceSeen = true;
    }
    while (this.buffered.length >= FRAME_HEADER) {
      if ((this.mode as Mode) === 'passthrough') {
        const rest = this.buffered;
        this.buffered = Buffer.alloc(0);
        return this.forward(rest);
      }
      const length = this.buffered.readUIntBE(0, 3);
      // The server never raises SETTINGS_MAX_FRAME_SIZE above 16 KiB, so a larger frame is a
      // protocol error anyway; refusing it before buffering keeps a client from making this
      // filter hold up to 16 MB per connection.
      if (length > MAX_PAYLOAD) throw new Error(`HTTP/2: a ${length}-byte frame is larger than the ${MAX_PAYLOAD} bytes allowed`);
      if (this.buffered.length < FRAME_HEADER + length) return;
      const raw = this.buffered.subarray(0, FRAME_HEADER + length);
      this.buffered = this.buffered.subarray(FRAME_HEADER + length);
      const type = raw[3]!;
      if (type === HEADERS || type === CONTINUATION) this.headerFrame(type, raw[4]!, raw.readUInt32BE(5) & 0x7fffffff, raw);
      else if (this.pending) throw new Error('HTTP/2: a frame interrupted a header block (CONTINUATION expected)');
      else this.forward(Buffer.from(raw));
    }
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
        priority = Buffer.from(body.subarray(0, 5));
        body = body.subarray(5);
      }
      if (padding > body.length) throw new Error('HTTP/2: HEADERS padding longer than the frame');
      const fragment = Buffer.from(body.subarray(0, body.length - padding));
      this.pending = { streamId, flags, priority, fragments: [fragment], size: fragment.length, raw: [Buffer.from(raw)] };
    } else {
      if (!this.pending || this.pending.streamId !== streamId) throw new Error('HTTP/2: CONTINUATION without a header block');
      this.pending.fragments.push(Buffer.from(payload));
      this.pending.raw.push(Buffer.from(raw));
      this.pending.size += payload.length;
    }
    if (this.pending.size > MAX_BLOCK_BYTES) throw new Error(`HTTP/2: a header block longer than ${MAX_BLOCK_BYTES} bytes`);
    if (flags & END_HEADERS) {
      const block = this.pending!;
      this.pending = null;
      this.emitBlock(block);
    }
  }

  private emitBlock(block: PendingBlock): void {
    const fields = this.decoder.decode(Buffer.concat(block.fragments), MAX_HEADER_LIST_BYTES);
    if (this.mode === 'deciding') {
      const fixed = fixAuthority(fields);
      if (fixed.every((f, i) => f === fields[i])) {
        // This client's authority is fine: from now on its bytes go through untouched.
        this.mode = 'passthrough';
        for (const raw of block.raw) this.forward(raw);
        return;
      }
      this.mode = 'rewrite';
    }
    const encoded = encodeLiterals(fixAuthority(fields));
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
