// gRPC server reflection (grpcurl, and crictl's debugging friends), loaded and built on first use.
// The reflection library turns the whole CRI package into file descriptors when it is
// constructed (~250 ms of start-up and ~20 MB of RSS), and merely loading it brings
// @grpc/proto-loader and protobufjs's descriptor types (with the health package crisp no longer
// uses, ~0.7 MiB of the daemon's fresh RSS) for a service almost nobody calls. So the methods are registered at start with definitions written here — the
// two versions' one bidirectional method, by path — and the first call, or the first message
// to decode or encode, loads the library and makes the real instance; every codec and handler
// then is the library's own.
import { createRequire } from 'node:module';
import type * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import type { ReflectionService } from '@grpc/reflection';

const require = createRequire(import.meta.url);

const SERVICES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];
const METHOD = 'ServerReflectionInfo';

type Real = { method: grpc.MethodDefinition<unknown, unknown>; handler: grpc.UntypedHandleCall };

/** The library's method definitions and handlers, by method path. */
function realMethods(service: ReflectionService): Map<string, Real> {
  const byPath = new Map<string, Real>();
  const recorder = {
    addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) {
      for (const [name, method] of Object.entries(definition)) byPath.set(method.path, { method, handler: implementation[name]! });
    },
  };
  service.addToServer(recorder as unknown as grpc.Server);
  return byPath;
}

/** `packageDefinition` is called by the first reflection call, as the library needs the whole package then. */
export function addLazyReflection(server: grpc.Server, packageDefinition: () => PackageDefinition): void {
  let real: Map<string, Real> | undefined;
  const load = (path: string): Real => {
    real ??= realMethods(new (require('@grpc/reflection') as typeof import('@grpc/reflection')).ReflectionService(packageDefinition()));
    const found = real.get(path);
    if (!found) throw new Error(`the reflection library serves no ${path}`);
    return found;
  };
  for (const service of SERVICES) {
    const path = `/${service}/${METHOD}`;
    const method: grpc.MethodDefinition<unknown, unknown> = {
      path,
      requestStream: true,
      responseStream: true,
      requestSerialize: (value) => load(path).method.requestSerialize(value),
      requestDeserialize: (bytes) => load(path).method.requestDeserialize(bytes),
      responseSerialize: (value) => load(path).method.responseSerialize(value),
      responseDeserialize: (bytes) => load(path).method.responseDeserialize(bytes),
      originalName: 'serverReflectionInfo',
    };
    const handler = ((call: grpc.ServerDuplexStream<unknown, unknown>) =>
      (load(path).handler as grpc.handleBidiStreamingCall<unknown, unknown>)(call)) as grpc.UntypedHandleCall;
    server.addService({ [METHOD]: method }, { [METHOD]: handler });
  }
}
