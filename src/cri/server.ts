import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { fullPackageDefinition, imageServiceDefinition, messageTypesOf, prepareCodecs, runtimeServiceDefinition } from './proto.js';
import { serverStream, unary, type StreamHandler, type UnaryHandler, type WrapDeps } from './wrap.js';
import { CrispError, unimplemented } from '../errors.js';
import { openConnection } from './connection-opening.js';
import { addLazyReflection } from './reflection.js';
import { HealthService } from './health.js';
import { encodeListsOnce } from './list-encoding.js';

type AnyHandler = UnaryHandler<any, any> | StreamHandler<any, any>;
export type HandlerTable = Partial<Record<string, AnyHandler>>;

export interface CriServerOptions extends WrapDeps {
  socketPath: string;
  runtime: HandlerTable;
  image: HandlerTable;
}

export interface CriServer {
  server: grpc.Server;
  health: HealthService;
  /** Stops accepting, lets calls in flight finish for up to `graceMs`, then cuts the rest. */
  shutdown(graceMs: number): Promise<void>;
}

const SERVICE_NAMES = ['runtime.v1.RuntimeService', 'runtime.v1.ImageService'];
/** What kubelet calls to start a pod's sandbox and containers. */
const POD_START_METHODS = ['RunPodSandbox', 'CreateContainer', 'StartContainer'];

function implement(definition: grpc.ServiceDefinition, table: HandlerTable, deps: WrapDeps): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const handler = table[name] ?? (() => {
      // Never a fake success: an RPC whose issue has not landed says so.
      throw unimplemented(`${name} is not implemented by this crisp release`);
    });
    impl[name] = method.responseStream
      ? serverStream(name, deps, handler as StreamHandler<unknown, unknown>)
      : unary(name, deps, handler as UnaryHandler<unknown, unknown>);
  }
  return impl;
}

/** A socket file that answers is another live server; one that refuses is left over from a crash. */
async function claimSocket(path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) {
    throw new CrispError('FailedPrecondition', `${path} exists and is not a socket; refusing to replace it`);
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new CrispError('FailedPrecondition', `another server is already listening on ${path}`);
  unlinkSync(path);
}

export async function startCriServer(options: CriServerOptions): Promise<CriServer> {
  const deps: WrapDeps = { logger: options.logger, readiness: options.readiness, observe: options.observe, ...(options.tracer && { tracer: options.tracer }) };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.max_send_message_length': 16 * 1024 * 1024,
    // channelz counts every call and message and stamps each with the time, for a channelz
    // service crisp does not serve; the RPC metrics (crisp_rpc_*) already count calls.
    'grpc.enable_channelz': 0,
  });
  const runtimeService = encodeListsOnce(runtimeServiceDefinition, { ListPodSandbox: 'items', ListContainers: 'containers' });
  const imageService = encodeListsOnce(imageServiceDefinition, { ListImages: 'images' });
  server.addService(runtimeService, implement(runtimeService, options.runtime, deps));
  server.addService(imageService, implement(imageService, options.image, deps));

  const health = new HealthService(Object.fromEntries(['', ...SERVICE_NAMES].map((s) => [s, 'NOT_SERVING' as const])));
  health.addToServer(server);
  options.readiness.onChange((ready) => {
    for (const s of ['', ...SERVICE_NAMES]) health.setStatus(s, ready ? 'SERVING' : 'NOT_SERVING');
  });
  addLazyReflection(server, fullPackageDefinition);

  await claimSocket(options.socketPath);
  // Connections are accepted here and handed to gRPC once their opening is read, rather than
  // gRPC binding the socket itself: see connection-opening.ts for why.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  // Sockets whose opening is still being read are not gRPC's yet: shutdown closes them itself.
  const opening = new Set<Socket>();
  const listener = createServer((socket) => {
    opening.add(socket);
    socket.once('close', () => opening.delete(socket));
    openConnection(socket, (stream) => {
      opening.delete(socket);
      injector.injectConnection(stream);
    });
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.socketPath, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  chmodSync(options.socketPath, 0o660);
  options.logger.info({ socket: options.socketPath }, 'CRI server listening');
  // The messages of a pod's start are the largest kubelet sends, and their codecs would be
  // generated during the first pod's calls: generated now instead, while the node is quiet.
  // Only a head start: should it fail, the codecs are still made on first use.
  prepareCodecs(messageTypesOf(POD_START_METHODS)).catch((err: unknown) =>
    options.logger.warn({ err }, 'preparing the codecs of a pod start failed; they are made on first use'),
  );

  return {
    server,
    health,
    shutdown: (graceMs) =>
      new Promise<void>((resolve) => {
        listener.close();
        for (const socket of opening) socket.destroy();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }).finally(() => {
        if (existsSync(options.socketPath)) unlinkSync(options.socketPath);
      }),
  };
}
