// Turns the entries of one OCI layer tar into an overlayfs lower directory. It writes with
// synchronous calls (it runs in the unpack worker, off the daemon's event loop) and keeps
// its own map of what it has created, so that path safety is decided without trusting the
// filesystem: an entry may only land inside the layer directory, never through a symlink an
// earlier entry planted, and a hard link may only point at something this layer made.
//
// OCI whiteouts become overlayfs ones: `.wh.NAME` → a 0/0 character device NAME (all of a
// layer's whiteouts are hard links to one such node, made once), `.wh..wh..opq` → the xattr
// trusted.overlay.opaque=y on its directory.

import {
  closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lutimesSync,
  mkdirSync, openSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeSync, chmodSync,
} from 'node:fs';
import { join } from 'node:path';
import { invalidArgument } from '../../errors.js';
import { mkfifoSync, mknodSync, setXattrsSync, type Xattr } from './native.js';
import type { TarHeader, TarSink } from './tar-reader.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';

type Kind = 'dir' | 'file' | 'symlink' | 'special' | 'whiteout';

export type ExtractorOptions = {
  /** Owner the process creates files with; chown is skipped when an entry already matches. */
  uid: number;
  gid: number;
  /** The process umask: modes it would strip are set again with chmod. */
  umask: number;
  /** A path on the same filesystem, outside `root`, for the shared whiteout node. */
  whiteoutPrototype: string;
};

export type ExtractStats = { size: number; inodes: number };

export class LayerExtractor implements TarSink {
  /** What this layer has created, by path relative to the root ('' is the root). */
  private readonly kinds = new Map<string, Kind>([['', 'dir']]);
  private readonly dirTimes = new Map<string, number>();
  private readonly xattrs = new Map<string, Map<string, Buffer>>();
  private readonly clearMode: number;
  private verifiedParent: string | undefined;
  private whiteoutMade = false;
  private fd = -1;
  private file: TarHeader | undefined;
  private filePath = '';
  private written = 0;
  readonly stats: ExtractStats = { size: 0, inodes: 0 };

  constructor(
    private readonly root: string,
    private readonly opts: ExtractorOptions,
  ) {
    this.clearMode = opts.umask & 0o777;
  }

  entry(h: TarHeader): void {
    const rel = safeRelative(h.path, h.path);
    const slash = rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : rel.slice(0, slash);
    const base = slash < 0 ? rel : rel.slice(slash + 1);

    if (rel === '') {
      if (h.type !== 'dir') throw invalidArgument(`layer entry "${h.path}": the layer root must be a directory`);
      this.setOwnerAndMode(this.root, h, true);
      this.dirTimes.set('', h.mtime);
      this.recordXattrs('', h);
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(h, parent, base);
      return;
    }
    this.ensureParent(parent, h.path);
    const abs = join(this.root, rel);
    const existing = this.kinds.get(rel);
    if (existing !== undefined) {
      if (existing === 'dir' && h.type === 'dir') {
        this.setOwnerAndMode(abs, h, true);
        this.dirTimes.set(rel, h.mtime);
        this.recordXattrs(rel, h);
        return;
      }
      this.removeExisting(rel, abs, existing);
    }

    switch (h.type) {
      case 'dir':
        mkdirSync(abs, h.mode & 0o777);
        this.setOwnerAndMode(abs, h, true);
        this.dirTimes.set(rel, h.mtime);
        this.kinds.set(rel, 'dir');
        this.stats.inodes++;
        break;
      case 'file':
        this.fd = openSync(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, h.mode & 0o777);
        this.file = h;
        this.filePath = h.path;
        this.written = 0;
        this.kinds.set(rel, 'file');
        this.stats.inodes++;
        break;
      case 'symlink':
        symlinkSync(h.linkname, abs);
        if (h.uid !== this.opts.uid || h.gid !== this.opts.gid) lchownSync(abs, h.uid, h.gid);
        lutimesSync(abs, h.mtime, h.mtime);
        this.kinds.set(rel, 'symlink');
        this.stats.inodes++;
        break;
      case 'hardlink': {
        const target = safeRelative(h.linkname, h.path, 'hard link target');
        const kind = this.kinds.get(target);
        if (kind === undefined || kind === 'dir' || kind === 'whiteout') {
          const why = kind === undefined ? 'is not an earlier entry of this layer' : `is a ${kind}`;
          throw invalidArgument(`layer entry "${h.path}": hard link target "${h.linkname}" ${why}`);
        }
        linkSync(join(this.root, target), abs);
        this.kinds.set(rel, kind);
        return; // a hard link shares its target's inode, owner, mode, times and xattrs
      }
      case 'char':
      case 'block':
        mknodSync(abs, h.type, h.devmajor, h.devminor, h.mode);
        this.finishSpecial(abs, h, rel);
        break;
      case 'fifo':
        mkfifoSync([abs], h.mode);
        this.finishSpecial(abs, h, rel);
        break;
    }
    this.recordXattrs(rel, h);
  }

  data(chunk: Buffer): void {
    if (this.fd < 0) return;
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
    this.written += chunk.length;
  }

  entryEnd(): void {
    if (this.fd < 0 || !this.file) return;
    const h = this.file;
    const fd = this.fd;
    this.fd = -1;
    this.file = undefined;
    try {
      if (h.uid !== this.opts.uid || h.gid !== this.opts.gid) fchownSync(fd, h.uid, h.gid);
      // chown clears setuid/setgid, so the mode goes on after it.
      if ((h.mode & 0o7000) !== 0 || (h.mode & this.clearMode) !== 0) fchmodSync(fd, h.mode);
      futimesSync(fd, h.mtime, h.mtime);
    } finally {
      closeSync(fd);
    }
    this.stats.size += this.written;
  }

  /**
   * Work that must follow every entry: xattrs (chown would clear security.capability, and one
   * setfattr does them all), then directory times (creating children changes them).
   */
  finish(): ExtractStats {
    if (this.fd >= 0) throw invalidArgument(`layer entry "${this.filePath}" is incomplete`);
    const batch: Xattr[] = [];
    for (const [rel, attrs] of this.xattrs) {
      for (const [name, value] of attrs) batch.push({ path: rel === '' ? '.' : rel, name, value });
    }
    setXattrsSync(this.root, batch);
    for (const [rel, mtime] of this.dirTimes) utimesSync(join(this.root, rel), mtime, mtime);
    if (this.whiteoutMade) rmSync(this.opts.whiteoutPrototype, { force: true });
    return this.stats;
  }

  /** Releases an open file after a failure; the caller removes the whole directory. */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    if (this.whiteoutMade) rmSync(this.opts.whiteoutPrototype, { force: true });
  }

  private whiteout(h: TarHeader, parent: string, base: string): void {
    this.ensureParent(parent, h.path);
    if (base === OPAQUE_MARKER) {
      this.xattrOf(parent).set(OPAQUE_XATTR, Buffer.from('y'));
      return;
    }
    if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return; // other aufs metadata: not content
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') {
      throw invalidArgument(`layer entry "${h.path}": whiteout names no file`);
    }
    const target = parent === '' ? name : `${parent}/${name}`;
    // A whiteout hides lower layers only: what this layer itself puts at the name wins.
    if (this.kinds.has(target)) return;
    if (!this.whiteoutMade) {
      mknodSync(this.opts.whiteoutPrototype, 'char', 0, 0, 0);
      this.whiteoutMade = true;
    }
    linkSync(this.opts.whiteoutPrototype, join(this.root, target));
    this.kinds.set(target, 'whiteout');
  }

  /** Makes sure every component of `parent` is a directory this layer made (creating missing ones). */
  private ensureParent(parent: string, entryPath: string): void {
    if (parent === '' || parent === this.verifiedParent) return;
    let prefix = '';
    for (const part of parent.split('/')) {
      prefix = prefix === '' ? part : `${prefix}/${part}`;
      const kind = this.kinds.get(prefix);
      if (kind === 'dir') continue;
      if (kind === undefined) {
        mkdirSync(join(this.root, prefix), 0o755);
        if ((0o755 & this.clearMode) !== 0) chmodSync(join(this.root, prefix), 0o755);
        this.kinds.set(prefix, 'dir');
        this.stats.inodes++;
        continue;
      }
      if (kind === 'symlink') {
        throw invalidArgument(`layer entry "${entryPath}" would be written through the symlink "${prefix}"`);
      }
      throw invalidArgument(`layer entry "${entryPath}": parent "${prefix}" is a ${kind}, not a directory`);
    }
    this.verifiedParent = parent;
  }

  /** A later entry replaces an earlier one at the same path (tar semantics). */
  private removeExisting(rel: string, abs: string, kind: Kind): void {
    if (kind === 'dir') {
      rmSync(abs, { recursive: true, force: true });
      const under = `${rel}/`;
      for (const map of [this.kinds, this.dirTimes, this.xattrs] as Map<string, unknown>[]) {
        for (const key of map.keys()) if (key.startsWith(under)) map.delete(key);
      }
    } else {
      unlinkSync(abs);
    }
    this.kinds.delete(rel);
    this.dirTimes.delete(rel);
    this.xattrs.delete(rel);
    this.verifiedParent = undefined;
  }

  private finishSpecial(abs: string, h: TarHeader, rel: string): void {
    if (h.uid !== this.opts.uid || h.gid !== this.opts.gid) {
      lchownSync(abs, h.uid, h.gid);
      if ((h.mode & 0o7000) !== 0) chmodSync(abs, h.mode);
    }
    lutimesSync(abs, h.mtime, h.mtime);
    this.kinds.set(rel, 'special');
    this.stats.inodes++;
  }

  private setOwnerAndMode(abs: string, h: TarHeader, isDir: boolean): void {
    if (h.uid !== this.opts.uid || h.gid !== this.opts.gid) lchownSync(abs, h.uid, h.gid);
    if (isDir) chmodSync(abs, h.mode);
  }

  private recordXattrs(rel: string, h: TarHeader): void {
    if (h.xattrs.size === 0) return;
    const attrs = this.xattrOf(rel);
    for (const [name, value] of h.xattrs) attrs.set(name, value);
  }

  private xattrOf(rel: string): Map<string, Buffer> {
    let attrs = this.xattrs.get(rel);
    if (!attrs) this.xattrs.set(rel, (attrs = new Map()));
    return attrs;
  }
}

/**
 * The entry's path relative to the layer root, cleaned as containers/storage and containerd
 * clean it: a leading '/' means the layer root, '.' and empty components are dropped, and a '..'
 * takes back the component before it. Only a '..' that would climb above the root is refused.
 * The result never names anything outside the layer, and ensureParent then refuses to write
 * through a symlink, so no entry reaches outside the layer directory.
 */
function safeRelative(path: string, entry: string, what = 'path'): string {
  if (path.includes('\0')) throw invalidArgument(`layer entry "${entry}": ${what} contains a NUL byte`);
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw invalidArgument(`layer entry "${entry}": ${what} "${path}" climbs out of the layer root`);
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return parts.join('/');
}
