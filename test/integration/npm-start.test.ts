// `npm start` as an operator runs it: the daemon comes up on the socket it was given, and
// SIGTERM to the npm process stops the daemon too (npm itself does not pass the signal on).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { testDirs } from '../helpers/daemon.js';
import { call, criClients } from '../helpers/cri-client.js';

/** Pids of the processes whose command line names `dir` (the daemon started for this test). */
function processesNaming(dir: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
    } catch {
      return false;
    }
  }).map(Number);
}

test('npm start brings the daemon up, and SIGTERM to npm stops it', { timeout: 180_000 }, async (t) => {
  const dirs = testDirs('crisp-test-npm-start-');
  const npm = spawn('npm', ['start', '--', '--root', dirs.root, '--runroot', dirs.runroot, '--socket', dirs.socket,
    '--config', join(dirs.dir, 'crisp.conf'), '--cni-config-dir', join(dirs.dir, 'cni'), '--enable-metrics=false', '--log-level', 'warn'], {
    cwd: PACKAGE_ROOT, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  npm.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  t.after(() => {
    for (const pid of processesNaming(dirs.dir)) process.kill(pid, 'SIGKILL');
    if (npm.exitCode === null) npm.kill('SIGKILL');
    rmSync(dirs.dir, { recursive: true, force: true });
  });
  const clients = criClients(dirs.socket);
  t.after(() => clients.close());
  const deadline = Date.now() + 150_000;
  for (;;) {
    assert.ok(Date.now() < deadline, `the daemon did not answer on ${dirs.socket}: ${stderr.slice(-2000)}`);
    assert.equal(npm.exitCode, null, `npm start exited: ${stderr.slice(-2000)}`);
    if (existsSync(dirs.socket)) {
      try {
        await call(clients.runtime, clients.runtime.Version, {}, 1000);
        break;
      } catch {
        // not ready yet
      }
    }
    await sleep(200);
  }
  const daemons = processesNaming(dirs.dir);
  assert.ok(daemons.length > 0, 'the daemon runs with the test dirs on its command line');
  npm.kill('SIGTERM');
  const stopBy = Date.now() + 20_000;
  while (processesNaming(dirs.dir).length > 0) {
    assert.ok(Date.now() < stopBy, `still running 20 s after SIGTERM to npm: ${processesNaming(dirs.dir).join(', ')}`);
    await sleep(200);
  }
  assert.equal(existsSync(dirs.socket), false, 'the daemon stopped the way SIGTERM stops it (its socket removed)');
});
