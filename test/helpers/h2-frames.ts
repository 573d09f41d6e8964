// Raw HTTP/2 frames for hostile-client tests: header blocks written by hand (HPACK literals), the
// header-list bomb of issue 15, and a raw sender that reports whether the server cut the
// connection.
import { connect as netConnect } from 'node:net';
import { connect as h2connect } from 'node:http2';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(type: number, flags: number, streamId: number, payload: Buffer, declaredLength = payload.length): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(declaredLength, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

const literal = (name: string, value: string, indexing: boolean) =>
  Buffer.concat([Buffer.from([indexing ? 0x40 : 0x00]), encodeLength(name.length), Buffer.from(name), encodeLength(value.length), Buffer.from(value)]);

function encodeLength(n: number): Buffer {
  if (n < 127) return Buffer.from([n]);
  const out = [127];
  n -= 127;
  while (n >= 128) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

export function requestBlock(authority: string): Buffer {
  return Buffer.concat([
    literal(':method', 'POST', false), literal(':scheme', 'http', false), literal(':path', '/runtime.v1.RuntimeService/Version', false),
    literal(':authority', authority, false), literal('content-type', 'application/grpc', false), literal('te', 'trailers', false),
  ]);
}

/** One stored 4 KB header, then `refs` one-byte references to it: ~200 KB that decode to ~800 MB. */
export function bombFrames(streamId: number, refs: number): Buffer[] {
  const block = Buffer.concat([literal('x-bomb', 'b'.repeat(4000), true), Buffer.alloc(refs, 0xbe)]);
  const frames: Buffer[] = [];
  for (let at = 0; at < block.length; at += 16_384) {
    const last = at + 16_384 >= block.length;
    frames.push(frame(at === 0 ? 0x1 : 0x9, last ? 0x4 | 0x1 : 0, streamId, block.subarray(at, at + 16_384)));
  }
  return frames;
}

/** Sends raw bytes on a fresh connection; resolves when the server closes it (or after 3 s). */
export function sendRaw(socketPath: string, chunks: Buffer[]): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const socket = netConnect(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('open');
    }, 3000);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
    socket.on('connect', () => {
      for (const c of chunks) socket.write(c);
    });
  });
}

export async function versionAnswers(socketPath: string, authority = 'localhost'): Promise<boolean> {
  const session = h2connect('http://localhost', { createConnection: () => netConnect(socketPath) });
  try {
    const request = session.request({
      ':method': 'POST', ':path': '/runtime.v1.RuntimeService/Version', ':authority': authority, 'content-type': 'application/grpc', te: 'trailers',
    });
    request.end(Buffer.from([0, 0, 0, 0, 0]));
    request.on('data', () => undefined);
    const trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      request.on('trailers', resolve);
      request.on('error', reject);
    });
    return trailers['grpc-status'] === '0';
  } finally {
    session.close();
  }
}

export const SETTINGS = frame(0x4, 0, 0, Buffer.alloc(0));

export const SETTINGS_ACK = frame(0x4, 0x1, 0, Buffer.alloc(0));

/** A raw connection that collects the server's frames as they arrive. */
export function rawConnection(socketPath: string) {
  const socket = netConnect(socketPath);
  const frames: { type: number; flags: number; streamId: number; payload: Buffer }[] = [];
  let buffered = Buffer.alloc(0);
  let waiters: (() => void)[] = [];
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 9 && buffered.length >= 9 + buffered.readUIntBE(0, 3)) {
      const length = buffered.readUIntBE(0, 3);
      frames.push({ type: buffered[3]!, flags: buffered[4]!, streamId: buffered.readUInt32BE(5) & 0x7fffffff, payload: buffered.subarray(9, 9 + length) });
      buffered = buffered.subarray(9 + length);
    }
    waiters.forEach((w) => w());
  });
  return {
    frames,
    write: (...chunks: Buffer[]) => chunks.forEach((c) => socket.write(c)),
    /** Resolves once a frame matching `match` has arrived, or rejects after `ms`. */
    waitFor(match: (f: (typeof frames)[number]) => boolean, ms = 3000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!frames.some(match)) return;
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== check);
          resolve();
        };
        const timer = setTimeout(() => reject(new Error('the frame did not arrive')), ms);
        waiters.push(check);
        check();
      });
    },
    close: () => socket.destroy(),
  };
}
