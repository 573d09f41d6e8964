import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import type { ProtoGrpcType } from './proto/gen/api.js';
import { PROTO_PATH } from '../paths.js';

// Field names as the proto spells them; int64 as decimal strings (nanosecond times overflow
// a double); enums by name; defaults filled in so readers never meet undefined scalars.
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const packageDefinition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
export const criProto = grpc.loadPackageDefinition(packageDefinition) as unknown as ProtoGrpcType;

export const runtimeServiceDefinition = criProto.runtime.v1.RuntimeService.service;
export const imageServiceDefinition = criProto.runtime.v1.ImageService.service;
