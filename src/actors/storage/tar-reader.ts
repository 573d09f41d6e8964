// A streaming tar reader: bytes go in as they arrive (any chunking), entries come out through a
// synchronous sink without buffering file contents. Dialects: ustar (with prefix), GNU long
// names/links ('L'/'K') and base-256 numbers, PAX local and global headers (path, linkpath,
// size, uid, gid, mtime, SCHILY.xattr.*). Sparse files and other exotic types are refused,
// naming the entry, rather than unpacked wrongly.

import { invalidArgument } from '../../errors.js';

const BLOCK = 512;

type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export type TarHeader = {
  path: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content that follow; always 0 for anything but regular files. */
  size: number;
  /** Seconds since the epoch; PAX may give a fraction. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
};

export interface TarSink {
  entry(header: TarHeader): void;
  /** Content of the current entry, in order; the buffer is only valid during the call. */
  data(chunk: Buffer): void;
  /** Called once per entry after all its content (right after entry() when it has none). */
  entryEnd(): void;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

type Meta = { kind: 'x' | 'g' | 'L' | 'K'; chunks: Buffer[]; size: number };
type State = 'header' | 'data' | 'meta' | 'padding' | 'end';

export class TarParser {
  private state: State = 'header';
  /** Bytes of an incomplete header block carried over between writes. */
  private partial: Buffer | undefined;
  private remaining = 0;
  private padding = 0;
  private meta: Meta | undefined;
  private zeroBlocks = 0;
  private offset = 0;
  private current = '';
  private globalPax = new Map<string, Buffer>();
  private localPax: Map<string, Buffer> | undefined;
  private gnuLongName: string | undefined;
  private gnuLongLink: string | undefined;

  constructor(private readonly sink: TarSink) {}

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      switch (this.state) {
        case 'end':
          // Trailing bytes after the end marker (record padding) carry no entries.
          this.offset += chunk.length - off;
          return;
        case 'header': {
          let block: Buffer;
          if (this.partial === undefined && chunk.length - off >= BLOCK) {
            block = chunk.subarray(off, off + BLOCK);
            off += BLOCK;
          } else {
            const have = this.partial?.length ?? 0;
            const take = Math.min(BLOCK - have, chunk.length - off);
            const piece = chunk.subarray(off, off + take);
            this.partial = this.partial ? Buffer.concat([this.partial, piece]) : Buffer.from(piece);
            off += take;
            if (this.partial.length < BLOCK) continue;
            block = this.partial;
            this.partial = undefined;
          }
          this.header(block);
          this.offset += BLOCK;
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, chunk.length - off);
          this.sink.data(chunk.subarray(off, off + n));
          off += n;
          this.consumed(n);
          break;
        }
        case 'meta': {
          const meta = this.meta!;
          const n = Math.min(this.remaining, chunk.length - off);
          meta.chunks.push(Buffer.from(chunk.subarray(off, off + n)));
          off += n;
          this.consumed(n);
          break;
        }
        case 'padding': {
          const n = Math.min(this.padding, chunk.length - off);
          off += n;
          this.offset += n;
          this.padding -= n;
          if (this.padding === 0) this.state = 'header';
          break;
        }
      }
    }
  }

  /** Declares the input complete; a stream cut inside an entry is an error. */
  end(): void {
    const clean = this.state === 'end' || (this.state === 'header' && this.partial === undefined);
    if (!clean) {
      throw invalidArgument(`tar stream truncated at byte ${this.offset}${this.current ? ` in entry "${this.current}"` : ''}`);
    }
  }

  private consumed(n: number): void {
    this.remaining -= n;
    this.offset += n;
    if (this.remaining > 0) return;
    if (this.state === 'data') this.sink.entryEnd();
    else this.finishMeta();
    this.state = this.padding > 0 ? 'padding' : 'header';
  }

  private header(block: Buffer): void {
    if (isZero(block)) {
      this.zeroBlocks++;
      if (this.zeroBlocks === 2) this.state = 'end';
      return;
    }
    this.zeroBlocks = 0;
    const at = this.offset;
    if (!checksumOk(block)) throw invalidArgument(`tar header at byte ${at} has a bad checksum (not a tar stream?)`);

    const flag = String.fromCharCode(block[156]!);
    let name = cString(block, 0, 100);
    if (block.toString('latin1', 257, 262) === 'ustar') {
      const prefix = cString(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const size = number(block, 124, 12, 'size', name);
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      this.current = name;
      if (size > 64 * 1024 * 1024) throw invalidArgument(`tar metadata record "${name}" is implausibly large (${size} bytes)`);
      this.meta = { kind: flag, chunks: [], size };
      this.remaining = size;
      this.padding = padding;
      if (size > 0) this.state = 'meta';
      else this.finishMeta();
      return;
    }

    const pax = new Map([...this.globalPax, ...(this.localPax ?? [])]);
    this.localPax = undefined;
    const path = paxString(pax, 'path') ?? this.gnuLongName ?? name;
    const linkname = paxString(pax, 'linkpath') ?? this.gnuLongLink ?? cString(block, 157, 100);
    this.gnuLongName = undefined;
    this.gnuLongLink = undefined;
    this.current = path;

    let type = TYPES[flag];
    if (type === undefined) {
      throw invalidArgument(`tar entry "${path}" has unsupported type '${flag === '\0' ? '\\0' : flag}'`);
    }
    if (flag === '\0' && path.endsWith('/')) type = 'dir'; // pre-POSIX archives mark dirs by name only

    const xattrs = new Map<string, Buffer>();
    for (const [key, value] of pax) {
      if (key.startsWith('SCHILY.xattr.') && key.length > 13) xattrs.set(key.slice(13), value);
    }
    const paxSize = paxNumber(pax, 'size', path);
    const contentSize = type === 'file' ? (paxSize ?? size) : 0;
    // Header-only types may still declare a size; their bytes (if any) are skipped unread.
    const skipped = type === 'file' ? 0 : (paxSize ?? size);
    const header: TarHeader = {
      path,
      type,
      mode: number(block, 100, 8, 'mode', path) & 0o7777,
      uid: paxNumber(pax, 'uid', path) ?? number(block, 108, 8, 'uid', path),
      gid: paxNumber(pax, 'gid', path) ?? number(block, 116, 8, 'gid', path),
      size: contentSize,
      mtime: paxNumber(pax, 'mtime', path) ?? number(block, 136, 12, 'mtime', path),
      linkname,
      devmajor: type === 'char' || type === 'block' ? number(block, 329, 8, 'devmajor', path) : 0,
      devminor: type === 'char' || type === 'block' ? number(block, 337, 8, 'devminor', path) : 0,
      xattrs,
    };
    this.sink.entry(header);
    const total = contentSize + skipped;
    this.padding = (BLOCK - (total % BLOCK)) % BLOCK;
    if (contentSize > 0) {
      this.remaining = contentSize;
      this.state = 'data';
      return;
    }
    this.sink.entryEnd();
    this.padding += skipped;
    this.state = this.padding > 0 ? 'padding' : 'header';
  }

  private finishMeta(): void {
    const meta = this.meta!;
    this.meta = undefined;
    const body = Buffer.concat(meta.chunks);
    switch (meta.kind) {
      case 'L':
        this.gnuLongName = cString(body, 0, body.length);
        break;
      case 'K':
        this.gnuLongLink = cString(body, 0, body.length);
        break;
      case 'x':
        this.localPax = parsePax(body, this.offset);
        break;
      case 'g':
        for (const [k, v] of parsePax(body, this.offset)) this.globalPax.set(k, v);
        break;
    }
  }
}

/** PAX records: "<length> <key>=<value>\n", where length counts the whole record. */
function parsePax(body: Buffer, at: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // some writers pad the record block with NULs
    const space = body.indexOf(0x20, pos);
    const len = space > pos ? Number(body.toString('latin1', pos, space)) : NaN;
    if (!Number.isSafeInteger(len) || len <= space - pos || pos + len > body.length || body[pos + len - 1] !== 0x0a) {
      throw invalidArgument(`malformed PAX record at byte ${at}`);
    }
    const eq = body.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= pos + len) throw invalidArgument(`malformed PAX record at byte ${at}: no '='`);
    out.set(body.toString('utf8', space + 1, eq), Buffer.from(body.subarray(eq + 1, pos + len - 1)));
    pos += len;
  }
  return out;
}

/** A PAX value, where an empty value means "unset" (fall back to the ustar field). */
function paxString(pax: Map<string, Buffer>, key: string): string | undefined {
  const v = pax.get(key);
  return v === undefined || v.length === 0 ? undefined : v.toString('utf8');
}

function paxNumber(pax: Map<string, Buffer>, key: string, path: string): number | undefined {
  const s = paxString(pax, key);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!/^-?\d+(\.\d+)?$/.test(s) || !Number.isFinite(n) || (key !== 'mtime' && !Number.isSafeInteger(n))) {
    throw invalidArgument(`tar entry "${path}": PAX ${key} ${JSON.stringify(s)} is not a number`);
  }
  return n;
}

/** A numeric ustar field: NUL/space-terminated octal, or GNU base-256 when the top bit is set. */
function number(block: Buffer, off: number, len: number, field: string, path: string): number {
  const first = block[off]!;
  if (first & 0x80) {
    if (first === 0xff) throw invalidArgument(`tar entry "${path}": negative ${field}`);
    let n = first & 0x7f;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + block[i]!;
    if (!Number.isSafeInteger(n)) throw invalidArgument(`tar entry "${path}": ${field} too large`);
    return n;
  }
  let n = 0;
  let i = off;
  const end = off + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw invalidArgument(`tar entry "${path}": ${field} field is not octal`);
    n = n * 8 + (c - 0x30);
  }
  return n;
}

function cString(buf: Buffer, off: number, len: number): string {
  const nul = buf.indexOf(0, off);
  const end = nul < 0 || nul > off + len ? off + len : nul;
  return buf.toString('utf8', off, end);
}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  try {
    return number(block, 148, 8, 'checksum', '') === sum;
  } catch {
    return false;
  }
}

function isZero(block: Buffer): boolean {
  if (block[0] !== 0) return false;
  for (let i = 0; i < BLOCK; i += 8) {
    if (block.readBigUInt64LE(i) !== 0n) return false;
  }
  return true;
}
