// The streaming server kubelet hands its clients to: Exec, Attach and PortForward answer
// with a URL here carrying a single-use token, and the client upgrades that URL to SPDY/3.1
// or WebSocket. A request without a live token gets 404 and starts nothing.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { messageOf } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { StreamedProcess } from './exec-process.js';
import { PORT_FORWARD_PROTOCOL, serveSpdyPortForward, type PortDialer } from './port-forward.js';
import { serveCommand, type ClientChannels } from './remote-command.js';
import type { AttachSpec, ExecSpec, PortForwardSpec, StreamSpec } from './requests.js';
import { SPDY_COMMAND_PROTOCOLS, acceptSpdyCommand, type CommandProtocol } from './spdy-remote-command.js';
import { TOKEN_TTL_MS, TokenCache } from './tokens.js';
import { WS_COMMAND_PROTOCOLS, WS_PORT_FORWARD_PROTOCOLS, serveWsPortForward, wsCommandChannels } from './ws-channels.js';

/** What the server runs once a client has connected: the node-facing half. */
export interface StreamingBackend {
  exec(spec: ExecSpec): Promise<StreamedProcess>;
  attach(spec: AttachSpec): Promise<StreamedProcess>;
  dialer(spec: PortForwardSpec): PortDialer;
}

export interface StreamingServerOptions {
  address: string;
  /** 0 picks a free port. */
  port: number;
  backend: StreamingBackend;
  logger?: Logger;
  tokenTtlMs?: number;
}

const PATH = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,64})$/;

/** The client's offered protocols, header lines and comma lists flattened, in its order. */
function offeredProtocols(req: IncomingMessage, header: string): string[] {
  return (req.headersDistinct[header] ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

/** The first protocol the client offers that the server speaks (Kubernetes' negotiation). */
export function negotiate<T extends string>(offered: string[], supported: readonly T[]): T | undefined {
  return offered.find((p): p is T => (supported as readonly string[]).includes(p));
}

function refuse(socket: Duplex, status: number, reason: string, message: string): void {
  const body = `${message}\n`;
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export class StreamingServer {
  private readonly http: Server;
  /** Made by the first WebSocket session: `ws` and what it loads cost the daemon's start-up RSS otherwise. */
  private wss: Promise<WebSocketServer> | undefined;
  private readonly tokens: TokenCache<StreamSpec>;
  private readonly sockets = new Set<Socket>();
  private readonly logger: Logger;
  private bound?: AddressInfo;

  constructor(private readonly o: StreamingServerOptions) {
    this.logger = (o.logger ?? silentLogger).child({ component: 'streaming' });
    this.tokens = new TokenCache(o.tokenTtlMs ?? TOKEN_TTL_MS);
    this.http = createServer((req, res) => {
      // only upgrades carry streams; a plain request neither uses nor spends a token
      const known = PATH.test(new URL(req.url ?? '/', 'http://x').pathname);
      res.writeHead(known ? 400 : 404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(known ? 'this URL needs an upgrade to SPDY/3.1 or websocket\n' : 'not found\n');
    });
    this.http.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgrade(req, socket, head).catch((err: unknown) => {
        this.logger.warn({ err }, 'streaming session failed');
        socket.destroy();
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.o.port, this.o.address, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    this.bound = this.http.address() as AddressInfo;
    this.logger.info({ url: this.baseUrl }, 'streaming server listening');
  }

  get baseUrl(): string {
    if (!this.bound) throw new Error('the streaming server is not listening');
    const host = this.bound.family === 'IPv6' ? `[${this.bound.address}]` : this.bound.address;
    return `http://${host}:${this.bound.port}`;
  }

  /** Stores a validated request; the URL returned redeems it once, within the token's lifetime. */
  issue(spec: StreamSpec): string {
    return `${this.baseUrl}/${spec.kind}/${this.tokens.insert(spec)}`;
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    if (this.wss) for (const ws of (await this.wss).clients) ws.terminate();
    await closed;
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://x');
    const match = PATH.exec(url.pathname);
    const spec = match ? this.tokens.consume(match[2]!) : undefined;
    if (!match || !spec || spec.kind !== match[1]) return refuse(socket, 404, 'Not Found', 'unknown or expired streaming token');
    const log = this.logger.child({ kind: spec.kind, ...('containerId' in spec ? { container: spec.containerId } : { sandbox: spec.sandboxId }) });
    const upgradeTo = (req.headers.upgrade ?? '').toLowerCase();
    if (upgradeTo === 'websocket') return this.websocket(req, socket, head, spec, url, log);
    if (upgradeTo !== 'spdy/3.1') return refuse(socket, 400, 'Bad Request', `cannot upgrade to ${JSON.stringify(req.headers.upgrade ?? '')}; use SPDY/3.1 or websocket`);

    const offered = offeredProtocols(req, 'x-stream-protocol-version');
    let protocol: string | undefined;
    if (spec.kind === 'portforward') {
      protocol = offered.length === 0 ? PORT_FORWARD_PROTOCOL : negotiate(offered, [PORT_FORWARD_PROTOCOL]);
    } else {
      protocol = offered.length === 0 ? 'channel.k8s.io' : negotiate(offered, SPDY_COMMAND_PROTOCOLS);
    }
    if (!protocol) {
      return refuse(socket, 403, 'Forbidden', `none of the offered protocols ${JSON.stringify(offered)} is supported`);
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);
    if (head.length > 0) socket.unshift(head);
    log.info({ protocol }, 'streaming session started');
    if (spec.kind === 'portforward') {
      serveSpdyPortForward(socket, this.o.backend.dialer(spec), log);
      return;
    }
    const channels = await acceptSpdyCommand(socket, protocol as CommandProtocol, spec, spec.kind === 'exec' ? spec.cmd : undefined, log);
    await this.run(spec, channels, log);
  }

  private async websocket(req: IncomingMessage, socket: Duplex, head: Buffer, spec: StreamSpec, url: URL, log: Logger): Promise<void> {
    const supported = spec.kind === 'portforward' ? WS_PORT_FORWARD_PROTOCOLS : WS_COMMAND_PROTOCOLS;
    const offered = offeredProtocols(req, 'sec-websocket-protocol');
    const protocol = negotiate(offered, supported);
    if (!protocol) return refuse(socket, 400, 'Bad Request', `offer one of the websocket protocols ${supported.join(', ')}`);
    // A WebSocket client sends nothing before the handshake's answer, so the import can wait.
    this.wss ??= import('ws').then(({ WebSocketServer }) => new WebSocketServer({ noServer: true, perMessageDeflate: false }));
    (await this.wss).handleUpgrade(req, socket, head, (ws: WebSocket) => {
      log.info({ protocol: ws.protocol }, 'streaming session started (websocket)');
      ws.on('error', (err) => log.debug({ err }, 'websocket error'));
      if (spec.kind === 'portforward') {
        const fromUrl = url.searchParams.getAll('port').flatMap((p) => p.split(',')).map((p) => Number(p.trim()));
        const ports = fromUrl.length > 0 ? fromUrl : spec.ports;
        const bad = ports.find((p) => !Number.isInteger(p) || p < 1 || p > 65535);
        if (ports.length === 0 || bad !== undefined) {
          ws.close(1008, ports.length === 0 ? 'port: name at least one port' : `port: ${bad} is not a TCP port`);
          return;
        }
        serveWsPortForward(ws, ports, this.o.backend.dialer(spec), log);
        return;
      }
      const channels = wsCommandChannels(ws, spec, spec.kind === 'exec' ? spec.cmd : undefined, log);
      this.run(spec, channels, log).catch((err: unknown) => {
        log.warn({ err }, 'streaming session failed');
        ws.terminate();
      });
    });
  }

  private async run(spec: ExecSpec | AttachSpec, channels: ClientChannels, log: Logger): Promise<void> {
    let proc: StreamedProcess;
    try {
      proc = spec.kind === 'exec' ? await this.o.backend.exec(spec) : await this.o.backend.attach(spec);
    } catch (err) {
      await channels.finish({ error: messageOf(err) });
      return;
    }
    const began = Date.now();
    const outcome = await serveCommand(channels, proc, log);
    log.info({ ...outcome, ms: Date.now() - began }, 'streaming session ended');
  }
}
