// The WebSocket flavours of the streaming protocols: every binary message starts with a
// channel byte. remotecommand: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5 adds
// channel 255, whose message [255, n] says "channel n is closed" (how stdin EOF travels).
// Port-forward (v4.channel.k8s.io): for the i-th port of the URL, channel 2i carries data
// and 2i+1 errors, and each channel's first message from the server is the port, as two
// little-endian bytes.
import { PassThrough, Writable, type Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { ResizeDecoder, outcomeStatus, outcomeText, type ClientChannels, type Outcome } from './remote-command.js';
import type { PortDialer } from './port-forward.js';
import type { StdioWanted } from './requests.js';

export const WS_COMMAND_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;
export const WS_PORT_FORWARD_PROTOCOLS = ['v4.channel.k8s.io'] as const;

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
const CLOSE = 255;
/** Above this many unsent bytes, writers wait for the socket. */
const WS_HIGH_WATER = 1024 * 1024;

function wsVersion(protocol: string): number {
  return protocol === 'channel.k8s.io' ? 1 : Number(protocol[1]);
}

/** Sends on one channel; the callback waits for the socket when it backs up. */
function channelWriter(ws: WebSocket, channel: number, onEnd?: () => void): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      if (ws.readyState !== ws.OPEN) return done();
      const frame = Buffer.concat([Buffer.from([channel]), chunk]);
      if (ws.bufferedAmount < WS_HIGH_WATER) {
        ws.send(frame, () => undefined);
        done();
      } else {
        ws.send(frame, () => done());
      }
    },
    final(done) {
      onEnd?.();
      done();
    },
  });
}

export function wsCommandChannels(ws: WebSocket, wanted: StdioWanted, cmd: string[] | undefined, log: Logger): ClientChannels {
  const version = wsVersion(ws.protocol);
  const stdin = wanted.stdin ? new PassThrough() : null;
  const resizes = wanted.tty ? new ResizeDecoder() : null;
  const gone = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  void gone.then(() => stdin?.end());
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary || data.length === 0) return;
    const body = data.subarray(1);
    switch (data[0]) {
      case STDIN:
        if (body.length > 0 && stdin && !stdin.writableEnded) stdin.write(body);
        break;
      case RESIZE:
        resizes?.push(body);
        break;
      case CLOSE:
        if (version >= 5 && body[0] === STDIN) stdin?.end();
        break;
      default:
        log.debug({ channel: data[0] }, 'websocket message on an unexpected channel');
    }
  });
  const closeSignal = (channel: number) => () => {
    if (version >= 5 && ws.readyState === ws.OPEN) ws.send(Buffer.from([CLOSE, channel]));
  };
  return {
    stdin,
    stdout: wanted.stdout ? channelWriter(ws, STDOUT, closeSignal(STDOUT)) : null,
    stderr: wanted.stderr && !wanted.tty ? channelWriter(ws, STDERR, closeSignal(STDERR)) : null,
    resizes,
    gone,
    async finish(outcome: Outcome) {
      const message = version >= 4 ? JSON.stringify(outcomeStatus(outcome, cmd)) : outcomeText(outcome, cmd);
      if (ws.readyState !== ws.OPEN) return;
      if (message) await new Promise<void>((resolve) => ws.send(Buffer.concat([Buffer.from([ERROR]), Buffer.from(message)]), () => resolve()));
      ws.close(1000);
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000).unref())]);
      ws.terminate();
    },
  };
}

function portHeader(port: number, channel: number): Buffer {
  const b = Buffer.alloc(3);
  b[0] = channel;
  b.writeUInt16LE(port, 1);
  return b;
}

/** One TCP connection per port named in the URL, for as long as the WebSocket lives. */
export function serveWsPortForward(ws: WebSocket, ports: number[], dial: PortDialer, log: Logger): void {
  const conns: (Duplex | null)[] = ports.map(() => null);
  const pendingInput: Buffer[][] = ports.map(() => []);
  ws.on('close', () => conns.forEach((c) => c?.destroy()));
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary || data.length === 0) return;
    const channel = data[0]!;
    const index = channel >> 1;
    if (channel % 2 !== 0 || index >= ports.length) return;
    const conn = conns[index];
    if (conn) conn.write(data.subarray(1));
    else pendingInput[index]!.push(data.subarray(1));
  });
  ports.forEach((port, index) => {
    ws.send(portHeader(port, index * 2));
    ws.send(portHeader(port, index * 2 + 1));
    dial(port).then(
      (conn) => {
        if (ws.readyState !== ws.OPEN) return void conn.destroy();
        conns[index] = conn;
        for (const chunk of pendingInput[index]!.splice(0)) conn.write(chunk);
        conn.pipe(channelWriter(ws, index * 2));
        conn.once('end', () => {
          // the pod closed this port's connection; with one connection per WebSocket, it ends
          if (conns.every((c) => c === null || c.readableEnded)) ws.close(1000);
        });
        conn.once('error', (err) => log.debug({ err, port }, 'port-forward connection error'));
      },
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([index * 2 + 1]), Buffer.from(message)]));
        log.info({ port, error: message }, 'port-forward connection failed');
      },
    );
  });
}
