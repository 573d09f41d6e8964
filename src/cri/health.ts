// The standard gRPC health service (grpc.health.v1.Health) on the CRI socket: Check, Watch and
// List, as grpc_health_probe, Kubernetes' gRPC probes and service managers call them.
//
// Served by crisp itself rather than by the grpc-health-check package, which loads its proto
// through a second copy of @grpc/proto-loader and turns it into file descriptors at start-up:
// with the reflection library (now loaded by reflection's first call), that was ~0.7 MiB of the
// daemon's fresh RSS for four small messages. The messages are declared below with protobufjs,
// which the daemon has loaded for the CRI anyway. Names and field numbers are the wire contract of grpc/health/v1/health.proto; the
// unit test talks to this service through that file, as the package ships it.
import { status as grpcStatus, type Server, type ServerUnaryCall, type ServerWritableStream, type MethodDefinition, type ServiceDefinition, type UntypedServiceImplementation, type sendUnaryData } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

const PACKAGE = 'grpc.health.v1';
const SERVICE = `${PACKAGE}.Health`;

const root = protobuf.Root.fromJSON({
  nested: {
    grpc: { nested: { health: { nested: { v1: { nested: {
      HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
      HealthCheckResponse: {
        fields: { status: { type: 'ServingStatus', id: 1 } },
        nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
      },
      HealthListRequest: { fields: {} },
      HealthListResponse: { fields: { statuses: { keyType: 'string', type: 'HealthCheckResponse', id: 1 } as protobuf.IMapField } },
    } } } } } },
  },
});

const CONVERSION: protobuf.IConversionOptions = { enums: String, defaults: true };

function method<Req, Res>(name: string, request: string, response: string, responseStream: boolean): MethodDefinition<Req, Res> {
  const req = root.lookupType(`${PACKAGE}.${request}`);
  const res = root.lookupType(`${PACKAGE}.${response}`);
  const serialize = (type: protobuf.Type) => (value: unknown) => type.encode(type.fromObject(value as Record<string, unknown>)).finish() as Buffer;
  const deserialize = <T>(type: protobuf.Type) => (bytes: Buffer) => type.toObject(type.decode(bytes), CONVERSION) as T;
  return {
    path: `/${SERVICE}/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: serialize(req),
    requestDeserialize: deserialize<Req>(req),
    responseSerialize: serialize(res),
    responseDeserialize: deserialize<Res>(res),
    originalName: name.charAt(0).toLowerCase() + name.slice(1),
  };
}

interface CheckRequest { service: string }
interface CheckResponse { status: ServingStatus }
interface ListResponse { statuses: Record<string, CheckResponse> }

const definition = {
  Check: method<CheckRequest, CheckResponse>('Check', 'HealthCheckRequest', 'HealthCheckResponse', false),
  Watch: method<CheckRequest, CheckResponse>('Watch', 'HealthCheckRequest', 'HealthCheckResponse', true),
  List: method<object, ListResponse>('List', 'HealthListRequest', 'HealthListResponse', false),
};

/**
 * The serving status of each named service ('' is the server as a whole). A service never named
 * is unknown: Check answers NOT_FOUND, Watch sends SERVICE_UNKNOWN and waits, as the protocol asks.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<(status: ServingStatus) => void>>();

  constructor(initial: Record<string, ServingStatus> = {}) {
    for (const [service, status] of Object.entries(initial)) this.statuses.set(service, status);
  }

  setStatus(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const tell of this.watchers.get(service) ?? []) tell(status);
  }

  addToServer(server: Server): void {
    const implementation: UntypedServiceImplementation = {
      Check: (call: ServerUnaryCall<CheckRequest, CheckResponse>, callback: sendUnaryData<CheckResponse>) => {
        const status = this.statuses.get(call.request.service);
        if (status) callback(null, { status });
        else callback({ code: grpcStatus.NOT_FOUND, details: `no health status for service "${call.request.service}"` });
      },
      Watch: (call: ServerWritableStream<CheckRequest, CheckResponse>) => {
        const service = call.request.service;
        const tell = (status: ServingStatus) => call.write({ status });
        const watching = this.watchers.get(service) ?? this.watchers.set(service, new Set()).get(service)!;
        watching.add(tell);
        const stop = () => {
          watching.delete(tell);
          if (watching.size === 0 && this.watchers.get(service) === watching) this.watchers.delete(service);
        };
        call.once('cancelled', stop);
        call.once('close', stop);
        tell(this.statuses.get(service) ?? 'SERVICE_UNKNOWN');
      },
      List: (_call: ServerUnaryCall<object, ListResponse>, callback: sendUnaryData<ListResponse>) => {
        const statuses: Record<string, CheckResponse> = {};
        for (const [service, status] of this.statuses) statuses[service] = { status };
        callback(null, { statuses });
      },
    };
    server.addService(definition as unknown as ServiceDefinition, implementation);
  }
}
