import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sdNotify } from '../../src/host/sd-notify.js';

// A stand-in for systemd's notification socket: one datagram, printed.
const RECEIVE = `use Socket; socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die; bind($s, pack_sockaddr_un($ARGV[0])) or die "$!"; $| = 1; print "bound\\n"; recv($s, my $m, 4096, 0); print $m;`;

test('READY=1 reaches the notification socket with the daemon\'s pid; without NOTIFY_SOCKET nothing is sent', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-unit-notify-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'notify');
  const receiver = spawn('perl', ['-e', RECEIVE, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  receiver.stdout.on('data', (c: Buffer) => (out += c));
  const done = new Promise((resolve) => receiver.once('exit', resolve));
  while (!out.includes('bound') && !existsSync(path)) await sleep(10);
  assert.equal(await sdNotify('READY=1\nSTATUS=serving', { NOTIFY_SOCKET: path }), true);
  await done;
  assert.equal(out, `bound\nREADY=1\nSTATUS=serving\nMAINPID=${process.pid}`);
  assert.equal(await sdNotify('READY=1', {}), false);
});
