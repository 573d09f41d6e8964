// `npm run install-service` as far as this machine allows (issue 14, section 2): systemd is
// installed but is not PID 1, so the script installs into a scratch prefix, the unit passes
// `systemd-analyze verify`, and the installed daemon tells a notification socket READY=1 once it
// serves (what Type=notify waits for), then STOPPING=1 on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { call, criClients } from '../helpers/cri-client.js';

const run = promisify(execFile);

// A stand-in for systemd's notification socket: prints each datagram on a line of its own.
const RECEIVE = `use Socket; socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die; bind($s, pack_sockaddr_un($ARGV[0])) or die "$!"; $| = 1; while (defined(recv($s, my $m, 4096, 0))) { $m =~ s/\\n/ /g; print "$m\\n"; }`;

test('install-service installs the command, config and unit; the unit verifies; the daemon notifies READY=1 and STOPPING=1', async (t) => {
  const scratch = mkdtempSync(join(tmpdir(), 'crisp-test-install-'));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const env = { ...process.env, PREFIX: join(scratch, 'usr'), SYSCONFDIR: join(scratch, 'etc'), UNITDIR: join(scratch, 'units') };
  const { stdout } = await run('bash', [join(PACKAGE_ROOT, 'scripts', 'install-service.sh')], { env, maxBuffer: 1 << 24 });
  assert.match(stdout, /systemd is not running as PID 1 here/);
  const crisp = join(scratch, 'usr', 'bin', 'crisp');
  assert.match((await run(crisp, ['version'])).stdout, /crisp/);
  const conf = join(scratch, 'etc', 'crisp', 'crisp.conf');
  assert.equal(readFileSync(conf, 'utf8'), readFileSync(join(PACKAGE_ROOT, 'contrib', 'crisp.conf'), 'utf8'));
  // Every key commented out: the installed config is the defaults.
  assert.match((await run(crisp, ['config', '--config', conf])).stdout, /^root = "\/var\/lib\/crisp"$/m);
  const unit = readFileSync(join(scratch, 'units', 'crisp.service'), 'utf8');
  assert.match(unit, new RegExp(`^ExecStart=${join(scratch, 'usr', 'bin', 'crisp')} daemon --config ${conf}$`, 'm'));
  assert.match(unit, /^Type=notify$/m);
  assert.match(unit, /^KillMode=control-group$/m);
  const verify = await run('systemd-analyze', ['verify', join(scratch, 'units', 'crisp.service')]).then(() => '', (e: { stderr: string }) => e.stderr);
  assert.equal(verify.split('\n').filter((l) => l.includes('crisp.service')).join('\n'), '', 'systemd-analyze verify finds nothing wrong with the unit');
  // A second run keeps the operator's config.
  writeFileSync(conf, '[crisp]\nlog_level = "warn"\n');
  await run('bash', [join(PACKAGE_ROOT, 'scripts', 'install-service.sh')], { env, maxBuffer: 1 << 24 });
  assert.equal(readFileSync(conf, 'utf8'), '[crisp]\nlog_level = "warn"\n');

  // The installed daemon, as systemd would run it, with a notification socket of the test's own.
  const notify = join(scratch, 'notify');
  const receiver = spawn('perl', ['-e', RECEIVE, notify], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => receiver.kill());
  let messages = '';
  receiver.stdout.on('data', (c: Buffer) => (messages += c));
  while (!existsSync(notify)) await sleep(10);
  const socket = join(scratch, 'crisp.sock');
  const daemon = spawn(crisp, ['daemon', '--config', conf, '--root', join(scratch, 'root'), '--runroot', join(scratch, 'run'), '--socket', socket,
    '--cni-config-dir', join(scratch, 'cni'), '--enable-metrics=false'], { env: { ...process.env, NOTIFY_SOCKET: notify }, stdio: 'ignore' });
  t.after(() => daemon.kill('SIGKILL'));
  const deadline = Date.now() + 30_000;
  while (!messages.includes('READY=1') && Date.now() < deadline) await sleep(50);
  assert.match(messages, new RegExp(`^READY=1 STATUS=serving CRI on ${socket} MAINPID=${daemon.pid}$`, 'm'));
  // READY=1 came once the socket serves.
  const clients = criClients(socket);
  t.after(() => clients.close());
  assert.equal((await call(clients.runtime, clients.runtime.Version, {})).runtime_name, 'crisp');
  daemon.kill('SIGTERM');
  await new Promise((resolve) => daemon.once('exit', resolve));
  await sleep(300);
  assert.match(messages, /^STOPPING=1 STATUS=stopping; containers keep running MAINPID=\d+$/m);
});
