// Why a helper process runs crisp's short-lived commands (runc, mount, umount, unshare, CNI
// plugins...). Node starts a child with fork(), which copies the page tables of the whole
// daemon: measured on a 2-core node, 1 ms of the parent's CPU per spawn at 50 MB RSS and 4.4 ms
// at 150 MB, paid on the event loop for every one of a pod's dozen commands. A small
// long-lived process starts them for us instead, and the daemon only writes a request and reads
// a reply on a pipe. Two implementations speak the same protocol: a compiled one
// (spawn-helper.c, built into dist/bin where a C compiler exists), which starts programs with
// posix_spawn and so copies no page tables at all, and a perl script below (perl-base is part
// of every Debian system, and crisp's attach relay already runs on it) used when the compiled
// one is absent or CRISP_SPAWN_HELPER=perl. Per command, measured here, the perl helper costs
// ~3 ms of its own CPU (a fork of perl, whose reference counts make both sides fault in
// copy-on-write pages) and the compiled one a tenth of that. When neither runs or the helper
// dies, commands are spawned directly, as before; a command in flight when the helper dies
// fails, it is not re-run.
//
// conmon is launched through the helper too (mode 1): in its own session, with the sync pipe as
// fd 3 and the start pipe as fd 4 (CRI-O's protocol, see monitor/conmon.ts); the helper moves it
// into the request's cgroup directories (making them when missing; on failure it kills conmon
// and answers 'moving conmon into DIR: why' as the spawn error; a cgroup.procs write waits on
// the kernel's cgroup locks, so it is the helper's loop that waits, not the daemon's event loop),
// sets its oom_score_adj, releases it, answers with the sync pipe's first line once the intermediate
// process has exited, and keeps the pipe: conmon holds it until it exits, so its end is sent on
// as a 'lifeline closed' frame. If the helper dies, those notices are lost, not faked: exits are
// still seen through conmon's exit files.
//
// It also makes the system calls Node lacks, so that a pod does not start util-linux programs
// for them (src/host/syscalls.ts): mount(2) and umount2(2) in the helper itself (mode 2, 3; they
// return in microseconds, where a fork and exec of mount(8) cost this node 5-10 ms of CPU), and
// unshare(2) + sethostname(2) + loopback up + bind mounts of the new namespaces in a forked child
// that then exits (mode 4), which replaces unshare(1), sh, hostname(1) and ip(8); and setns(2)
// into pinned namespaces and a read of a file there, also in a forked child (mode 5), which
// replaces nsenter(1) + cat(1) for a pod's network counters. The system call numbers are passed
// in by the daemon, per architecture.
//
// The wire format is length-prefixed, so neither side needs a JSON library:
//   request  u32 size | u32 id | u8 mode (0 run, 1 conmon, 2 mount, 3 umount, 4 pin, 5 read inside) | u32 timeoutMs (0: none) | str file
//            | str cwd ('': inherit) | u32 argc | str × argc | u32 envc (0xffffffff: inherit)
//            | str × envc | str input | u32 cgroupc | str × cgroupc
//   reply    u32 size | u8 0 | u32 id | i32 exit code (-1: signalled) | i32 signal | u8 timedOut
//            | str stdout | str stderr | str spawn error ('' when the program started) | str sync
//   closed   u32 size | u8 1 | u32 id                  (mode 1: conmon's end of the sync pipe)
// where str is u32 length + bytes. A mount (mode 2) sends the filesystem type as file, the
// source, target, flags and data as args, and runs in cwd; an umount (3) the targets as args;
// a pin (4) the hostname ('' for none), '1' to bring lo up, then kind=path per namespace. Their
// reply is exit code 0, or 32 (mount(8)'s failure code) with the errors on stderr. A read inside
// (5) sends the file to read as file and kind=path per namespace to enter as args; its reply is
// the file on stdout and exit code 0, or 1 with the reason on stderr.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import type { Socket } from 'node:net';
import { COMPILED_SPAWN_HELPER } from '../paths.js';

export interface HelperRequest {
  file: string;
  args: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  timeoutMs?: number;
  /** What to do (default 'run'): see the wire format above. */
  mode?: HelperMode;
  /** conmon only: cgroup directories it is moved into (each made when missing) before it may run. */
  cgroups?: readonly string[];
}

export type HelperMode = 'run' | 'conmon' | 'mount' | 'umount' | 'pin' | 'read-inside';
const MODE_NUMBER: Record<HelperMode, number> = { run: 0, conmon: 1, mount: 2, umount: 3, pin: 4, 'read-inside': 5 };

/** mount, umount2, unshare, sethostname and setns, by Node's name for the architecture. */
const SYSCALL_NUMBERS: Partial<Record<NodeJS.Architecture, [number, number, number, number, number]>> = {
  x64: [165, 166, 272, 170, 308],
  arm64: [40, 39, 97, 161, 268],
};

export interface HelperReply {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  /** errno text (ENOENT...) when the program could not be started at all. */
  spawnError: string;
  /** conmon only: the first line on its sync pipe ('' when it closed without one). */
  sync: string;
}

/** conmon's end of its sync pipe, as the helper reports it: 'close' when conmon exits. */
export class Lifeline extends EventEmitter {
  private done = false;
  private destroyed = false;
  constructor(private readonly forget: () => void) {
    super();
  }
  /** Called by the helper; only the first time counts. */
  closed(): void {
    this.forget();
    if (this.done) return;
    this.done = true;
    this.emit('close');
  }
  /** A listener added after the end (it can come before the launch's reply) hears it at once. */
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'close' && this.done && !this.destroyed) {
      setImmediate(listener);
      return this;
    }
    return super.once(event, listener);
  }
  /** The daemon no longer wants to hear of it. */
  destroy(): void {
    this.destroyed = true;
    this.done = true;
    this.removeAllListeners();
  }
  unref(): this {
    return this;
  }
}

const INHERIT_ENV = 0xffffffff;

// The helper: a select loop over its requests, its children's pipes and a self-pipe that
// SIGCHLD writes to (so a child that ends between two selects is never missed). When the daemon
// is gone (end of its requests, or its end of the replies closed) the helper exits at once: the
// commands it started finish on their own and nobody is left to read their answers. The one
// exception is a conmon still launching: it writes its first line into the sync pipe and would
// die of SIGPIPE with no reader, leaving its container unwatched, so the helper keeps those
// pipes until each conmon has reported (or timed out), answering nobody, and exits then.
const HELPER_SCRIPT = String.raw`
use strict; use warnings; no warnings 'exec'; use Fcntl; use POSIX ();
$0 = 'crisp-spawn-helper';
my ($NR_MOUNT, $NR_UMOUNT2, $NR_UNSHARE, $NR_SETHOSTNAME, $NR_SETNS) = @ARGV;
opendir(my $home, '.') or die "cwd: $!";
$SIG{PIPE} = 'IGNORE';
sub nb { my $fh = shift; my $f = fcntl($fh, F_GETFL, 0); fcntl($fh, F_SETFL, $f | O_NONBLOCK); }
pipe(my $wake_r, my $wake_w) or die "pipe: $!"; nb($wake_r); nb($wake_w);
$SIG{CHLD} = sub { syswrite($wake_w, 'x'); };
binmode STDIN; binmode STDOUT; nb(\*STDIN); nb(\*STDOUT);
my (%jobs, %pipes, %life, $inbuf, $outq); $inbuf = ''; $outq = ''; my $rin_life = '';
sub str { my ($b, $p) = @_; my $n = unpack('N', substr($$b, $$p, 4)); my $s = substr($$b, $$p + 4, $n); $$p += 4 + $n; return $s; }
sub u32 { my ($b, $p) = @_; my $n = unpack('N', substr($$b, $$p, 4)); $$p += 4; return $n; }
sub frame { my $body = shift; $outq .= pack('N', length $body) . $body; }
sub reply { my ($id, $code, $sig, $to, $out, $err, $spawnerr, $sync) = @_;
  frame(pack('C N l> l> C N/a* N/a* N/a* N/a*', 0, $id, $code, $sig, $to, $out, $err, $spawnerr, $sync // '')); }
sub start { my $req = shift; my $p = 0;
  my $id = u32(\$req, \$p); my $mode = unpack('C', substr($req, $p, 1)); $p += 1;
  my $timeout = u32(\$req, \$p); my $file = str(\$req, \$p); my $cwd = str(\$req, \$p);
  my $argc = u32(\$req, \$p); my @args = map { str(\$req, \$p) } 1 .. $argc;
  my $envc = u32(\$req, \$p); my @env = $envc == 0xffffffff ? () : map { str(\$req, \$p) } 1 .. $envc;
  my $input = str(\$req, \$p);
  my $cgroupc = u32(\$req, \$p); my @cgroups = map { str(\$req, \$p) } 1 .. $cgroupc;
  return sysop($id, $mode, $file, $cwd, @args) if $mode == 2 || $mode == 3;
  my ($in_r, $in_w, $out_r, $out_w, $err_r, $err_w, $x_r, $x_w, $sync_r, $sync_w, $start_r, $start_w);
  pipe($in_r, $in_w) && pipe($out_r, $out_w) && pipe($err_r, $err_w) && pipe($x_r, $x_w)
    && ($mode == 0 || (pipe($sync_r, $sync_w) && pipe($start_r, $start_w))) or return reply($id, -1, 0, 0, '', '', "pipe: $!");
  my $pid = fork();
  if (!defined $pid) { return reply($id, -1, 0, 0, '', '', "fork: $!"); }
  if ($pid == 0) {
    $SIG{PIPE} = 'DEFAULT'; $SIG{CHLD} = 'DEFAULT';
    open(STDIN, '<&', $in_r); open(STDERR, '>&', $err_w);
    if ($mode == 0 || $mode == 5) { open(STDOUT, '>&', $out_w); } else { open(STDOUT, '>', '/dev/null'); }
    if ($mode == 1) {
      # conmon: its own session, the sync pipe as fd 3 and the start pipe as fd 4
      POSIX::setsid();
      # fresh copies first (free numbers, never 0-2 nor each other), so placing one at 3 or 4
      # cannot overwrite the other, whatever numbers the pipes had in this busy process
      my ($s3, $s4) = (POSIX::dup(fileno($sync_w)), POSIX::dup(fileno($start_r)));
      POSIX::dup2($s3, 3); POSIX::dup2($s4, 4);
      POSIX::close($s3) if $s3 > 4; POSIX::close($s4) if $s4 > 4;
    }
    if ($mode == 4) { close $x_w; pin(@args); }
    if ($mode == 5) { close $x_w; read_inside($file, @args); }
    if (length $cwd && !chdir($cwd)) { syswrite($x_w, "chdir $cwd: $!"); exit 127; }
    if ($envc != 0xffffffff) { %ENV = (); for (@env) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v // ''; } }
    exec { $file } $file, @args;
    syswrite($x_w, ($!{ENOENT} ? 'ENOENT' : $!{EACCES} ? 'EACCES' : "$!"));
    exit 127;
  }
  close $in_r; close $out_w; close $err_w; close $x_w;
  my $why = ''; sysread($x_r, $why, 4096); close $x_r;
  my $job = { id => $id, mode => $mode, out => '', err => '', in => $input, open => 2, status => undef, timedout => 0,
              deadline => $timeout ? time + $timeout / 1000 : undef, why => $why };
  if ($mode == 1) {
    close $sync_w; close $start_r;
    if (!length $why) { for my $dir (@cgroups) { my $e = into_cgroup($dir, $pid); next unless length $e;
      $why = $job->{why} = $e; kill 'KILL', $pid; last; } }
    if (!length $why) {
      # the best score this process may give (without CAP_SYS_RESOURCE the kernel refuses -1000)
      { no warnings; if (open(my $oom, '>', "/proc/$pid/oom_score_adj")) { print $oom '-1000'; close $oom; } }
      syswrite($start_w, "\0");
    }
    close $start_w;
    # conmon's daemon keeps its stdio: only the sync pipe and the intermediate's exit are waited for
    $job->{syncbuf} = ''; $job->{open} = 0; close $out_r;
    nb($sync_r); $pipes{fileno $sync_r} = [$pid, 'sync', $sync_r];
  } else { nb($out_r); $pipes{fileno $out_r} = [$pid, 'out', $out_r]; }
  $jobs{$pid} = $job;
  nb($err_r); nb($in_w);
  $pipes{fileno $err_r} = [$pid, 'err', $err_r];
  if (length $input) { $pipes{fileno $in_w} = [$pid, 'in', $in_w]; } else { close $in_w; }
}
# conmon, before it may run: its cgroup (every directory of the path made when missing)
sub into_cgroup { my ($dir, $pid) = @_; my $path = '';
  if (!-d $dir) { for my $part (grep { length } split m{/}, $dir) { $path .= "/$part"; mkdir $path unless -d $path; } }
  sysopen(my $f, "$dir/cgroup.procs", O_WRONLY) or return "moving conmon into $dir: $!";
  my $ok = syswrite($f, $pid); my $err = "$!"; close $f; return $ok ? '' : "moving conmon into $dir: $err"; }
# mount(2) and umount2(2), here: they return at once, and a child per call is what they replace
sub sysop { my ($id, $mode, $type, $cwd, @a) = @_; my $err = '';
  if ($mode == 2) { my ($src, $target, $flags, $data) = @a;
    if (length $cwd && !chdir($cwd)) { return reply($id, 32, 0, 0, '', "chdir $cwd: $!\n", '', ''); }
    if (syscall($NR_MOUNT, $src, $target, $type, 0 + $flags, length $data ? $data : undef) != 0) { $err = "mount $target: $!\n"; }
    chdir($home) if length $cwd;
  } else { for my $t (@a) { $err .= "umount $t: $!\n" if syscall($NR_UMOUNT2, $t, 0) != 0; } }
  reply($id, length $err ? 32 : 0, 0, 0, '', $err, '', '');
}
# in a forked child: new namespaces, the hostname and lo in them, each pinned by a bind mount of
# this process's namespace file (the mount namespace is the host's, so the pins are seen there)
sub failed { syswrite(STDERR, "$_[0]: $!\n"); POSIX::_exit(1); }
my %NS_BIT = (net => 0x40000000, ipc => 0x08000000, uts => 0x04000000);
sub pin { my ($hostname, $lo, @pins) = @_; my $flags = 0;
  for (@pins) { my ($k) = split /=/, $_, 2; failed("unknown namespace $k") unless $NS_BIT{$k}; $flags |= $NS_BIT{$k}; }
  failed('unshare') if syscall($NR_UNSHARE, $flags) != 0;
  if (length $hostname) { my $h = "$hostname"; failed('sethostname') if syscall($NR_SETHOSTNAME, $h, length $h) != 0; }
  if ($lo) { socket(my $s, 2, 2, 0) or failed('socket'); my $ifr = pack('a16 x24', 'lo');
    ioctl($s, 0x8913, $ifr) or failed('SIOCGIFFLAGS lo'); my $up = unpack('x16 s', $ifr) | 1;
    $ifr = pack('a16 s x22', 'lo', $up); ioctl($s, 0x8914, $ifr) or failed('SIOCSIFFLAGS lo'); }
  for (@pins) { my ($k, $path) = split /=/, $_, 2; my $src = "/proc/self/ns/$k";
    failed("bind $src on $path") if syscall($NR_MOUNT, $src, $path, undef, 4096, undef) != 0; }
  POSIX::_exit(0);
}
# in a forked child: into each pinned namespace (setns checks its kind), then the file copied to
# stdout as a process there reads it (/proc/self/net/dev: that network namespace's counters)
sub read_inside { my ($file, @inside) = @_;
  for (@inside) { my ($k, $path) = split /=/, $_, 2; failed("unknown namespace $k") unless $NS_BIT{$k};
    open(my $ns, '<', $path) or failed("entering $_"); failed("entering $_") if syscall($NR_SETNS, fileno($ns), $NS_BIT{$k}) != 0; close $ns; }
  open(my $f, '<', $file) or failed("open $file"); binmode $f; binmode STDOUT; my $buf;
  while (1) { my $n = sysread($f, $buf, 8192); failed("read $file") unless defined $n; last if $n == 0; syswrite(STDOUT, $buf) == $n or failed('write'); }
  POSIX::_exit(0);
}
sub drop { my $fd = shift; close $pipes{$fd}[2]; delete $pipes{$fd}; }
# the daemon is gone but a conmon it launched has not reported yet (see the compiled helper)
my $orphaned = 0;
sub conmon_launching { return grep { $_->{mode} == 1 } values %jobs; }
while (1) {
  my ($rin, $win) = ('', '');
  vec($rin, fileno(STDIN), 1) = 1 unless $orphaned;
  vec($rin, fileno($wake_r), 1) = 1;
  for my $fd (keys %pipes) { if ($pipes{$fd}[1] eq 'in') { vec($win, $fd, 1) = 1; } else { vec($rin, $fd, 1) = 1; } }
  $rin |= $rin_life;
  vec($win, fileno(STDOUT), 1) = 1 if length $outq;
  my $wait;
  for my $j (values %jobs) { next unless defined $j->{deadline} && !defined $j->{status};
    my $left = $j->{deadline} - time; $wait = $left if !defined $wait || $left < $wait; }
  $wait = 0 if defined $wait && $wait < 0;
  my $n = select(my $rout = $rin, my $wout = $win, undef, $wait);
  next if $n < 0 && $!{EINTR};
  die "select: $!" if $n < 0;
  if (vec($rout, fileno($wake_r), 1)) { my $junk; 1 while sysread($wake_r, $junk, 512); }
  if (vec($rout, fileno(STDIN), 1)) {
    my $got = sysread(STDIN, $inbuf, 65536, length $inbuf);
    if (defined $got && $got == 0) { $orphaned = 1; }
    while (length($inbuf) >= 4) { my $size = unpack('N', $inbuf); last if length($inbuf) < 4 + $size;
      my $req = substr($inbuf, 4, $size); substr($inbuf, 0, 4 + $size) = ''; start($req); }
  }
  # lifelines (one per running container) are found from the ready bits, not by walking them all
  my $hits = $rout & $rin_life;
  if ($hits =~ tr/\0//c) { my $bits = unpack('b*', $hits); my $fd = -1;
    while (($fd = index($bits, '1', $fd + 1)) >= 0) { my ($id, $fh) = @{$life{$fd}};
      # conmon holds the sync pipe until it exits: its end is conmon's death notice
      my $buf; my $got = sysread($fh, $buf, 4096);
      next if defined $got && $got > 0 || !defined $got && $!{EAGAIN};
      frame(pack('C N', 1, $id)); close $fh; delete $life{$fd}; vec($rin_life, $fd, 1) = 0; } }
  for my $fd (keys %pipes) { next unless $pipes{$fd}; my ($owner, $kind, $fh) = @{$pipes{$fd}};
    my $j = $jobs{$owner};
    if ($kind eq 'in') { next unless vec($wout, $fd, 1);
      my $w = syswrite($fh, $j->{in});
      if (!defined $w) { next if $!{EAGAIN}; $j->{in} = ''; } else { substr($j->{in}, 0, $w) = ''; }
      if (!length $j->{in}) { drop($fd); }
      next; }
    next unless vec($rout, $fd, 1);
    if ($kind eq 'sync') {
      my $got = sysread($fh, $j->{syncbuf}, 4096, length $j->{syncbuf});
      next if !defined $got && $!{EAGAIN};
      if (!$got) { $j->{syncdone} = 1; drop($fd); next; }
      if ($j->{syncbuf} =~ /\n/) { $j->{syncdone} = 1; delete $pipes{$fd}; $life{$fd} = [$j->{id}, $fh]; vec($rin_life, $fd, 1) = 1; }
      next; }
    my $got = sysread($fh, $j->{$kind}, 65536, length $j->{$kind});
    next if !defined $got && $!{EAGAIN};
    if (!$got) { drop($fd); $j->{open}-- if $j->{mode} != 1; }
  }
  while ((my $pid = waitpid(-1, 1)) > 0) { $jobs{$pid}{status} = $? if $jobs{$pid}; }
  for my $pid (keys %jobs) { my $j = $jobs{$pid};
    if (defined $j->{deadline} && time >= $j->{deadline} && !$j->{timedout}) {
      kill 'KILL', $pid unless defined $j->{status}; $j->{timedout} = 1; }
    next unless defined $j->{status} && $j->{open} == 0;
    # conmon's report: its intermediate process has exited and the sync pipe said something or closed
    next if $j->{mode} == 1 && !$j->{syncdone} && !$j->{timedout} && $j->{status} == 0;
    for my $fd (keys %pipes) { my $e = $pipes{$fd}; next if $e->[0] != $pid;
      if ($e->[1] eq 'err') { 1 while sysread($e->[2], $j->{err}, 65536, length $j->{err}); }
      drop($fd); }
    my $st = $j->{status}; my $sig = $st & 127;
    my ($sync) = $j->{mode} == 1 ? split(/\n/, $j->{syncbuf}, 2) : ('');
    reply($j->{id}, $sig ? -1 : $st >> 8, $sig, $j->{timedout}, $j->{out}, $j->{err}, $j->{why}, $sync);
    delete $jobs{$pid};
  }
  if ($orphaned) { $outq = ''; exit 0 unless conmon_launching(); }
  if (length $outq) { my $w = syswrite(STDOUT, $outq);
    if (defined $w) { substr($outq, 0, $w) = ''; } elsif (!$!{EAGAIN}) { exit 0; } }
}
`;

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]),
);

/** One request frame, sized first and written into a single buffer (a pod's start sends several). */
function encodeRequest(id: number, r: HelperRequest): Buffer {
  const env = r.env ? Object.entries(r.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])) : undefined;
  const cgroups = r.cgroups ?? [];
  const strings: (string | Buffer)[] = [r.file, r.cwd ?? '', ...r.args, ...(env ?? []), r.input ?? '', ...cgroups];
  let size = 4 + 1 + 4 + 4 + 4 + 4; // id, mode, timeout, argc, envc, cgroupc
  for (const x of strings) size += 4 + (typeof x === 'string' ? Buffer.byteLength(x) : x.length);
  const out = Buffer.allocUnsafe(4 + size);
  let pos = out.writeUInt32BE(size, 0);
  const u32 = (n: number) => (pos = out.writeUInt32BE(n >>> 0, pos));
  const str = (x: string | Buffer) => {
    if (typeof x === 'string') {
      const n = out.write(x, pos + 4);
      u32(n);
      pos += n;
    } else {
      u32(x.length);
      pos += x.copy(out, pos);
    }
  };
  u32(id);
  pos = out.writeUInt8(MODE_NUMBER[r.mode ?? 'run'], pos);
  u32(Math.max(0, Math.ceil(r.timeoutMs ?? 0)));
  str(r.file);
  str(r.cwd ?? '');
  u32(r.args.length);
  for (const a of r.args) str(a);
  u32(env ? env.length : INHERIT_ENV);
  for (const e of env ?? []) str(e);
  str(r.input ?? '');
  u32(cgroups.length);
  for (const c of cgroups) str(c);
  return out;
}

function decodeReply(body: Buffer): { id: number; reply: HelperReply } {
  let pos = 1;
  const u32 = () => ((pos += 4), body.readUInt32BE(pos - 4));
  const i32 = () => ((pos += 4), body.readInt32BE(pos - 4));
  const bytes = () => {
    const n = u32();
    pos += n;
    return body.subarray(pos - n, pos);
  };
  const id = u32();
  const code = i32();
  const signal = i32();
  const timedOut = body[pos++] === 1;
  const stdout = Buffer.from(bytes());
  const stderr = Buffer.from(bytes());
  const spawnError = bytes().toString();
  const sync = bytes().toString();
  return {
    id,
    reply: { code: code < 0 ? null : code, signal: signal > 0 ? (SIGNAL_NAMES.get(signal) ?? 'SIGKILL') : null, stdout, stderr, timedOut, spawnError, sync },
  };
}

interface Pending {
  resolve(reply: HelperReply): void;
  reject(err: Error): void;
}

export class HelperGone extends Error {}

/** One helper process and the requests in flight to it. */
class Helper {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private readonly lifelines = new Map<number, Lifeline>();
  private nextId = 1;
  private buffered: Buffer = Buffer.alloc(0);
  alive = true;
  /** Whether it makes system calls (modes 2-5): it knows their numbers on this architecture. */
  readonly systemCalls: boolean;
  readonly kind: HelperProgram['kind'];

  constructor(program: HelperProgram, onGone: () => void) {
    const numbers = SYSCALL_NUMBERS[process.arch];
    // The compiled helper calls libc's wrappers; the perl one needs the numbers.
    this.systemCalls = program.kind === 'compiled' || numbers !== undefined;
    const args = program.kind === 'compiled' ? [] : ['-e', HELPER_SCRIPT, ...(numbers ?? []).map(String)];
    this.child = spawn(program.path, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.kind = program.kind;
    const gone = (why: string) => {
      if (!this.alive) return;
      this.alive = false;
      onGone();
      for (const p of this.pending.values()) p.reject(new HelperGone(`the spawn helper ${why}`));
      this.pending.clear();
      // Their ends are unknown now, not reported: exits are still seen through the exit files.
      this.lifelines.clear();
    };
    this.child.on('error', (e) => gone(`could not run: ${e.message}`));
    this.child.on('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    this.child.stdin!.on('error', () => gone('stopped reading'));
    this.child.stdout!.on('data', (chunk: Buffer) => this.read(chunk));
    // The end of its replies is the helper's end too (and, unlike 'exit', arrives while the
    // pipe still holds the event loop open for the requests in flight).
    this.child.stdout!.on('close', () => gone('closed its replies'));
    // The helper must not keep an idle process (a test, a CLI command) alive.
    this.child.unref();
    (this.child.stdin as unknown as Socket).unref();
    (this.child.stdout as unknown as Socket).unref();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Launches conmon (mode 1); the lifeline reports its end. */
  launchConmon(request: Omit<HelperRequest, 'mode' | 'input'>): { reply: Promise<HelperReply>; lifeline: Lifeline } {
    const id = this.nextId;
    const lifeline = new Lifeline(() => this.lifelines.delete(id));
    this.lifelines.set(id, lifeline);
    const reply = this.run({ ...request, mode: 'conmon' });
    reply.then((r) => {
      if (!r.sync) this.lifelines.delete(id);
    }, () => this.lifelines.delete(id));
    return { reply, lifeline };
  }

  run(request: HelperRequest): Promise<HelperReply> {
    const id = this.nextId++;
    if (this.nextId > 0x7fffffff) this.nextId = 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Only while something is in flight does the helper hold the event loop open.
      if (this.pending.size === 1) (this.child.stdout as unknown as Socket).ref();
      this.child.stdin!.write(encodeRequest(id, request));
    });
  }

  private read(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    while (this.buffered.length >= 4) {
      const size = this.buffered.readUInt32BE(0);
      if (this.buffered.length < 4 + size) return;
      const body = this.buffered.subarray(4, 4 + size);
      this.buffered = this.buffered.subarray(4 + size);
      if (body[0] === 1) {
        this.lifelines.get(body.readUInt32BE(1))?.closed();
        continue;
      }
      const { id, reply } = decodeReply(body);
      const p = this.pending.get(id);
      this.pending.delete(id);
      if (this.pending.size === 0) (this.child.stdout as unknown as Socket).unref();
      p?.resolve(reply);
    }
  }

  stop(): void {
    this.alive = false;
    this.child.stdin!.end();
  }
}

export interface HelperProgram {
  kind: 'compiled' | 'perl';
  path: string;
}

let program: HelperProgram | null | undefined;
let current: Helper | undefined;
let started: ((pid: number) => void) | undefined;

/**
 * Calls `listener` with the pid of each helper spawnHelper() starts (the first, and any that
 * replaces one that died), before any command is sent to it: the daemon places it in a cgroup.
 */
export function onSpawnHelperStart(listener: ((pid: number) => void) | undefined): void {
  started = listener;
}

function executable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Which helper this node can run: the compiled one, else perl; null when there is none, or
 * CRISP_SPAWN_HELPER says '0' (none) or 'perl' (the perl one even when the compiled one exists).
 */
export function findHelperProgram(choice = process.env['CRISP_SPAWN_HELPER']): HelperProgram | null {
  if (choice === '0') return null;
  if (choice !== 'perl' && executable(COMPILED_SPAWN_HELPER)) return { kind: 'compiled', path: COMPILED_SPAWN_HELPER };
  const perl = ['/usr/bin/perl', '/bin/perl'].find(executable);
  return perl ? { kind: 'perl', path: perl } : null;
}

/**
 * The helper to send a command to, started on first use; undefined when commands must be
 * spawned directly (see findHelperProgram).
 */
export function spawnHelper(): Helper | undefined {
  if (current?.alive) return current;
  if (program === undefined) program = findHelperProgram();
  if (program === null) return undefined;
  current = new Helper(program, () => {
    current = undefined;
  });
  if (current.pid !== undefined) started?.(current.pid);
  return current;
}

/** A helper of the given kind outside the daemon's own (tests hold the two kinds to each other). */
export function startHelper(which: HelperProgram): Helper {
  return new Helper(which, () => {});
}

/** Ends the helper (it exits once its commands in flight are done). */
export function stopSpawnHelper(): void {
  current?.stop();
  current = undefined;
}

export type { Helper };
