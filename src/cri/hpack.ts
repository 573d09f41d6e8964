// Just enough HPACK (RFC 7541) to read a client's header blocks and write them out again:
// a decoder that keeps the client's dynamic table, and an encoder that writes every field as
// a literal without indexing, so the receiving side's table stays empty and never has to
// agree with the client's.
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, STATIC_TABLE } from './hpack-tables.js';

export type HeaderField = { name: string; value: string; sensitive: boolean };

class HpackError extends Error {}

interface HuffmanNode {
  symbol?: number;
  zero?: HuffmanNode;
  one?: HuffmanNode;
}

const HUFFMAN_ROOT: HuffmanNode = (() => {
  const root: HuffmanNode = {};
  const add = (symbol: number, code: number, length: number) => {
    let node = root;
    for (let bit = length - 1; bit >= 0; bit--) {
      const key = (code >>> bit) & 1 ? 'one' : 'zero';
      node = node[key] ??= {};
    }
    node.symbol = symbol;
  };
  HUFFMAN_CODES.forEach((code, symbol) => add(symbol, code, HUFFMAN_LENGTHS[symbol]!));
  add(256, 0x3fffffff, 30);
  return root;
})();

function huffmanDecode(bytes: Uint8Array): string {
  const out: number[] = [];
  let node = HUFFMAN_ROOT;
  let depth = 0;
  let allOnes = true;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const one = (byte >>> bit) & 1;
      node = (one ? node.one : node.zero) ?? (() => { throw new HpackError('invalid Huffman code'); })();
      depth++;
      allOnes &&= one === 1;
      if (node.symbol !== undefined) {
        if (node.symbol === 256) throw new HpackError('EOS inside a Huffman string');
        out.push(node.symbol);
        node = HUFFMAN_ROOT;
        depth = 0;
        allOnes = true;
      }
    }
  }
  // Padding must be the most significant bits of EOS (all ones), shorter than a byte.
  if (depth > 7 || !allOnes) throw new HpackError('invalid Huffman padding');
  return Buffer.from(out).toString('latin1');
}

const ENTRY_OVERHEAD = 32;

export class HpackDecoder {
  private dynamic: [string, string][] = [];
  private size = 0;
  private maxSize: number;

  /** `limit` is the SETTINGS_HEADER_TABLE_SIZE the receiving side advertised. */
  constructor(private readonly limit = 4096) {
    this.maxSize = limit;
  }

  /**
   * Decodes one header block. `maxListSize` bounds the decoded header list the way
   * SETTINGS_MAX_HEADER_LIST_SIZE does (name + value + 32 per field): a few bytes of indexed
   * fields can otherwise expand into megabytes, so the bound is checked as fields are read.
   */
  decode(block: Uint8Array, maxListSize = Number.POSITIVE_INFINITY): HeaderField[] {
    const fields: HeaderField[] = [];
    let listSize = 0;
    const add = (field: HeaderField) => {
      listSize += field.name.length + field.value.length + ENTRY_OVERHEAD;
      if (listSize > maxListSize) throw new HpackError(`header list larger than ${maxListSize} bytes`);
      fields.push(field);
    };
    let pos = 0;
    const integer = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let value = block[pos++]! & mask;
      if (value < mask) return value;
      let shift = 0;
      for (;;) {
        if (pos >= block.length) throw new HpackError('truncated integer');
        const byte = block[pos++]!;
        value += (byte & 0x7f) * 2 ** shift;
        shift += 7;
        if ((byte & 0x80) === 0) return value;
        if (shift > 28) throw new HpackError('integer too large');
      }
    };
    const string = (): string => {
      if (pos >= block.length) throw new HpackError('truncated string');
      const huffman = (block[pos]! & 0x80) !== 0;
      const length = integer(7);
      if (pos + length > block.length) throw new HpackError('truncated string');
      const bytes = block.subarray(pos, pos + length);
      pos += length;
      return huffman ? huffmanDecode(bytes) : Buffer.from(bytes).toString('latin1');
    };
    const entry = (index: number): [string, string] => {
      if (index === 0) throw new HpackError('index 0');
      const found = index <= STATIC_TABLE.length ? STATIC_TABLE[index - 1] : this.dynamic[index - STATIC_TABLE.length - 1];
      if (!found) throw new HpackError(`index ${index} is not in the table`);
      return [found[0], found[1]];
    };
    while (pos < block.length) {
      const byte = block[pos]!;
      if (byte & 0x80) {
        const [name, value] = entry(integer(7));
        add({ name, value, sensitive: false });
      } else if (byte & 0x40) {
        const index = integer(6);
        const name = index === 0 ? string() : entry(index)[0];
        const value = string();
        this.insert(name, value);
        add({ name, value, sensitive: false });
      } else if (byte & 0x20) {
        const size = integer(5);
        if (size > this.limit) throw new HpackError(`table size ${size} above the limit ${this.limit}`);
        this.maxSize = size;
        this.evict();
      } else {
        const sensitive = (byte & 0x10) !== 0;
        const index = integer(4);
        const name = index === 0 ? string() : entry(index)[0];
        add({ name, value: string(), sensitive });
      }
    }
    return fields;
  }

  private insert(name: string, value: string): void {
    this.dynamic.unshift([name, value]);
    this.size += name.length + value.length + ENTRY_OVERHEAD;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.maxSize && this.dynamic.length > 0) {
      const [name, value] = this.dynamic.pop()!;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}

function encodeInteger(out: number[], value: number, prefixBits: number, flags: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  value -= max;
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

/** Every field as a literal with a literal name, never indexed where the client said so. */
export function encodeLiterals(fields: HeaderField[]): Buffer {
  const out: number[] = [];
  for (const field of fields) {
    out.push(field.sensitive ? 0x10 : 0x00);
    for (const text of [field.name, field.value]) {
      const bytes = Buffer.from(text, 'latin1');
      encodeInteger(out, bytes.length, 7, 0);
      for (const b of bytes) out.push(b);
    }
  }
  return Buffer.from(out);
}
