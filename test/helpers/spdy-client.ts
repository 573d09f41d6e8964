// The client side of the streaming protocols over SPDY/3.1, as client-go speaks them: the
// HTTP upgrade with protocol negotiation, then streams this side opens and waits replies
// for. Used by the tests and the benchmark to drive the server over real sockets.
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import {
  FrameSplitter,
  HeaderCompressor,
  HeaderDecompressor,
  decodeFrame,
  encodeDataFrame,
  encodeFrame,
  encodeSimpleFrame,
  type SpdyFrame,
  type SpdyHeaders,
} from '../../src/streaming/spdy-frames.js';

export interface ClientStream {
  id: number;
  /** What the server sends; ends at its FIN or a reset. */
  data: PassThrough;
  write(chunk: Buffer | string): void;
  /** Half-closes this side (FIN). */
  end(): void;
  reset: boolean;
}

export class SpdyClient {
  private readonly splitter = new FrameSplitter();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private readonly streams = new Map<number, ClientStream>();
  private readonly replies = new Map<number, (ok: boolean) => void>();
  private nextId = 1;
  private inbound: Promise<void> = Promise.resolve();
  private outbound: Promise<void> = Promise.resolve();
  goAway = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket, readonly protocol: string) {
    socket.on('data', (chunk: Buffer) => {
      for (const raw of this.splitter.push(chunk)) this.inbound = this.inbound.then(() => this.handle(raw)).catch(() => void socket.destroy());
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => {
      for (const s of this.streams.values()) s.data.end();
      for (const r of this.replies.values()) r(false);
      this.compressor.close();
      this.decompressor.close();
      resolve();
    }));
  }

  /** Upgrades `url`; rejects with the status and body when the server refuses. */
  static connect(url: string, protocols: string[], method = 'POST'): Promise<SpdyClient> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | string[]> = { Connection: 'Upgrade', Upgrade: 'SPDY/3.1' };
      if (protocols.length) headers['X-Stream-Protocol-Version'] = protocols;
      const req = request(url, { method, headers });
      req.once('upgrade', (res, socket, head) => {
        const client = new SpdyClient(socket, String(res.headers['x-stream-protocol-version'] ?? ''));
        if (head.length) socket.unshift(head);
        resolve(client);
      });
      req.once('response', (res) => {
        let body = '';
        res.on('data', (b: Buffer) => (body += b.toString()));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body.trim()}`), { statusCode: res.statusCode })));
      });
      req.once('error', reject);
      req.end();
    });
  }

  private async handle(raw: ReturnType<FrameSplitter['push']>[number]): Promise<void> {
    const frame = await decodeFrame(raw, this.decompressor);
    if (!frame) return;
    if (frame.type === 'synReply') this.replies.get(frame.streamId)?.(true);
    else if (frame.type === 'data') {
      const s = this.streams.get(frame.streamId);
      if (s && frame.data.length) s.data.write(frame.data);
      if (s && frame.fin) s.data.end();
    } else if (frame.type === 'rstStream') {
      const s = this.streams.get(frame.streamId);
      if (s) {
        s.reset = true;
        s.data.end();
      }
      this.replies.get(frame.streamId)?.(false);
    } else if (frame.type === 'goAway') this.goAway = true;
    else if (frame.type === 'ping') this.send(frame);
  }

  private send(frame: SpdyFrame): void {
    this.outbound = this.outbound.then(async () => {
      const bytes = frame.type === 'data' ? encodeDataFrame(frame.streamId, frame.data, frame.fin)
        : frame.type === 'synStream' || frame.type === 'synReply' || frame.type === 'headers' ? await encodeFrame(frame, this.compressor)
        : encodeSimpleFrame(frame);
      if (!this.socket.destroyed) this.socket.write(bytes);
    });
  }

  /** Opens a stream with these headers and waits for the server's reply (as client-go does). */
  async open(headers: Record<string, string>, timeoutMs = 10_000): Promise<ClientStream> {
    const id = this.nextId;
    this.nextId += 2;
    const block: SpdyHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), [v]]));
    const stream: ClientStream = {
      id,
      data: new PassThrough(),
      reset: false,
      write: (chunk) => this.send({ type: 'data', streamId: id, fin: false, data: Buffer.from(chunk) }),
      end: () => this.send({ type: 'data', streamId: id, fin: true, data: Buffer.alloc(0) }),
    };
    this.streams.set(id, stream);
    const replied = new Promise<boolean>((resolve) => {
      this.replies.set(id, resolve);
      setTimeout(() => resolve(false), timeoutMs).unref();
    });
    this.send({ type: 'synStream', streamId: id, associatedId: 0, priority: 0, fin: false, unidirectional: false, headers: block });
    if (!(await replied)) throw new Error(`stream ${JSON.stringify(headers)} was not accepted`);
    this.replies.delete(id);
    return stream;
  }

  ping(id: number): void {
    this.send({ type: 'ping', id });
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Everything a stream delivers until its end. */
export function collect(stream: ClientStream): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    stream.data.on('data', (b: Buffer) => parts.push(b));
    stream.data.once('end', () => resolve(Buffer.concat(parts)));
  });
}
