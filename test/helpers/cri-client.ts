import * as grpc from '@grpc/grpc-js';
import { fullPackageDefinition } from '../../src/cri/proto.js';
import type { ProtoGrpcType } from '../../src/cri/proto/gen/api.js';
import type { RuntimeServiceClient } from '../../src/cri/proto/gen/runtime/v1/RuntimeService.js';
import type { ImageServiceClient } from '../../src/cri/proto/gen/runtime/v1/ImageService.js';

export interface CriClients {
  runtime: RuntimeServiceClient;
  image: ImageServiceClient;
  close(): void;
}

const criProto = grpc.loadPackageDefinition(fullPackageDefinition()) as unknown as ProtoGrpcType;

/** Real gRPC clients over the unix socket, as kubelet and crictl connect. */
export function criClients(socketPath: string): CriClients {
  const address = `unix://${socketPath}`;
  const runtime = new criProto.runtime.v1.RuntimeService(address, grpc.credentials.createInsecure());
  const image = new criProto.runtime.v1.ImageService(address, grpc.credentials.createInsecure());
  return { runtime, image, close: () => (runtime.close(), image.close()) };
}

// Generated client methods are overloaded; inference reads the last overload, (request, callback).
type UnaryMethod<Req, Res> = (request: Req, callback: (err: grpc.ServiceError | null, res?: Res) => void) => unknown;

/** Calls one unary RPC and resolves with its response or rejects with the gRPC error. */
export function call<Req, Res>(client: grpc.Client, method: UnaryMethod<Req, Res>, request: Req, timeoutMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const withOptions = method as unknown as (r: Req, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown;
    withOptions.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}
