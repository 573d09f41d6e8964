// Old Go gRPC clients (crictl and critest 1.26) send the unix socket's path as the HTTP/2
// :authority, which Node's HTTP/2 server refuses (see connection-opening.ts). Their connections
// pass through AuthorityFilter, which decodes every header block and writes it out again with an
// invalid :authority replaced by "localhost" (what newer gRPC clients send over unix sockets).
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { HpackDecoder, encodeLiterals, type HeaderField } from './hpack.js';
import { ACK, CONTINUATION, END_HEADERS, END_STREAM, FrameReader, HEADERS, MAX_PAYLOAD, PRIORITY, SETTINGS, decodeBlock, frame, type HeaderBlock } from './http2-frames.js';

const AUTHORITY = /^[A-Za-z0-9\-._~%!$&'()*+,;=:@[\]]*$/;

const invalid = (f: HeaderField) => f.name === ':authority' && !AUTHORITY.test(f.value);

/** Whether a header block's :authority is one Node's HTTP/2 server would refuse. */
export function needsFix(fields: HeaderField[]): boolean {
  return fields.some(invalid);
}

export function fixAuthority(fields: HeaderField[]): HeaderField[] {
  return fields.map((f) => (invalid(f) ? { ...f, value: 'localhost' } : f));
}

/**
 * A socket as the HTTP/2 server sees it, with the client's header blocks rewritten. It starts
 * from the bytes `openConnection` read (from the preface on), and drops the client's
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
