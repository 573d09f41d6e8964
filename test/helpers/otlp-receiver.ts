// An OTLP/HTTP trace receiver on loopback for tests: decodes each export request with the
// OpenTelemetry protocol's own message definitions (the subset of opentelemetry-proto's
// trace/v1, common/v1 and resource/v1 that traces use, field numbers as upstream) and keeps
// the spans it got.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

const OTLP_TRACE_PROTO = `
syntax = "proto3";
package opentelemetry.proto;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; fixed32 flags = 16;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10; Status status = 15;
}
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; bytes bytes_value = 7; } }
`;

const ExportTraceServiceRequest = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: true }).root.lookupType('opentelemetry.proto.ExportTraceServiceRequest');

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string>;
  status: { code: number; message: string };
  service: string;
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  stop(): Promise<void>;
}

type Decoded = {
  resource_spans?: { resource?: { attributes?: { key: string; value?: Record<string, unknown> }[] }; scope_spans?: { spans?: Record<string, unknown>[] }[] }[];
};

const hex = (b: unknown) => Buffer.from((b as Uint8Array | undefined) ?? []).toString('hex');
const text = (v: Record<string, unknown> | undefined) => String(v?.['string_value'] ?? v?.['int_value'] ?? v?.['bool_value'] ?? v?.['double_value'] ?? '');

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/x-protobuf') {
        res.writeHead(415).end();
        return;
      }
      const message = ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(Buffer.concat(chunks)), { longs: String, defaults: true }) as Decoded;
      for (const rs of message.resource_spans ?? []) {
        const service = text(rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value);
        for (const ss of rs.scope_spans ?? []) {
          for (const s of ss.spans ?? []) {
            const attributes = Object.fromEntries(((s['attributes'] ?? []) as { key: string; value?: Record<string, unknown> }[]).map((a) => [a.key, text(a.value)]));
            const status = (s['status'] ?? {}) as { code?: number; message?: string };
            spans.push({
              traceId: hex(s['trace_id']), spanId: hex(s['span_id']), parentSpanId: hex(s['parent_span_id']), name: String(s['name']),
              startNs: BigInt(String(s['start_time_unix_nano'])), endNs: BigInt(String(s['end_time_unix_nano'])),
              attributes, status: { code: status.code ?? 0, message: status.message ?? '' }, service,
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1/traces`, spans, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}
