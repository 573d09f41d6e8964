// The one command runner, through the spawn helper and directly: the same answers either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { run, runDirect, type RunResult } from '../../src/host/run.js';
import { spawnHelper } from '../../src/host/spawn-helper.js';

const cases: [string, string[], Parameters<typeof run>[2]][] = [
  ['echo', ['a b', 'c'], {}],
  ['sh', ['-c', 'cat; echo oops >&2; exit 3'], { input: 'from stdin\n' }],
  ['sh', ['-c', 'pwd; echo "$ONLY"; echo "${HOME:-unset}"'], { cwd: '/tmp', env: { ONLY: 'this', PATH: '/usr/bin:/bin' } }],
  ['sh', ['-c', 'wc -c'], { input: Buffer.alloc(300_000, 97) }],
  ['sh', ['-c', 'head -c 1000000 /dev/zero | tr "\\0" x'], {}],
  ['sh', ['-c', 'kill -TERM $$'], {}],
];

const shape = (r: RunResult) => ({ ...r });

test('the helper answers what a direct spawn answers', async () => {
  assert.ok(spawnHelper(), 'perl is part of every Debian system, so the helper runs here');
  for (const [file, args, options] of cases) {
    assert.deepEqual(shape(await run(file, args, options)), shape(await runDirect(file, args, options)), `${file} ${args.join(' ')}`);
  }
});

test('many commands at once through the helper each get their own answer', async () => {
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => run('sh', ['-c', `echo ${i}; echo e${i} >&2; exit ${i % 7}`])));
  results.forEach((r, i) => {
    assert.equal(r.stdout, `${i}\n`);
    assert.equal(r.stderr, `e${i}\n`);
    assert.equal(r.code, i % 7);
  });
});

test('a command past its timeout is killed and says so', async () => {
  const started = Date.now();
  const r = await run('sleep', ['10'], { timeoutMs: 150 });
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  assert.equal(r.code, null);
  assert.ok(Date.now() - started < 5000);
});

test('a program that cannot be started rejects with its errno, as spawn does', async () => {
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

test('a helper whose daemon dies exits at once, with a command still running and replies unsent', async () => {
  const script = `
    const { run } = await import(${JSON.stringify(new URL('../../src/host/run.ts', import.meta.url).href)});
    const { spawnHelper } = await import(${JSON.stringify(new URL('../../src/host/spawn-helper.ts', import.meta.url).href)});
    await run('true', []);
    run('sleep', ['30']);
    for (let i = 0; i < 20; i++) run('echo', ['a reply nobody will read']);
    console.log(spawnHelper().pid);
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const helperPid = Number(await new Promise<string>((resolve) => child.stdout!.once('data', (b: Buffer) => resolve(b.toString().trim()))));
  assert.ok(helperPid > 0);
  child.kill('SIGKILL');
  const deadline = Date.now() + 5000;
  while (existsSync(`/proc/${helperPid}`) && readFileSync(`/proc/${helperPid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z') {
    assert.ok(Date.now() < deadline, 'the helper is still running after its daemon died');
    await new Promise((r) => setTimeout(r, 50));
  }
});

test('conmon mode: fd 3 and 4 are the sync and start pipes in every child, even with hundreds of pipes open', async (t) => {
  const helper = spawnHelper()!;
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
