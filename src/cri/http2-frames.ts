// HTTP/2 as the CRI socket's opening and the authority filter read it: the client's preface,
// frames and header blocks (HEADERS and their CONTINUATIONs), within bounds. A header block may
// buffer at most MAX_BLOCK_BYTES before END_HEADERS and decode to at most MAX_HEADER_LIST_BYTES
// (RFC 7540's header list size: name + value + 32 per field), so a few bytes of indexed fields
// cannot expand into megabytes; a frame may carry at most MAX_PAYLOAD bytes.
import { HpackDecoder } from './hpack.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;
export const HEADERS = 0x1;
export const SETTINGS = 0x4;
export const CONTINUATION = 0x9;
export const ACK = 0x1;
export const END_STREAM = 0x1;
export const END_HEADERS = 0x4;
const PADDED = 0x8;
export const PRIORITY = 0x20;
// The smallest SETTINGS_MAX_FRAME_SIZE a peer may advertise; Node's server uses it.
export const MAX_PAYLOAD = 16_384;
const MAX_BLOCK_BYTES = 64 * 1024;
const MAX_HEADER_LIST_BYTES = 64 * 1024;

export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(FRAME_HEADER);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

export interface HeaderBlock {
  streamId: number;
  flags: number;
  priority: Buffer | null;
  fragments: Buffer[];
  size: number;
  /** The frames as received. */
  raw: Buffer[];
}

export interface FrameSink {
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
export class FrameReader {
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

export const decodeBlock = (decoder: HpackDecoder, block: HeaderBlock) => decoder.decode(Buffer.concat(block.fragments), MAX_HEADER_LIST_BYTES);
