// A protobuf encoder for the messages crisp builds in the shape protobufjs encodes as they are
// (the stats responses, see proto.ts): it measures the message first, then writes it into one
// Buffer of that size. protobufjs's writer queues an operation object per field and a state
// object per nested message and copies them out at the end: for ListPodSandboxStats with 100
// pods (every UInt64Value is a nested message) that was most of the call's CPU and garbage.
//
// The bytes are protobufjs's own, field for field (a unit test compares them on random
// messages of every type it serves): fields in number order; a singular field written when it is
// an own property that is neither undefined nor null, default values included; a repeated one
// when it has elements; a map entry per own key, in Object.keys order; int64s from numbers or
// decimal strings, two's complement when negative.
import protobuf from 'protobufjs';

type Kind = 'message' | 'string' | 'bool' | 'uint32' | 'int32' | 'int64' | 'double' | 'float';

interface FieldPlan {
  name: string;
  /** The field's key (number << 3 | wire type), as written. */
  key: number;
  keySize: number;
  kind: Kind;
  repeated: boolean;
  /** A map<string, string>: one entry message per key. */
  stringMap: boolean;
  message?: MessagePlan;
}

interface MessagePlan {
  fields: FieldPlan[];
}

const WIRE: Record<Kind, number> = { message: 2, string: 2, bool: 0, uint32: 0, int32: 0, int64: 0, double: 1, float: 5 };
const KINDS: Record<string, Kind> = {
  string: 'string', bool: 'bool', uint32: 'uint32', int32: 'int32', int64: 'int64', uint64: 'int64', double: 'double', float: 'float',
};

const plans = new Map<protobuf.Type, MessagePlan>();

/** How `type` and every message below it are written; throws for a field kind it does not write. */
function planOf(type: protobuf.Type): MessagePlan {
  let plan = plans.get(type);
  if (plan) return plan;
  plan = { fields: [] };
  plans.set(type, plan); // before the fields: a message may hold itself
  for (const field of [...type.fieldsArray].sort((a, b) => a.id - b.id)) {
    const resolved = field.resolve().resolvedType;
    const where = `${type.name}.${field.name}`;
    if (field.map && !((field as unknown as protobuf.MapField).keyType === 'string' && field.type === 'string')) throw new Error(`${where}: only map<string, string> is written`);
    if (resolved instanceof protobuf.Enum) throw new Error(`${where} is an enum`);
    if (field.repeated && !(resolved instanceof protobuf.Type) && field.type !== 'string') throw new Error(`${where}: repeated ${field.type} is not written`);
    if (field.delimited) throw new Error(`${where} is a group`);
    const kind: Kind | undefined = field.map ? 'message' : resolved instanceof protobuf.Type ? 'message' : KINDS[field.type];
    if (!kind) throw new Error(`${where}: ${field.type} is not written`);
    const key = ((field.id << 3) | WIRE[kind]) >>> 0;
    plan.fields.push({
      name: field.name, key, keySize: varint32Size(key), kind, repeated: field.repeated && !field.map, stringMap: field.map,
      ...(resolved instanceof protobuf.Type && { message: planOf(resolved) }),
    });
  }
  return plan;
}

/** Throws unless every field of `type` and below is one this encoder writes. */
export function checkSizedEncodable(type: protobuf.Type): void {
  planOf(type);
}

/** Encodes `message` as `type`; the result equals protobufjs's `type.encode(message).finish()`. */
export function encodeSized(type: protobuf.Type, message: object): Buffer {
  const plan = planOf(type);
  const memo: Memo = { lengths: [], longs: [], read: 0, readLong: 0 };
  const size = sizeOf(message as Fields, plan, memo);
  const buf = Buffer.allocUnsafe(size);
  const end = writeMessage(message as Fields, plan, memo, buf, 0);
  if (end !== size) throw new Error(`${type.name}: wrote ${end} bytes of ${size}`);
  return buf;
}

type Fields = Record<string, unknown>;

/**
 * What the measuring pass found and the writing pass reuses, in the order both walk the message:
 * the length of each nested message and string, and each int64 that is not a plain number.
 */
interface Memo {
  lengths: number[];
  longs: bigint[];
  read: number;
  readLong: number;
}

const hasOwn = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);

function varint32Size(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function varint64Size(v: bigint): number {
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

function safeVarintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** An int64 as the 64 bits protobufjs writes: decimal strings parsed, numbers truncated, negatives two's complement. */
function int64Bits(v: unknown): bigint {
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt.asUintN(64, BigInt(Math.trunc(v))) : 0n;
  return BigInt.asUintN(64, BigInt(String(v)));
}

function stringSize(s: string, memo: Memo): number {
  const n = Buffer.byteLength(s);
  memo.lengths.push(n);
  return varint32Size(n) + n;
}

function valueSize(f: FieldPlan, v: unknown, memo: Memo): number {
  switch (f.kind) {
    case 'message': {
      const at = memo.lengths.length;
      memo.lengths.push(0);
      const n = sizeOf(v as Fields, f.message!, memo);
      memo.lengths[at] = n;
      return varint32Size(n) + n;
    }
    case 'string':
      return stringSize(v as string, memo);
    case 'bool':
      return 1;
    case 'uint32':
      return varint32Size((v as number) >>> 0);
    case 'int32':
      return (v as number) < 0 ? 10 : varint32Size((v as number) >>> 0);
    case 'int64':
      if (typeof v === 'number' && v >= 0 && Number.isSafeInteger(v)) return safeVarintSize(v);
      memo.longs.push(int64Bits(v));
      return varint64Size(memo.longs[memo.longs.length - 1]!);
    case 'double':
      return 8;
    case 'float':
      return 4;
  }
}

/**
 * The field's value when it is written, undefined when it is not: the one rule both passes
 * follow (protobufjs's): neither undefined nor null, an own property unless repeated.
 */
function written(m: Fields, f: FieldPlan): unknown {
  const v = m[f.name];
  if (v === undefined || v === null) return undefined;
  return f.repeated || hasOwn(m, f.name) ? v : undefined;
}

function sizeOf(m: Fields, plan: MessagePlan, memo: Memo): number {
  let size = 0;
  for (const f of plan.fields) {
    const v = written(m, f);
    if (v === undefined) continue;
    if (f.stringMap) {
      const map = v as Record<string, string>;
      for (const k of Object.keys(map)) {
        const at = memo.lengths.length;
        memo.lengths.push(0);
        const entry = 1 + stringSize(k, memo) + 1 + stringSize(map[k]!, memo);
        memo.lengths[at] = entry;
        size += f.keySize + varint32Size(entry) + entry;
      }
    } else if (f.repeated) {
      for (const x of v as unknown[]) size += f.keySize + valueSize(f, x, memo);
    } else {
      size += f.keySize + valueSize(f, v, memo);
    }
  }
  return size;
}

function writeVarint32(buf: Buffer, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

function writeString(buf: Buffer, pos: number, s: string, memo: Memo): number {
  const n = memo.lengths[memo.read++]!;
  pos = writeVarint32(buf, pos, n);
  if (n === s.length) {
    // ASCII, the usual case: a loop beats a call into the buffer's encoder for short strings.
    for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i);
    return pos + n;
  }
  return pos + buf.write(s, pos, n, 'utf8');
}

function writeValue(f: FieldPlan, v: unknown, memo: Memo, buf: Buffer, pos: number): number {
  pos = writeVarint32(buf, pos, f.key);
  switch (f.kind) {
    case 'message':
      pos = writeVarint32(buf, pos, memo.lengths[memo.read++]!);
      return writeMessage(v as Fields, f.message!, memo, buf, pos);
    case 'string':
      return writeString(buf, pos, v as string, memo);
    case 'bool':
      buf[pos] = v ? 1 : 0;
      return pos + 1;
    case 'uint32':
      return writeVarint32(buf, pos, (v as number) >>> 0);
    case 'int32':
      if ((v as number) >= 0) return writeVarint32(buf, pos, (v as number) >>> 0);
      return writeLong(buf, pos, int64Bits(v));
    case 'int64':
      if (typeof v === 'number' && v >= 0 && Number.isSafeInteger(v)) return writeSafeVarint(buf, pos, v);
      return writeLong(buf, pos, memo.longs[memo.readLong++]!);
    case 'double':
      return buf.writeDoubleLE(v as number, pos);
    case 'float':
      return buf.writeFloatLE(v as number, pos);
  }
}

/** A non-negative safe integer: past 32 bits, shifts would truncate, so it is divided down. */
function writeSafeVarint(buf: Buffer, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
  return pos;
}

function writeLong(buf: Buffer, pos: number, v: bigint): number {
  while (v >= 0x80n) {
    buf[pos++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  buf[pos++] = Number(v);
  return pos;
}

function writeMessage(m: Fields, plan: MessagePlan, memo: Memo, buf: Buffer, pos: number): number {
  for (const f of plan.fields) {
    const v = written(m, f);
    if (v === undefined) continue;
    if (f.stringMap) {
      const map = v as Record<string, string>;
      for (const k of Object.keys(map)) {
        pos = writeVarint32(buf, pos, f.key);
        pos = writeVarint32(buf, pos, memo.lengths[memo.read++]!);
        buf[pos++] = 0x0a;
        pos = writeString(buf, pos, k, memo);
        buf[pos++] = 0x12;
        pos = writeString(buf, pos, map[k]!, memo);
      }
    } else if (f.repeated) {
      for (const x of v as unknown[]) pos = writeValue(f, x, memo, buf, pos);
    } else {
      pos = writeValue(f, v, memo, buf, pos);
    }
  }
  return pos;
}
