// gRPC server reflection (grpcurl, and crictl's debugging friends), built on first use. The
// reflection library turns the whole CRI package into file descriptors when it is constructed:
// ~250 ms of start-up and ~20 MB of the daemon's RSS for a service almost nobody calls. The
// methods are registered at start with the library's own definitions (taken from an instance
// over an empty package, which costs nothing), and the real instance is made by the first call.
import type * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';

type Registered = { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation };

/** What ReflectionService.addToServer registers, captured instead of registered. */
function registrations(service: ReflectionService): Registered[] {
  const captured: Registered[] = [];
  const recorder = {
    addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) {
      captured.push({ definition, implementation });
    },
  };
  service.addToServer(recorder as unknown as grpc.Server);
  return captured;
}

/** Method path (/grpc.reflection.v1.ServerReflection/ServerReflectionInfo) → handler. */
function handlersByPath(service: ReflectionService): Map<string, grpc.UntypedHandleCall> {
  const byPath = new Map<string, grpc.UntypedHandleCall>();
  for (const { definition, implementation } of registrations(service)) {
    for (const [name, method] of Object.entries(definition)) byPath.set(method.path, implementation[name]!);
  }
  return byPath;
}

/** `packageDefinition` is called by the first reflection call, as the library needs the whole package then. */
export function addLazyReflection(server: grpc.Server, packageDefinition: () => PackageDefinition): void {
  let real: Map<string, grpc.UntypedHandleCall> | undefined;
  for (const { definition } of registrations(new ReflectionService({}))) {
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(definition)) {
      implementation[name] = ((call: unknown, callback?: unknown) => {
        real ??= handlersByPath(new ReflectionService(packageDefinition()));
        (real.get(method.path) as (...args: unknown[]) => void)(call, callback);
      }) as grpc.UntypedHandleCall;
    }
    server.addService(definition, implementation);
  }
}
