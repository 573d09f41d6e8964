// The monitor's pure pieces: signal parsing, oom_score_adj clamping, conmon's command line,
// runc error text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { criSignalOf, parseSignal, signalName, signalNameOfCri } from '../../src/actors/monitor/signals.js';
import { clampOomScoreAdj, readOomScoreAdj } from '../../src/actors/monitor/oom-score.js';
import { conmonCreateArgs } from '../../src/actors/monitor/conmon.js';
import { runcErrorText, runcFailure } from '../../src/actors/monitor/runc.js';
import { isCrispError } from '../../src/errors.js';

test('parseSignal accepts the spellings images and kubelet use', () => {
  assert.equal(parseSignal('SIGTERM'), 15);
  assert.equal(parseSignal('TERM'), 15);
  assert.equal(parseSignal('sigkill'), 9);
  assert.equal(parseSignal('15'), 15);
  assert.equal(parseSignal(2), 2);
  assert.equal(parseSignal('SIGRTMIN'), 34);
  assert.equal(parseSignal('SIGRTMIN+3'), 37);
  assert.equal(parseSignal('RTMAX-1'), 63);
  for (const bad of ['SIGNOPE', '', '0', '65', 'SIGRTMIN+40', -1, 1.5]) {
    assert.throws(() => parseSignal(bad as string | number, 'stop signal'), (e) => isCrispError(e, 'InvalidArgument') && /stop signal/.test((e as Error).message), String(bad));
  }
});

test('signal names: canonical spellings, and the CRI Signal enum both ways', () => {
  assert.equal(signalName('TERM'), 'SIGTERM');
  assert.equal(signalName('15'), 'SIGTERM');
  assert.equal(signalName('SIGRTMIN+3'), 'SIGRTMIN+3');
  assert.equal(signalName(50), 'SIGRTMAX-14');
  assert.equal(signalNameOfCri('SIGNAL_RUNTIME_DEFAULT'), null);
  assert.equal(signalNameOfCri('SIGNAL_SIGUSR1'), 'SIGUSR1');
  assert.equal(signalNameOfCri('SIGNAL_SIGRTMINPLUS15'), 'SIGRTMIN+15');
  assert.equal(signalNameOfCri('SIGNAL_SIGRTMAXMINUS14'), 'SIGRTMAX-14');
  assert.equal(signalNameOfCri('SIGNAL_SIGRTMAX'), 'SIGRTMAX');
  for (const name of ['SIGUSR1', 'SIGRTMIN', 'SIGRTMIN+1', 'SIGRTMAX-1', 'SIGRTMAX', 'SIGKILL']) assert.equal(signalNameOfCri(criSignalOf(name)), name);
  assert.equal(criSignalOf('SIGRTMIN+15'), 'SIGNAL_SIGRTMINPLUS15');
  assert.throws(() => signalNameOfCri('99'), (e) => isCrispError(e, 'InvalidArgument') && /stop_signal/.test((e as Error).message));
});

test('clampOomScoreAdj never goes below the daemon\'s own score, nor outside the kernel range', () => {
  assert.equal(clampOomScoreAdj(-998, 0), 0);
  assert.equal(clampOomScoreAdj(-998, -999), -998);
  assert.equal(clampOomScoreAdj(500, 0), 500);
  assert.equal(clampOomScoreAdj(1200, 0), 1000);
  assert.equal(clampOomScoreAdj(-5000, -1000), -1000);
  assert.equal(clampOomScoreAdj(100, 300), 300);
  assert.throws(() => clampOomScoreAdj(1.5, 0), (e) => isCrispError(e, 'InvalidArgument') && /oomScoreAdj/.test((e as Error).message));
});

test('readOomScoreAdj reads this process\'s score', async () => {
  const own = await readOomScoreAdj();
  assert.ok(Number.isInteger(own) && own >= -1000 && own <= 1000);
});

test('conmon command line carries the sync protocol pieces and stdio choices', () => {
  const base = {
    conmonPath: '/usr/bin/conmon', runtimePath: '/usr/sbin/runc', runtimeRoot: '/run/crisp/runc', id: 'c1',
    bundle: '/b', logPath: '/l/c1.log', exitsDir: '/run/crisp/exits', containerDir: '/run/crisp/c1',
    containerPidFile: '/run/crisp/c1/pidfile', conmonPidFile: '/run/crisp/c1/conmon.pid', socketDir: '/run/crisp/attach',
  };
  const args = conmonCreateArgs({ ...base, logSizeMax: 1024 });
  const after = (flag: string) => args[args.indexOf(flag) + 1];
  assert.equal(after('-c'), 'c1');
  assert.equal(after('-b'), '/b');
  assert.equal(after('--runtime-arg'), '--root=/run/crisp/runc');
  assert.equal(after('-l'), 'k8s-file:/l/c1.log');
  assert.equal(after('--exit-dir'), '/run/crisp/exits');
  assert.equal(after('--persist-dir'), '/run/crisp/c1');
  assert.equal(after('--log-size-max'), '1024');
  assert.ok(!args.includes('-t') && !args.includes('-i'));
  assert.ok(conmonCreateArgs({ ...base, terminal: true, stdin: true }).includes('-t'));
  const stdin = conmonCreateArgs({ ...base, stdin: true });
  assert.ok(stdin.includes('-i') && stdin.includes('--leave-stdin-open'));
  assert.ok(!conmonCreateArgs({ ...base, stdin: true, stdinOnce: true }).includes('--leave-stdin-open'));
});

test('runc error text keeps runc\'s own words and maps to typed errors', () => {
  const stderr = 'time="2026-01-01T00:00:00Z" level=warning msg="ignored"\ntime="2026-01-01T00:00:00Z" level=error msg="runc create failed: unable to start container process: exec: \\"/x\\": stat /x: no such file or directory"\n';
  assert.equal(runcErrorText(stderr), 'runc create failed: unable to start container process: exec: "/x": stat /x: no such file or directory');
  assert.equal(runcErrorText('plain failure\n'), 'plain failure');
  assert.ok(isCrispError(runcFailure('state', 'container does not exist'), 'NotFound'));
  assert.ok(isCrispError(runcFailure('kill', 'container not running'), 'FailedPrecondition'));
  assert.ok(isCrispError(runcFailure('update', 'invalid memory limit'), 'Internal'));
});
