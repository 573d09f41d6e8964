// SPDY/3.1 framing (the protocol kubelet's streaming clients speak after an HTTP upgrade):
// frame encoding and decoding, and the zlib-compressed header blocks. Pure apart from zlib,
// which is asynchronous in Node: header frames are encoded and decoded through one zlib
// stream per direction, in order, because each side's header blocks form a single deflate
// stream primed with the SPDY/3 dictionary and sync-flushed at every frame.
import { constants as zc, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';
import { SPDY3_DICTIONARY } from './spdy-dictionary.js';

const SPDY_VERSION = 3;
const MAX_FRAME_LENGTH = 0xffffff;
/** A header block larger than this (uncompressed) is a protocol error, not an allocation. */
const MAX_HEADER_BLOCK = 256 * 1024;

const FrameType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9,
} as const;

const FLAG_FIN = 0x01;
const FLAG_UNIDIRECTIONAL = 0x02;

export const RstStatus = {
  ProtocolError: 1,
  InvalidStream: 2,
  RefusedStream: 3,
  UnsupportedVersion: 4,
  Cancel: 5,
  InternalError: 6,
  FlowControlError: 7,
  StreamInUse: 8,
  StreamAlreadyClosed: 9,
  FrameTooLarge: 11,
} as const;

/** Header names are lowercase on the wire; a name may carry several values. */
export type SpdyHeaders = Record<string, string[]>;

export type SpdyFrame =
  | { type: 'data'; streamId: number; fin: boolean; data: Buffer }
  | { type: 'synStream'; streamId: number; associatedId: number; priority: number; fin: boolean; unidirectional: boolean; headers: SpdyHeaders }
  | { type: 'synReply'; streamId: number; fin: boolean; headers: SpdyHeaders }
  | { type: 'rstStream'; streamId: number; status: number }
  | { type: 'settings'; clear: boolean; entries: { flags: number; id: number; value: number }[] }
  | { type: 'ping'; id: number }
  | { type: 'goAway'; lastGoodStreamId: number; status: number }
  | { type: 'headers'; streamId: number; fin: boolean; headers: SpdyHeaders }
  | { type: 'windowUpdate'; streamId: number; delta: number };

export class SpdyProtocolError extends Error {
  constructor(message: string, readonly streamId = 0) {
    super(message);
    this.name = 'SpdyProtocolError';
  }
}

/** One frame as cut from the byte stream, before any header block is inflated. */
export interface RawFrame {
  control: boolean;
  /** Control frames: the frame type; data frames: the stream id. */
  typeOrStream: number;
  version: number;
  flags: number;
  payload: Buffer;
}

/** Cuts a byte stream into frames; keeps the partial tail for the next chunk. */
export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): RawFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: RawFrame[] = [];
    while (this.pending.length >= 8) {
      const length = this.pending.readUIntBE(5, 3);
      if (this.pending.length < 8 + length) break;
      const first = this.pending.readUInt32BE(0);
      const control = (first & 0x80000000) !== 0;
      frames.push({
        control,
        typeOrStream: control ? first & 0xffff : first & 0x7fffffff,
        version: control ? (first >>> 16) & 0x7fff : SPDY_VERSION,
        flags: this.pending[4]!,
        payload: this.pending.subarray(8, 8 + length),
      });
      this.pending = this.pending.subarray(8 + length);
    }
    return frames;
  }

  get buffered(): number {
    return this.pending.length;
  }
}

// ---- header blocks -----------------------------------------------------------------------

export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [u32(entries.length)];
  for (const [name, values] of entries) {
    if (name !== name.toLowerCase() || name.length === 0) throw new SpdyProtocolError(`header name ${JSON.stringify(name)} must be non-empty lowercase`);
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(values.join('\0'), 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  const headers: SpdyHeaders = {};
  let at = 0;
  const read = (what: string): Buffer => {
    if (at + 4 > block.length) throw new SpdyProtocolError(`header block truncated in ${what}`);
    const length = block.readUInt32BE(at);
    at += 4;
    if (at + length > block.length) throw new SpdyProtocolError(`header block truncated in ${what}`);
    const bytes = block.subarray(at, at + length);
    at += length;
    return bytes;
  };
  if (block.length < 4) throw new SpdyProtocolError('header block truncated in its count');
  const count = block.readUInt32BE(0);
  at = 4;
  for (let i = 0; i < count; i++) {
    const name = read('a name').toString('utf8');
    const value = read(`the value of ${JSON.stringify(name)}`).toString('utf8');
    if (name.length === 0) throw new SpdyProtocolError('header block holds an empty header name');
    if (name !== name.toLowerCase()) throw new SpdyProtocolError(`header name ${JSON.stringify(name)} is not lowercase`);
    if (headers[name]) throw new SpdyProtocolError(`header ${JSON.stringify(name)} appears twice`);
    headers[name] = value.split('\0');
  }
  if (at !== block.length) throw new SpdyProtocolError(`header block has ${block.length - at} bytes after its ${count} headers`);
  return headers;
}

/** One direction's zlib stream: every call is sync-flushed and answered in call order. */
class ZlibChannel {
  private chain: Promise<unknown> = Promise.resolve();
  private out: Buffer[] = [];
  private outBytes = 0;
  private failure: Error | undefined;

  constructor(private readonly z: Deflate | Inflate, private readonly limit: number) {
    z.on('readable', () => this.drain());
    z.on('error', (err) => (this.failure = err));
  }

  private drain(): void {
    for (let chunk: Buffer | null; (chunk = this.z.read() as Buffer | null) !== null; ) {
      this.out.push(chunk);
      this.outBytes += chunk.length;
    }
  }

  process(input: Buffer): Promise<Buffer> {
    const run = () =>
      new Promise<Buffer>((resolve, reject) => {
        const failed = (err: Error) => reject(new SpdyProtocolError(`header block cannot be (de)compressed: ${err.message}`));
        if (this.failure) return failed(this.failure);
        // a corrupt block errors the stream, and the flush callback may then never come
        this.z.once('error', failed);
        this.z.write(input);
        this.z.flush(zc.Z_SYNC_FLUSH, () => {
          this.z.off('error', failed);
          this.drain();
          const result = Buffer.concat(this.out, this.outBytes);
          this.out = [];
          this.outBytes = 0;
          if (this.failure) failed(this.failure);
          else if (result.length > this.limit) reject(new SpdyProtocolError(`header block of ${result.length} bytes exceeds ${this.limit}`));
          else resolve(result);
        });
      });
    const result = this.chain.then(run);
    this.chain = result.catch(() => undefined);
    return result;
  }

  close(): void {
    this.z.close();
  }
}

/** Compresses this side's header blocks (one deflate stream per connection). */
export class HeaderCompressor {
  private readonly channel = new ZlibChannel(createDeflate({ dictionary: SPDY3_DICTIONARY, level: zc.Z_DEFAULT_COMPRESSION }), MAX_FRAME_LENGTH);
  compress(headers: SpdyHeaders): Promise<Buffer> {
    return this.channel.process(encodeHeaderBlock(headers));
  }
  close(): void {
    this.channel.close();
  }
}

/** Inflates the peer's header blocks (its one deflate stream). */
export class HeaderDecompressor {
  private readonly channel = new ZlibChannel(createInflate({ dictionary: SPDY3_DICTIONARY }), MAX_HEADER_BLOCK);
  async decompress(block: Buffer): Promise<SpdyHeaders> {
    return decodeHeaderBlock(await this.channel.process(block));
  }
  close(): void {
    this.channel.close();
  }
}

// ---- frames ------------------------------------------------------------------------------

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_LENGTH) throw new SpdyProtocolError(`frame payload of ${payload.length} bytes is too large`);
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head[4] = flags;
  head.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([head, payload]);
}

function streamIdOk(id: number, what: string): void {
  if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw new SpdyProtocolError(`${what} ${id} is not a 31-bit stream id`);
}

export function encodeDataFrame(streamId: number, data: Buffer, fin = false): Buffer {
  streamIdOk(streamId, 'data frame stream');
  if (streamId === 0) throw new SpdyProtocolError('data frames need a stream id other than 0');
  if (data.length > MAX_FRAME_LENGTH) throw new SpdyProtocolError(`data frame of ${data.length} bytes is too large`);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId, 0);
  head[4] = fin ? FLAG_FIN : 0;
  head.writeUIntBE(data.length, 5, 3);
  return Buffer.concat([head, data]);
}

/** Encodes any frame; header-carrying frames go through the connection's compressor. */
export async function encodeFrame(frame: SpdyFrame, compressor: HeaderCompressor): Promise<Buffer> {
  switch (frame.type) {
    case 'data':
      return encodeDataFrame(frame.streamId, frame.data, frame.fin);
    case 'synStream': {
      streamIdOk(frame.streamId, 'SYN_STREAM stream');
      const fixed = Buffer.alloc(10);
      fixed.writeUInt32BE(frame.streamId, 0);
      fixed.writeUInt32BE(frame.associatedId, 4);
      fixed[8] = (frame.priority & 0x7) << 5;
      fixed[9] = 0;
      const flags = (frame.fin ? FLAG_FIN : 0) | (frame.unidirectional ? FLAG_UNIDIRECTIONAL : 0);
      return controlFrame(FrameType.SynStream, flags, Buffer.concat([fixed, await compressor.compress(frame.headers)]));
    }
    case 'synReply':
    case 'headers': {
      streamIdOk(frame.streamId, 'stream');
      const type = frame.type === 'synReply' ? FrameType.SynReply : FrameType.Headers;
      return controlFrame(type, frame.fin ? FLAG_FIN : 0, Buffer.concat([u32(frame.streamId), await compressor.compress(frame.headers)]));
    }
    default:
      return encodeSimpleFrame(frame);
  }
}

/** The control frames without header blocks: synchronous. */
export function encodeSimpleFrame(frame: Extract<SpdyFrame, { type: 'rstStream' | 'settings' | 'ping' | 'goAway' | 'windowUpdate' }>): Buffer {
  switch (frame.type) {
    case 'rstStream':
      streamIdOk(frame.streamId, 'RST_STREAM stream');
      return controlFrame(FrameType.RstStream, 0, Buffer.concat([u32(frame.streamId), u32(frame.status)]));
    case 'settings': {
      const parts = [u32(frame.entries.length)];
      for (const e of frame.entries) {
        const entry = Buffer.alloc(8);
        entry[0] = e.flags;
        entry.writeUIntBE(e.id, 1, 3);
        entry.writeUInt32BE(e.value >>> 0, 4);
        parts.push(entry);
      }
      return controlFrame(FrameType.Settings, frame.clear ? 1 : 0, Buffer.concat(parts));
    }
    case 'ping':
      return controlFrame(FrameType.Ping, 0, u32(frame.id));
    case 'goAway':
      streamIdOk(frame.lastGoodStreamId, 'GOAWAY last good stream');
      return controlFrame(FrameType.GoAway, 0, Buffer.concat([u32(frame.lastGoodStreamId), u32(frame.status)]));
    case 'windowUpdate':
      streamIdOk(frame.streamId, 'WINDOW_UPDATE stream');
      if (frame.delta < 1 || frame.delta > 0x7fffffff) throw new SpdyProtocolError(`WINDOW_UPDATE delta ${frame.delta} is out of range`);
      return controlFrame(FrameType.WindowUpdate, 0, Buffer.concat([u32(frame.streamId), u32(frame.delta)]));
  }
}

/**
 * Decodes one raw frame. Unknown control frame types decode to null (SPDY says ignore them);
 * a wrong version or a short payload is a SpdyProtocolError.
 */
export async function decodeFrame(raw: RawFrame, decompressor: HeaderDecompressor): Promise<SpdyFrame | null> {
  if (!raw.control) return { type: 'data', streamId: raw.typeOrStream, fin: (raw.flags & FLAG_FIN) !== 0, data: raw.payload };
  if (raw.version !== SPDY_VERSION) throw new SpdyProtocolError(`SPDY version ${raw.version} is not supported (only 3)`);
  const p = raw.payload;
  const need = (n: number, what: string) => {
    if (p.length < n) throw new SpdyProtocolError(`${what} frame of ${p.length} bytes is too short`);
  };
  const fin = (raw.flags & FLAG_FIN) !== 0;
  switch (raw.typeOrStream) {
    case FrameType.SynStream: {
      need(10, 'SYN_STREAM');
      const streamId = p.readUInt32BE(0) & 0x7fffffff;
      if (streamId === 0) throw new SpdyProtocolError('SYN_STREAM with stream id 0');
      return {
        type: 'synStream',
        streamId,
        associatedId: p.readUInt32BE(4) & 0x7fffffff,
        priority: p[8]! >> 5,
        fin,
        unidirectional: (raw.flags & FLAG_UNIDIRECTIONAL) !== 0,
        headers: await decompressor.decompress(p.subarray(10)),
      };
    }
    case FrameType.SynReply:
    case FrameType.Headers: {
      need(4, raw.typeOrStream === FrameType.SynReply ? 'SYN_REPLY' : 'HEADERS');
      return {
        type: raw.typeOrStream === FrameType.SynReply ? 'synReply' : 'headers',
        streamId: p.readUInt32BE(0) & 0x7fffffff,
        fin,
        headers: await decompressor.decompress(p.subarray(4)),
      };
    }
    case FrameType.RstStream:
      need(8, 'RST_STREAM');
      return { type: 'rstStream', streamId: p.readUInt32BE(0) & 0x7fffffff, status: p.readUInt32BE(4) };
    case FrameType.Settings: {
      need(4, 'SETTINGS');
      const count = p.readUInt32BE(0);
      need(4 + count * 8, 'SETTINGS');
      const entries = [];
      for (let i = 0; i < count; i++) {
        const at = 4 + i * 8;
        entries.push({ flags: p[at]!, id: p.readUIntBE(at + 1, 3), value: p.readUInt32BE(at + 4) });
      }
      return { type: 'settings', clear: (raw.flags & 1) !== 0, entries };
    }
    case FrameType.Ping:
      need(4, 'PING');
      return { type: 'ping', id: p.readUInt32BE(0) };
    case FrameType.GoAway:
      need(4, 'GOAWAY');
      // SPDY/2 peers send no status; treat that as OK
      return { type: 'goAway', lastGoodStreamId: p.readUInt32BE(0) & 0x7fffffff, status: p.length >= 8 ? p.readUInt32BE(4) : 0 };
    case FrameType.WindowUpdate:
      need(8, 'WINDOW_UPDATE');
      return { type: 'windowUpdate', streamId: p.readUInt32BE(0) & 0x7fffffff, delta: p.readUInt32BE(4) & 0x7fffffff };
    default:
      return null;
  }
}
