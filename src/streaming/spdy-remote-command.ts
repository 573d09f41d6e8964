// remotecommand over SPDY (channel.k8s.io v1 to v4): the client opens one stream per channel,
// typed by its `streamtype` header, and this side waits until every channel the request
// asked for has arrived before anything runs, as kubelet does.
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { RstStatus } from './spdy-frames.js';
import { SpdySession, type SpdyStream } from './spdy-session.js';
import { ResizeDecoder, outcomeStatus, outcomeText, type ClientChannels, type Outcome } from './remote-command.js';
import type { StdioWanted } from './requests.js';

/** Newest first: the order this server prefers when a client offers several. */
export const SPDY_COMMAND_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;
export type CommandProtocol = (typeof SPDY_COMMAND_PROTOCOLS)[number];

const STREAM_CREATION_TIMEOUT_MS = 30_000;
/** After the outcome is sent, how long the client may take to hang up before we do. */
const HANGUP_GRACE_MS = 5_000;

function versionOf(protocol: CommandProtocol): number {
  return protocol === 'channel.k8s.io' ? 1 : Number(protocol[1]);
}

/** Which channels the client must open for this request and protocol. */
export function expectedStreams(wanted: StdioWanted, protocol: CommandProtocol): string[] {
  const types = ['error'];
  if (wanted.stdin) types.push('stdin');
  if (wanted.stdout) types.push('stdout');
  if (wanted.stderr && !wanted.tty) types.push('stderr');
  if (wanted.tty && versionOf(protocol) >= 3) types.push('resize');
  return types;
}

export function acceptSpdyCommand(
  socket: Duplex,
  protocol: CommandProtocol,
  wanted: StdioWanted,
  cmd: string[] | undefined,
  log: Logger,
  timeoutMs = STREAM_CREATION_TIMEOUT_MS,
): Promise<ClientChannels> {
  const expected = new Set(expectedStreams(wanted, protocol));
  const streams = new Map<string, SpdyStream>();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`the client opened ${[...streams.keys()].join(', ') || 'no streams'} within ${timeoutMs} ms; expected ${[...expected].join(', ')}`));
    }, timeoutMs);
    const session = new SpdySession(socket, {
      logger: log,
      onStream(stream) {
        const type = stream.header('streamtype') ?? '';
        if (!expected.has(type) || streams.has(type)) {
          stream.resetStream(RstStatus.RefusedStream);
          return;
        }
        stream.reply();
        streams.set(type, stream);
        if (streams.size === expected.size) {
          clearTimeout(timer);
          resolve(channels(session, streams, protocol, cmd));
        }
      },
    });
    session.once('close', () => {
      clearTimeout(timer);
      reject(new Error('the client closed the connection before opening its streams'));
    });
  });
}

function channels(session: SpdySession, streams: Map<string, SpdyStream>, protocol: CommandProtocol, cmd: string[] | undefined): ClientChannels {
  const resize = streams.get('resize');
  let resizes: ResizeDecoder | null = null;
  if (resize) {
    resizes = new ResizeDecoder();
    const decoder = resizes;
    resize.incoming.on('data', (chunk: Buffer) => decoder.push(chunk));
  }
  // the client never writes to these; they only carry our data
  for (const type of ['stdout', 'stderr', 'error']) streams.get(type)?.incoming.resume();
  const gone = new Promise<void>((resolve) => session.once('close', () => resolve()));
  return {
    stdin: streams.get('stdin')?.incoming ?? null,
    stdout: streams.get('stdout')?.outgoing ?? null,
    stderr: streams.get('stderr')?.outgoing ?? null,
    resizes,
    gone,
    async finish(outcome: Outcome) {
      const error = streams.get('error')!;
      const message = versionOf(protocol) >= 4 ? JSON.stringify(outcomeStatus(outcome, cmd)) : outcomeText(outcome, cmd);
      if (message) error.outgoing.write(Buffer.from(message));
      await Promise.all([...streams.values()].map((s) => s.close()));
      await session.close(HANGUP_GRACE_MS);
    },
  };
}
