// Port forwarding: every client connection is one TCP connection to a port on the pod's
// loopback. Over SPDY (portforward.k8s.io) the client opens a pair of streams per
// connection, `error` and `data`, tied by a `requestid` header; over WebSocket
// (v4.channel.k8s.io) each port named in the URL gets a data and an error channel.
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import type { PortForwardSpec } from './requests.js';
import { dialInNetns, type RelayStream } from './relay.js';
import { RstStatus } from './spdy-frames.js';
import { SpdySession, type SpdyStream } from './spdy-session.js';

export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';

/** Opens a TCP connection to `port` inside the pod; rejects with a message naming the port. */
export type PortDialer = (port: number) => Promise<Duplex>;

export function podDialer(spec: PortForwardSpec): PortDialer {
  return (port) => {
    if (spec.ports.length > 0 && !spec.ports.includes(port)) {
      return Promise.reject(new Error(`port ${port} was not among the ports requested (${spec.ports.join(', ')})`));
    }
    if (spec.netns === null) return dialHost(port);
    return dialRelay(dialInNetns(spec.netns, port), port, spec.sandboxId);
  };
}

function dialHost(port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', (err) => reject(new Error(`connecting to port ${port}: ${err.message}`)));
  });
}

async function dialRelay(relay: RelayStream, port: number, sandboxId: string): Promise<Duplex> {
  try {
    await relay.ready;
  } catch (err) {
    throw new Error(`error forwarding port ${port} to pod ${sandboxId}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return relay;
}

/** Wires one client connection to one pod connection, half-closes passing through. */
function splice(client: { incoming: NodeJS.ReadableStream; outgoing: NodeJS.WritableStream }, pod: Duplex, done: () => void): void {
  let ends = 0;
  const finished = () => {
    if (++ends === 2) done();
  };
  client.incoming.pipe(pod);
  pod.pipe(client.outgoing);
  pod.once('end', finished);
  pod.once('error', () => {
    client.outgoing.end();
    finished();
  });
  client.incoming.once('end', finished);
}

export function serveSpdyPortForward(socket: Duplex, dial: PortDialer, log: Logger): SpdySession {
  const pairs = new Map<string, { data?: SpdyStream; error?: SpdyStream }>();
  const conns = new Set<Duplex>();
  const session = new SpdySession(socket, {
    logger: log,
    onStream(stream) {
      const type = stream.header('streamtype');
      const port = Number(stream.header('port'));
      if ((type !== 'data' && type !== 'error') || !Number.isInteger(port) || port < 1 || port > 65535) {
        stream.resetStream(RstStatus.RefusedStream);
        return;
      }
      // clients before requestid paired an error stream with the data stream opened next
      const requestId = stream.header('requestid') ?? String(type === 'data' ? stream.id - 2 : stream.id);
      const pair = pairs.get(requestId) ?? {};
      if (pair[type]) {
        stream.resetStream(RstStatus.ProtocolError);
        return;
      }
      pair[type] = stream;
      pairs.set(requestId, pair);
      stream.reply();
      if (!pair.data || !pair.error) return;
      pairs.delete(requestId);
      const { data, error } = pair as Required<typeof pair>;
      error.incoming.resume();
      dial(port).then(
        (pod) => {
          if (session.closed) return void pod.destroy();
          conns.add(pod);
          data.once('reset', () => pod.destroy());
          splice(data, pod, () => {
            conns.delete(pod);
            void error.close();
          });
        },
        (err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          log.info({ port, error: message }, 'port-forward connection failed');
          error.outgoing.write(Buffer.from(message));
          void error.close();
          void data.close();
        },
      );
    },
  });
  session.once('close', () => {
    for (const pod of conns) pod.destroy();
  });
  return session;
}
