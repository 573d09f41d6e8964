// Byte relays for the two sockets Node cannot open itself: a TCP connection inside a pod's
// network namespace (Node cannot setns) and conmon's SOCK_SEQPACKET attach socket (libuv
// knows no seqpacket). Both are a few lines of Perl with only perl-base (Essential in Debian,
// on every node already), run under nsenter for the namespace. A seqpacket's record
// boundaries matter (conmon's first byte says stdout or stderr), so that relay writes each
// record to its stdout behind a 4-byte big-endian length; what arrives on its stdin is sent
// on as records of at most 4 KiB (conmon reads stdin records into a small buffer). Each
// relay says "connected" on stderr once its socket is up, or why not before it exits.
import type { ChildProcess } from 'node:child_process';
import { basename, dirname } from 'node:path';
import { Duplex } from 'node:stream';
import { start, type StartedProgram } from '../host/run.js';

const TCP_RELAY = String.raw`
use strict; use IO::Socket::IP; use IO::Select;
my $s = IO::Socket::IP->new(PeerHost => $ARGV[0], PeerPort => $ARGV[1], Type => SOCK_STREAM)
  or do { print STDERR "$@\n"; exit 2 };
print STDERR "connected\n";
binmode STDIN; binmode STDOUT; $| = 1;
my $sel = IO::Select->new(\*STDIN, $s); my ($in_open, $out_open) = (1, 1); my $buf;
while ($in_open || $out_open) {
  for my $h ($sel->can_read) {
    my $n = sysread($h, $buf, 65536);
    if (!$n) {
      $sel->remove($h);
      if ($h == $s) { $out_open = 0; close STDOUT; } else { $in_open = 0; shutdown($s, 1); }
      next;
    }
    my $to = $h == $s ? \*STDOUT : $s; my $off = 0;
    while ($off < $n) { my $w = syswrite($to, $buf, $n - $off, $off); exit 0 unless $w; $off += $w; }
  }
}`;

const SEQPACKET_RELAY = String.raw`
use strict; use Socket; use IO::Select;
socket(my $s, AF_UNIX, SOCK_SEQPACKET, 0) or do { print STDERR "socket: $!\n"; exit 2 };
connect($s, pack_sockaddr_un($ARGV[0])) or do { print STDERR "connect $ARGV[0]: $!\n"; exit 2 };
print STDERR "connected\n";
binmode STDIN; binmode STDOUT; $| = 1;
my $sel = IO::Select->new(\*STDIN, $s); my $buf;
while (1) {
  for my $h ($sel->can_read) {
    if ($h == $s) {
      my $n = sysread($s, $buf, 65536);
      exit 0 unless $n;
      my $rec = pack('N', $n) . $buf; my $off = 0;
      while ($off < length $rec) { my $w = syswrite(STDOUT, $rec, length($rec) - $off, $off); exit 0 unless $w; $off += $w; }
    } else {
      my $n = sysread(STDIN, $buf, 4096);
      if (!$n) { $sel->remove(\*STDIN); shutdown($s, 1); next; }
      send($s, $buf, 0) or exit 0;
    }
  }
}`;

/** A relay child as a Duplex: writes go to its stdin, reads come from its stdout. */
export class RelayStream extends Duplex {
  readonly stderr: Promise<string>;
  readonly exited: Promise<number>;
  /** Resolves once the relay's socket is connected; rejects with its error otherwise. */
  readonly ready: Promise<void>;

  readonly child: ChildProcess;

  constructor(program: StartedProgram) {
    super({ allowHalfOpen: true });
    const child = (this.child = program.child);
    const errors: Buffer[] = [];
    child.stderr!.on('data', (b: Buffer) => errors.push(b));
    this.stderr = new Promise((resolve) => child.stderr!.once('close', () => resolve(Buffer.concat(errors).toString().trim())));
    this.exited = program.exited.catch((err: Error) => {
      errors.push(Buffer.from(err.message));
      return 127;
    });
    this.ready = new Promise((resolve, reject) => {
      const onData = () => {
        if (Buffer.concat(errors).toString().startsWith('connected\n')) {
          errors.splice(0, errors.length, Buffer.concat(errors).subarray('connected\n'.length));
          child.stderr!.off('data', onData);
          resolve();
        }
      };
      child.stderr!.on('data', onData);
      void this.exited.then(async (code) => reject(new Error((await this.stderr) || `relay exited with code ${code}`)));
    });
    this.ready.catch(() => undefined);
    child.stdout!.on('data', (b: Buffer) => {
      if (!this.push(b)) child.stdout!.pause();
    });
    child.stdout!.once('end', () => this.push(null));
  }

  override _read(): void {
    this.child.stdout!.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.child.stdin!.write(chunk)) done();
    else this.child.stdin!.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.child.stdin!.end(() => done());
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    done(err);
  }
}

/** A TCP connection to `port` on the loopback of the network namespace at `netns`. */
export function dialInNetns(netns: string, port: number): RelayStream {
  return new RelayStream(start('nsenter', [`--net=${netns}`, '--', 'perl', '-e', TCP_RELAY, 'localhost', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] }));
}

/**
 * conmon's attach socket at `path`, as length-prefixed records. The relay connects from the
 * socket's directory by its base name: full paths under a runroot often pass the 108 bytes
 * a unix socket address holds.
 */
export function openSeqpacket(path: string): RelayStream {
  return new RelayStream(start('perl', ['-e', SEQPACKET_RELAY, basename(path)], { stdio: ['pipe', 'pipe', 'pipe'], cwd: dirname(path) }));
}

/** Splits the seqpacket relay's output back into records. */
export class RecordSplitter {
  private pending: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const records: Buffer[] = [];
    while (this.pending.length >= 4) {
      const n = this.pending.readUInt32BE(0);
      if (this.pending.length < 4 + n) break;
      records.push(this.pending.subarray(4, 4 + n));
      this.pending = this.pending.subarray(4 + n);
    }
    return records;
  }
}
