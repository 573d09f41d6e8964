// The CRI proto, loaded once at start-up, and the two services the daemon serves.
//
// The service definitions are made here from the parsed types rather than by
// @grpc/proto-loader, whose package definition also turns every message into a descriptor
// object (for reflection): ~2.8 MB of the daemon's RSS and ~30 ms of its start-up that only a
// reflection call needs. That call, and the tests' clients, get proto-loader's full package
// from fullPackageDefinition(), made on first use (proto-loader itself is loaded then too). The
// wire behaviour is the same: the same parse option and the same conversion options proto-loader
// is given (and gen:proto's types describe).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as protoLoader from '@grpc/proto-loader';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { statIfPresent } from '../host/files.js';
import { PROTO_JSON_PATH, PROTO_PATH } from '../paths.js';
import { checkSizedEncodable, encodeSized } from './sized-encoder.js';

// Field names as the proto spells them; int64 as decimal strings (nanosecond times overflow
// a double); enums by name; defaults filled in so readers never meet undefined scalars.
const CONVERSION: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true };
const PARSE: protobuf.IParseOptions = { keepCase: true };

/**
 * The CRI proto's types, resolved. From the JSON gen:proto writes when it is at least as new as
 * the .proto (a build), else by parsing the .proto (a checkout not built since it changed): the
 * same types either way (a unit test compares them). Parsing took ~50 ms of start-up against
 * ~25, and its tokenizer's loops were hot enough for V8 to optimise them for a single run.
 */
export function loadCriRoot(protoPath = PROTO_PATH, jsonPath = PROTO_JSON_PATH): protobuf.Root {
  const json = statIfPresent(jsonPath);
  const root = json && json.mtimeMs >= (statIfPresent(protoPath)?.mtimeMs ?? 0)
    ? protobuf.Root.fromJSON(JSON.parse(readFileSync(jsonPath, 'utf8')) as protobuf.INamespace)
    : new protobuf.Root().loadSync(protoPath, PARSE);
  root.resolveAll();
  return root;
}

const root = loadCriRoot();

// The stats responses are kubelet's largest after the relist (every pod and every container,
// every 10 s) and the stats collector builds them in the shape protobufjs encodes as it is: no
// enums (checked below, when the proto is loaded), strings where the proto has strings, int64s as
// numbers or decimal strings, absent messages as null or undefined. They skip fromObject, which
// copied the whole tree into message objects, and every int64 into a Long, before encoding.
const ENCODED_AS_BUILT = new Set([
  'ContainerStatsResponse', 'ListContainerStatsResponse', 'StreamContainerStatsResponse',
  'PodSandboxStatsResponse', 'ListPodSandboxStatsResponse', 'StreamPodSandboxStatsResponse',
]);

/** The first enum field in `type` or any message below it, by its path; undefined when there is none. */
export function enumFieldBelow(type: protobuf.Type, seen = new Set<protobuf.Type>()): string | undefined {
  if (seen.has(type)) return undefined;
  seen.add(type);
  for (const field of type.fieldsArray) {
    const resolved = field.resolve().resolvedType;
    if (resolved instanceof protobuf.Enum) return `${type.name}.${field.name}`;
    if (resolved instanceof protobuf.Type) {
      const below = enumFieldBelow(resolved, seen);
      if (below) return below;
    }
  }
  return undefined;
}

function serializer(type: protobuf.Type): (value: unknown) => Buffer {
  const asBuilt = ENCODED_AS_BUILT.has(type.name);
  const withEnum = asBuilt ? enumFieldBelow(type) : undefined;
  if (withEnum) throw new Error(`${type.name} cannot be encoded as built: ${withEnum} is an enum, which fromObject must convert`);
  // As built, they are measured and written in one Buffer (sized-encoder.ts), not through
  // protobufjs's writer: the same bytes for a fraction of the CPU and garbage.
  if (asBuilt) checkSizedEncodable(type);
  return (value) => {
    if (Array.isArray(value)) throw new Error(`cannot encode an array as a ${type.name}`);
    if (asBuilt) return encodeSized(type, value as object);
    // Under Node protobufjs writes into a Buffer (its BufferWriter): grpc-js takes it as it is.
    return type.encode(type.fromObject(value as Record<string, unknown>)).finish() as Buffer;
  };
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => unknown {
  return (bytes) => type.toObject(type.decode(bytes), CONVERSION);
}

/** A service of the parsed proto as grpc-js wants it: one entry per method, keyed by its proto name. */
function serviceDefinition(name: string): grpc.ServiceDefinition {
  const service = root.lookupService(name);
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methodsArray) {
    const request = method.resolvedRequestType!;
    const response = method.resolvedResponseType!;
    definition[method.name] = {
      path: `/${name}/${method.name}`,
      requestStream: Boolean(method.requestStream),
      responseStream: Boolean(method.responseStream),
      requestSerialize: serializer(request),
      requestDeserialize: deserializer(request),
      responseSerialize: serializer(response),
      responseDeserialize: deserializer(response),
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  return definition as grpc.ServiceDefinition;
}

/**
 * The message types that calls of the named methods (of either service) decode and encode:
 * each method's request and response and every message type below them, each once.
 */
export function messageTypesOf(methodNames: readonly string[]): protobuf.Type[] {
  const seen = new Set<protobuf.Type>();
  // Each type after every type below it (short of a cycle): prepareCodecs then makes one type's
  // code per turn, the ones below it being made already.
  const found: protobuf.Type[] = [];
  const add = (type: protobuf.Type): void => {
    if (seen.has(type)) return;
    seen.add(type);
    for (const field of type.fieldsArray) {
      const resolved = field.resolve().resolvedType;
      if (resolved instanceof protobuf.Type) add(resolved);
    }
    found.push(type);
  };
  const wanted = new Set(methodNames);
  for (const name of SERVICES) {
    for (const method of root.lookupService(name).methodsArray) {
      if (!wanted.has(method.name)) continue;
      wanted.delete(method.name);
      add(method.resolvedRequestType!);
      add(method.resolvedResponseType!);
    }
  }
  if (wanted.size > 0) throw new Error(`no such CRI method: ${[...wanted].join(', ')}`);
  return found;
}

/**
 * Generates the codecs of `types` ahead of their first use, one type per turn of the event
 * loop, so that a call arriving meanwhile waits for one type's code at most. protobufjs
 * otherwise generates a type's encoder, decoder and converters (JavaScript source) the first
 * time a message of it is read or written, and V8 compiles a function the first time it runs:
 * each is run once here on a message with every field set. Decoding a RunPodSandboxRequest first
 * in a fresh process took 6–8 ms, 1.2–1.4 ms after the code was generated, 0.24–0.30 ms once it
 * had run on an empty message and 0.08–0.11 ms once on a full one (later decodes: 0.07–0.2 ms).
 * Resolves when all are made.
 */
export async function prepareCodecs(types: readonly protobuf.Type[]): Promise<void> {
  for (const type of types) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    // Until then its codecs are the prototype's, which generate them on first use.
    if (Object.hasOwn(type, 'decode')) continue;
    type.setup();
    // A message with every field set, so that each field's branch of the generated code and the
    // reader's and writer's routines for its kind (int64s go through long's) have run once too.
    type.toObject(type.decode(type.encode(type.fromObject(sampleMessage(type))).finish()), CONVERSION);
  }
}

const SAMPLE_SCALARS: Record<string, unknown> = {
  double: 1.5, float: 1.5, int32: 1, uint32: 1, sint32: 1, fixed32: 1, sfixed32: 1,
  int64: '1', uint64: '1', sint64: '1', fixed64: '1', sfixed64: '1', bool: true, string: 'x', bytes: 'eA==',
};

function sampleValue(type: string, resolved: protobuf.ReflectionObject | null, path: readonly protobuf.Type[]): unknown {
  if (resolved instanceof protobuf.Enum) return Object.values(resolved.values).find((v) => v !== 0) ?? 0;
  if (resolved instanceof protobuf.Type) return path.includes(resolved) ? undefined : sampleMessage(resolved, path);
  return SAMPLE_SCALARS[type];
}

/**
 * A plain object of `type` with every field set to a value that is not its default (one element
 * for a repeated field, one entry for a map, the first member of a oneof), and every message below
 * it likewise, short of a type already on the way down.
 */
export function sampleMessage(type: protobuf.Type, path: readonly protobuf.Type[] = []): Record<string, unknown> {
  const below = [...path, type];
  const sample: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    if (field.partOf && field.partOf.fieldsArray[0] !== field) continue;
    const value = sampleValue(field.type, field.resolve().resolvedType, below);
    if (value === undefined) continue;
    if (field instanceof protobuf.MapField) sample[field.name] = { [String(SAMPLE_SCALARS[field.keyType])]: value };
    else sample[field.name] = field.repeated ? [value] : value;
  }
  return sample;
}

const SERVICES = ['runtime.v1.RuntimeService', 'runtime.v1.ImageService'] as const;

export const runtimeServiceDefinition = serviceDefinition('runtime.v1.RuntimeService');
export const imageServiceDefinition = serviceDefinition('runtime.v1.ImageService');

let full: protoLoader.PackageDefinition | undefined;

/** proto-loader's package definition of the CRI proto, descriptors included; made on first use. */
export function fullPackageDefinition(): protoLoader.PackageDefinition {
  full ??= (createRequire(import.meta.url)('@grpc/proto-loader') as typeof protoLoader).loadSync(PROTO_PATH, { ...PARSE, ...CONVERSION });
  return full;
}
