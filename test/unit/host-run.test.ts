// The one command runner, through the spawn helper (the compiled one and the perl one) and
// directly: the same answers every way.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, runDirect, runThrough, type RunResult } from '../../src/host/run.js';
import { COMPILED_SPAWN_HELPER } from '../../src/paths.js';
import { findHelperProgram, spawnHelper, startHelper, type Helper, type HelperProgram } from '../../src/host/spawn-helper.js';

const hasCompiler = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v cc || command -v gcc'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const programs: HelperProgram[] = [findHelperProgram('perl')!, ...(existsSync(COMPILED_SPAWN_HELPER) ? [findHelperProgram()!] : [])];
const helpers = new Map<string, Helper>(programs.map((p) => [p.kind, startHelper(p)]));
const scratch = mkdtempSync('/tmp/crisp-test-run-');
after(() => {
  for (const h of helpers.values()) h.stop();
  rmSync(scratch, { recursive: true, force: true });
});

test('the compiled helper is built where a C compiler is, and is the one the daemon uses', () => {
  assert.equal(findHelperProgram('perl')?.kind, 'perl', 'perl is part of every Debian system');
  if (!hasCompiler) return;
  assert.ok(existsSync(COMPILED_SPAWN_HELPER), `setup.sh builds ${COMPILED_SPAWN_HELPER} (scripts/build-spawn-helper.sh)`);
  assert.equal(findHelperProgram()?.kind, 'compiled');
  assert.equal(findHelperProgram('0'), null);
});

const cases: [string, string[], Parameters<typeof run>[2]][] = [
  ['echo', ['a b', 'c'], {}],
  ['sh', ['-c', 'cat; echo oops >&2; exit 3'], { input: 'from stdin\n' }],
  ['sh', ['-c', 'pwd; echo "$ONLY"; echo "${HOME:-unset}"'], { cwd: '/tmp', env: { ONLY: 'this', PATH: '/usr/bin:/bin' } }],
  ['sh', ['-c', 'wc -c'], { input: Buffer.alloc(300_000, 97) }],
  ['sh', ['-c', 'head -c 1000000 /dev/zero | tr "\\0" x'], {}],
  ['sh', ['-c', 'kill -TERM $$'], {}],
];

const shape = (r: RunResult) => ({ ...r });

for (const [kind, helper] of helpers) {
  test(`${kind} helper: answers what a direct spawn answers`, async () => {
    for (const [file, args, options] of cases) {
      assert.deepEqual(shape(await runThrough(helper, file, args, options)), shape(await runDirect(file, args, options)), `${file} ${args.join(' ')}`);
    }
  });

  test(`${kind} helper: many commands at once each get their own answer`, async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => runThrough(helper, 'sh', ['-c', `echo ${i}; echo e${i} >&2; exit ${i % 7}`])));
    results.forEach((r, i) => {
      assert.equal(r.stdout, `${i}\n`);
      assert.equal(r.stderr, `e${i}\n`);
      assert.equal(r.code, i % 7);
    });
  });

  test(`${kind} helper: a command past its timeout is killed and says so`, async () => {
    const started = Date.now();
    const r = await runThrough(helper, 'sleep', ['10'], { timeoutMs: 150 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(r.code, null);
    assert.ok(Date.now() - started < 5000);
  });

  test(`${kind} helper: a program that cannot be started rejects with its errno, as spawn does`, async () => {
    await assert.rejects(runThrough(helper, '/nonexistent/program', []), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    await assert.rejects(runThrough(helper, 'no-such-program-here', [], { env: { PATH: '/usr/bin:/bin' } }), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    const notExecutable = join(scratch, 'not-executable');
    writeFileSync(notExecutable, 'echo no\n', { mode: 0o644 });
    await assert.rejects(runThrough(helper, notExecutable, []), (e: NodeJS.ErrnoException) => e.code === 'EACCES');
    await assert.rejects(runThrough(helper, 'true', [], { cwd: '/nonexistent/dir' }), /chdir \/nonexistent\/dir/);
    // the program is looked up in the PATH it is given, as execvp in the child would
    assert.equal((await runThrough(helper, 'true', [], { env: { PATH: '/nonexistent:/bin' } })).code, 0);
  });
}

test('a program that cannot be started rejects with its errno when spawned directly too', async () => {
  await assert.rejects(run('/nonexistent/program', []), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  await assert.rejects(runDirect('/nonexistent/program', []), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
});

test('a helper that dies fails the commands in flight and the next command starts a new one', async () => {
  const first = spawnHelper()!;
  const inFlight = run('sleep', ['5']);
  process.kill(first.pid!, 'SIGKILL');
  await assert.rejects(inFlight, /spawn helper/);
  const r = await run('echo', ['again']);
  assert.equal(r.stdout, 'again\n');
  assert.notEqual(spawnHelper()!.pid, first.pid);
});

/**
 * Runs `body` (module code that starts the spawn helper and prints its pid) as a daemon in its
 * own process, SIGKILLs that daemon, and returns the orphaned helper's pid.
 */
async function helperOfKilledDaemon(program: HelperProgram, body: string): Promise<number> {
  const script = `
    const { run } = await import(${JSON.stringify(new URL('../../src/host/run.ts', import.meta.url).href)});
    const { spawnHelper } = await import(${JSON.stringify(new URL('../../src/host/spawn-helper.ts', import.meta.url).href)});
    ${body}
    setInterval(() => {}, 1000);`;
  const env = { ...process.env, CRISP_SPAWN_HELPER: program.kind === 'perl' ? 'perl' : '' };
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const helperPid = Number(await new Promise<string>((resolve) => child.stdout!.once('data', (b: Buffer) => resolve(b.toString().trim()))));
  assert.ok(helperPid > 0);
  child.kill('SIGKILL');
  return helperPid;
}

/** Waits until `done()` holds, failing with `why` after the deadline. */
async function waitFor(done: () => boolean, deadline: number, why: string): Promise<void> {
  while (!done()) {
    assert.ok(Date.now() < deadline, why);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exited = (pid: number) => () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] === 'Z';

for (const program of programs)
test(`${program.kind} helper: exits at once when its daemon dies, with a command still running and replies unsent`, async () => {
  const helperPid = await helperOfKilledDaemon(program, `
    await run('true', []);
    run('sleep', ['30']);
    for (let i = 0; i < 20; i++) run('echo', ['a reply nobody will read']);
    console.log(spawnHelper().pid);`);
  await waitFor(exited(helperPid), Date.now() + 5000, 'the helper is still running after its daemon died');
});

for (const program of programs)
test(`${program.kind} helper: a conmon still launching when the daemon dies keeps its sync pipe until it reports`, async () => {
  const marker = join(scratch, `reported-${program.kind}`);
  // Stands in for conmon: waits for the start byte, then reports late, after its daemon is
  // gone. With no reader left on fd 3 its write would kill it (SIGPIPE) before the marker.
  const fakeConmon = `head -c1 <&4 >/dev/null && sleep 0.5 && echo '{"data": 1}' >&3 && touch ${marker}`;
  const helperPid = await helperOfKilledDaemon(program, `
    const helper = spawnHelper();
    helper.launchConmon({ file: 'sh', args: ['-c', ${JSON.stringify(fakeConmon)}], env: { PATH: '/usr/bin:/bin' }, timeoutMs: 20_000 });
    console.log(helper.pid);`);
  const deadline = Date.now() + 10_000;
  await waitFor(() => existsSync(marker), deadline, 'the launching conmon did not get to report');
  await waitFor(exited(helperPid), deadline, 'the helper stayed after its last conmon reported');
});

for (const [kind, helper] of helpers)
test(`${kind} helper, conmon mode: fd 3 and 4 are the sync and start pipes in every child, even with hundreds of pipes open`, async (t) => {
  // Lifelines do not hold a process open (the daemon's server does): this test's interval does.
  const alive = setInterval(() => undefined, 100);
  t.after(() => clearInterval(alive));
  // Stands in for conmon: waits for the start byte on fd 4, reports on fd 3, and leaves a
  // process behind holding fd 3 for a while, as conmon's daemon does.
  const fakeConmon = 'head -c1 <&4 >/dev/null && echo "{\\"data\\": $$}" >&3 && (sleep 0.3 &) && exit 0';
  const launches = Array.from({ length: 150 }, () => helper.launchConmon({ file: 'sh', args: ['-c', fakeConmon], env: { PATH: '/usr/bin:/bin' }, timeoutMs: 20_000 }));
  const replies = await Promise.all(launches.map((l) => l.reply));
  for (const r of replies) {
    assert.equal(r.code, 0, r.stderr.toString());
    assert.ok((JSON.parse(r.sync) as { data: number }).data > 0, r.sync);
  }
  // each lifeline reports the end of the process holding fd 3
  await Promise.all(launches.map((l) => new Promise<void>((resolve) => l.lifeline.once('close', resolve))));
});

for (const [kind, helper] of helpers)
test(`${kind} helper, conmon mode: conmon is moved into its cgroups before it may run, and never runs when it cannot be`, async (t) => {
  const alive = setInterval(() => undefined, 100);
  t.after(() => clearInterval(alive));
  // Plain directories stand for cgroups here: the helper writes the pid into their cgroup.procs.
  const cgroups = [join(scratch, `${kind}-cpu/pod/conmon`), join(scratch, `${kind}-memory/pod/conmon`)];
  for (const dir of cgroups) {
    execFileSync('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'cgroup.procs'), '');
  }
  // Stands in for conmon: reports, once let go, what its cgroup.procs files said at that moment.
  const fakeConmon = `head -c1 <&4 >/dev/null && echo "{\\"data\\": $$, \\"message\\": \\"$(for f in ${cgroups.map((d) => `${d}/cgroup.procs`).join(' ')}; do cat $f; echo; done | tr '\\n' ' ')\\"}" >&3`;
  const moved = helper.launchConmon({ file: 'sh', args: ['-c', fakeConmon], env: { PATH: '/usr/bin:/bin' }, timeoutMs: 20_000, cgroups });
  const r = await moved.reply;
  assert.equal(r.spawnError, '');
  const report = JSON.parse(r.sync) as { data: number; message: string };
  assert.deepEqual(report.message.trim().split(/\s+/), [String(report.data), String(report.data)], 'moved into both before the start byte');

  // A cgroup whose cgroup.procs cannot be written: its path is made, conmon is killed unstarted.
  const missing = join(scratch, `${kind}-nowhere/pod/conmon`);
  const marker = join(scratch, `${kind}-ran`);
  const refused = helper.launchConmon({ file: 'sh', args: ['-c', `head -c1 <&4 >/dev/null && touch ${marker}`], env: { PATH: '/usr/bin:/bin' }, timeoutMs: 20_000, cgroups: [missing] });
  const failed = await refused.reply;
  assert.match(failed.spawnError, new RegExp(`^moving conmon into ${missing}: No such file or directory`));
  assert.equal(failed.sync, '');
  assert.ok(existsSync(missing), 'the cgroup path was made');
  assert.ok(!existsSync(marker), 'conmon never ran');
});
