// Real runc + conmon, as root. Every container gets a `montest-` id, its cgroup lives under a
// test-only parent, and all state lives in a temp dir: all of it is removed even on failure.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, rename, access, stat, rm } from 'node:fs/promises';
import { isAlive } from '../../src/actors/monitor/process-tree.js';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerRuntime } from '../../src/actors/monitor/container-runtime.js';
import {
  detectCgroupLayout,
  resolveCgroupPaths,
  removeCgroupTree,
  cgroupDirs,
  readOomKillCount,
  type CgroupPaths,
} from '../../src/actors/monitor/cgroups.js';
import { readCgroupSample } from '../../src/actors/stats/cgroup-sample.js';
import { isCrispError } from '../../src/errors.js';
import { makeBundle, makeBusyboxRootfs, makeTempDir, testCgroupParent, testContainerId } from '../helpers/bundle.js';
import { removePath } from '../../src/host/files.js';

const RUNC = '/usr/sbin/runc';
const CONMON = '/usr/bin/conmon';

let work: string;
let rootfs: string;
let cgroupParent: string;
let rt: ContainerRuntime;
const created = new Set<string>();

function newRuntime(): ContainerRuntime {
  return new ContainerRuntime({
    runtimePath: RUNC,
    runtimeRoot: join(work, 'runc'),
    conmonPath: CONMON,
    runDir: join(work, 'run'),
    exitsDir: join(work, 'exits'),
  });
}

before(async () => {
  work = await makeTempDir('monitor');
  rootfs = await makeBusyboxRootfs(work);
  cgroupParent = testCgroupParent();
  rt = newRuntime();
});

after(async () => {
  for (const id of created) await rt.delete(id).catch(() => undefined);
  const layout = await detectCgroupLayout();
  await removeCgroupTree(resolveCgroupPaths(layout, cgroupParent)).catch(() => undefined);
  await removePath(work);
});

interface Made {
  id: string;
  bundle: string;
  logPath: string;
  cgroup: CgroupPaths;
}

async function prepare(t: TestContext, label: string, args: string[], extra: { memoryLimitBytes?: number; edit?: (s: Record<string, any>) => void } = {}): Promise<Made> {
  const id = testContainerId(label);
  const cgroupsPath = `${cgroupParent}/${id}`;
  const bundle = await makeBundle({ dir: join(work, 'bundles', id), rootfs, args, cgroupsPath, ...extra });
  const logPath = join(work, 'logs', `${id}.log`);
  await import('node:fs/promises').then((fs) => fs.mkdir(join(work, 'logs'), { recursive: true }));
  created.add(id);
  t.after(async () => {
    await rt.delete(id);
    created.delete(id);
  });
  return { id, bundle, logPath, cgroup: resolveCgroupPaths(await detectCgroupLayout(), cgroupsPath) };
}

async function run(t: TestContext, label: string, args: string[], extra: Parameters<typeof prepare>[3] = {}) {
  const m = await prepare(t, label, args, extra);
  const pids = await rt.create({ id: m.id, bundle: m.bundle, logPath: m.logPath });
  await rt.start(m.id);
  return { ...m, ...pids };
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

async function procStat(pid: number): Promise<{ state: string; ppid: number; session: number } | null> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0]!, ppid: Number(f[1]), session: Number(f[3]) };
  } catch {
    return null;
  }
}

/** Every live process whose argv mentions `needle` (e.g. a container id). */
async function processesMentioning(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = (await readFile(`/proc/${e}/cmdline`, 'utf8')).split('\0');
      if (argv.some((a) => a.includes(needle))) found.push(Number(e));
    } catch {
      // gone
    }
  }
  return found;
}

async function processesWithArgv(argv: string[]): Promise<number[]> {
  const want = argv.join('\0') + '\0';
  const found: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if ((await readFile(`/proc/${e}/cmdline`, 'utf8')) === want) found.push(Number(e));
    } catch {
      // gone
    }
  }
  return found;
}

test('lifecycle: create → start → running → stop → exit info → delete leaves nothing', async (t) => {
  const m = await prepare(t, 'life', ['sh', '-c', "trap 'exit 7' TERM; sleep 1000 & wait"]);
  const { pid, conmonPid } = await rt.create({ id: m.id, bundle: m.bundle, logPath: m.logPath });
  assert.ok(pid > 0 && conmonPid > 0);
  assert.deepEqual(await rt.state(m.id), { status: 'created', pid });
  const conmon = await procStat(conmonPid);
  const self = await procStat(process.pid);
  assert.ok(conmon, 'conmon is alive');
  assert.notEqual(conmon.session, self!.session, 'conmon runs in its own session');
  assert.equal(conmon.session, conmonPid, 'conmon leads its session');

  await rt.start(m.id);
  assert.deepEqual(await rt.state(m.id), { status: 'running', pid });
  assert.equal(await rt.readExit(m.id), null);

  const t0 = Date.now();
  const exit = await rt.stop(m.id, { timeoutSeconds: 10 });
  assert.ok(Date.now() - t0 < 5000, 'the trap handled SIGTERM, no SIGKILL wait');
  assert.equal(exit.exitCode, 7);
  assert.equal(exit.reason, 'Error');
  assert.equal(exit.oomKilled, false);
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  assert.ok(exit.finishedAt <= nowNs && exit.finishedAt > nowNs - 60_000_000_000n, 'finishedAt is recent, in ns');
  assert.equal((await rt.state(m.id))?.status, 'stopped');
  assert.deepEqual(await rt.stop(m.id, { timeoutSeconds: 10 }), exit, 'stop is idempotent');

  await rt.delete(m.id);
  await rt.delete(m.id); // idempotent
  assert.equal(await rt.state(m.id), null);
  assert.equal(await rt.readExit(m.id), null);
  // conmon was reparented to pid 1; a zombie awaiting pid 1's reaping has exited all the same
  const after = await procStat(conmonPid);
  assert.ok(after === null || after.state === 'Z', 'conmon is gone');
  for (const dir of cgroupDirs(m.cgroup)) assert.equal(await pathExists(dir), false, `cgroup ${dir} removed`);
  assert.equal(await pathExists(join(work, 'run', m.id)), false);
  assert.equal(await pathExists(join(work, 'exits', m.id)), false);
  assert.equal(await pathExists(join(m.bundle, 'ctl')), false);
  await assert.rejects(rt.stop(m.id, { timeoutSeconds: 1 }), (e) => isCrispError(e, 'NotFound'));
});

test('exit codes: exit 3 → Error, exit 0 → Completed', async (t) => {
  const failing = await run(t, 'exit3', ['sh', '-c', 'exit 3']);
  const ok = await run(t, 'exit0', ['sh', '-c', 'exit 0']);
  const e3 = await rt.waitExit(failing.id);
  assert.equal(e3.exitCode, 3);
  assert.equal(e3.reason, 'Error');
  assert.equal(e3.oomKilled, false);
  const e0 = await rt.waitExit(ok.id);
  assert.equal(e0.exitCode, 0);
  assert.equal(e0.reason, 'Completed');
  assert.deepEqual(await rt.readExit(ok.id), e0, 'readExit returns the settled record');
});

test('OOM: allocating past a 16 MiB limit → oomKilled, reason OOMKilled', async (t) => {
  const m = await run(t, 'oom', ['sh', '-c', 'head -c 100m /dev/zero | tail'], { memoryLimitBytes: 16 * 1024 * 1024 });
  const exit = await rt.waitExit(m.id, AbortSignal.timeout(60_000));
  assert.ok(((await readOomKillCount(m.cgroup)) ?? 0) > 0, 'the kernel counted an OOM kill in the cgroup');
  assert.equal(exit.oomKilled, true);
  assert.equal(exit.reason, 'OOMKilled');
  assert.notEqual(exit.exitCode, 0);
  // conmon's own OOM file: recorded for the report, not relied upon
  t.diagnostic(`conmon oom file present: ${await pathExists(join(work, 'run', m.id, 'oom'))}`);
});

test('a non-OOM exit 137 is not reported as OOM', async (t) => {
  const m = await run(t, 'kill9', ['sh', '-c', 'sh -c "kill -9 \\$\\$"; exit $?'], { memoryLimitBytes: 64 * 1024 * 1024 });
  const exit = await rt.waitExit(m.id);
  assert.equal(exit.exitCode, 137);
  assert.equal(exit.oomKilled, false);
  assert.equal(exit.reason, 'Error');
});

const CRI_LINE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+(?:Z|[+-]\d{2}:\d{2})) (stdout|stderr) (F|P) (.*)$/;

test('logs: CRI format, full and partial lines, both streams', async (t) => {
  const m = await run(t, 'logs', ['sh', '-c', "printf 'line one\\nline two\\n'; echo oops >&2; sleep 0.2; printf partial"]);
  await rt.waitExit(m.id);
  const lines = (await readFile(m.logPath, 'utf8')).split('\n').filter((l) => l !== '');
  const parsed = lines.map((l) => {
    const r = CRI_LINE.exec(l);
    assert.ok(r, `CRI log line: ${JSON.stringify(l)}`);
    assert.ok(!Number.isNaN(Date.parse(r[1]!)), 'RFC3339 timestamp');
    return `${r[2]} ${r[3]} ${r[4]}`;
  });
  assert.ok(parsed.includes('stdout F line one'));
  assert.ok(parsed.includes('stdout F line two'));
  assert.ok(parsed.includes('stderr F oops'));
  assert.equal(parsed.at(-1), 'stdout P partial', 'a line without newline is marked partial');
  assert.ok(parsed.indexOf('stdout F line one') < parsed.indexOf('stdout F line two'));
});

test('reopenLog: after the log is renamed, conmon writes a new file at the path', async (t) => {
  const m = await run(t, 'reopen', ['sh', '-c', 'while true; do echo tick; sleep 0.1; done']);
  await waitUntil(async () => (await readFile(m.logPath, 'utf8')).includes('tick'));
  await rename(m.logPath, `${m.logPath}.1`);
  await rt.reopenLog(m.id);
  assert.ok((await stat(m.logPath)).isFile(), 'the new log file exists when reopenLog returns');
  await waitUntil(async () => (await readFile(m.logPath, 'utf8')).includes('stdout F tick'));
  assert.match(await readFile(`${m.logPath}.1`, 'utf8'), /stdout F tick/);
  await rt.stop(m.id, { timeoutSeconds: 0 });
  await assert.rejects(rt.reopenLog(m.id), (e) => isCrispError(e, 'FailedPrecondition'));
});

test('stop falls back to SIGKILL when SIGTERM is ignored; timeout 0 kills at once', async (t) => {
  const stubborn = await run(t, 'stubborn', ['sh', '-c', "trap '' TERM; sleep 1000 & wait; sleep 1000"]);
  const t0 = Date.now();
  const exit = await rt.stop(stubborn.id, { timeoutSeconds: 1, signal: 'SIGTERM' });
  const took = Date.now() - t0;
  assert.ok(took >= 1000, `waited the timeout (${took} ms)`);
  assert.ok(took < 6000, `then killed promptly (${took} ms)`);
  assert.equal(exit.exitCode, 137);
  assert.equal(exit.oomKilled, false);
  assert.equal(exit.reason, 'Error');

  const other = await run(t, 'now', ['sleep', '1000']);
  const t1 = Date.now();
  const e2 = await rt.stop(other.id, { timeoutSeconds: 0 });
  assert.ok(Date.now() - t1 < 3000);
  assert.equal(e2.exitCode, 137);
  await assert.rejects(rt.stop(other.id, { timeoutSeconds: -1 }), (e) => isCrispError(e, 'InvalidArgument'));
  await assert.rejects(rt.stop(other.id, { timeoutSeconds: 1, signal: 'SIGNOPE' }), /stop signal/);
});

test('execSync: output, exit code, truncation, and a timeout that leaves no process or zombie', async (t) => {
  const m = await run(t, 'exec', ['sleep', '1000']);
  const r = await rt.execSync(m.id, ['sh', '-c', 'echo out; echo err >&2; exit 5'], { timeoutSeconds: 10 });
  assert.equal(r.stdout.toString(), 'out\n');
  assert.equal(r.stderr.toString(), 'err\n');
  assert.equal(r.exitCode, 5);
  assert.equal(r.timedOut, false);
  assert.equal(r.truncated, false);

  const big = await rt.execSync(m.id, ['sh', '-c', 'yes | head -c 100000'], { timeoutSeconds: 10, maxOutputBytes: 1000 });
  assert.equal(big.stdout.length, 1000);
  assert.equal(big.truncated, true);
  assert.equal(big.exitCode, 0);

  const init = (await rt.state(m.id))!.pid;
  const t0 = Date.now();
  const nested = await rt.execSync(m.id, ['sh', '-c', 'sleep 303; echo never'], { timeoutSeconds: 1 });
  assert.equal(nested.timedOut, true);
  assert.ok(Date.now() - t0 < 4000, `timeout enforced promptly (${Date.now() - t0} ms)`);
  for (const argv of [['sleep', '303'], ['sh', '-c', 'sleep 303; echo never']]) {
    assert.deepEqual(await processesWithArgv(argv), [], `${argv.join(' ')} killed and reaped`);
  }
  assert.deepEqual(await zombiesUnder(init), [], 'no zombie left under the container init');
  await assertNoRuncExec(m.id);

  // Here busybox execs `sleep 202` in place of the shell, so `sleep 101`'s parent is a process
  // that never reaps: once killed it can only be a zombie of the (non-reaping) container init.
  // What we can promise is that nothing keeps running and runc exec is gone.
  const bg = await rt.execSync(m.id, ['sh', '-c', 'sleep 101 & sleep 202'], { timeoutSeconds: 1 });
  assert.equal(bg.timedOut, true);
  for (const argv of [['sleep', '101'], ['sleep', '202']]) {
    for (const pid of await processesWithArgv(argv)) assert.fail(`${argv.join(' ')} still running as ${pid}`);
  }
  await assertNoRuncExec(m.id);
  assert.deepEqual(await readdir(join(work, 'run', m.id)).then((f) => f.filter((x) => x.startsWith('exec-'))), [], 'exec pid files removed');
  await assert.rejects(rt.execSync(m.id, [], { timeoutSeconds: 1 }), (e) => isCrispError(e, 'InvalidArgument'));
});

test('updateResources: new limits are visible in the cgroup files', async (t) => {
  const m = await run(t, 'update', ['sleep', '1000'], { memoryLimitBytes: 32 * 1024 * 1024 });
  await rt.updateResources(m.id, { memory: { limit: 64 * 1024 * 1024, swap: 64 * 1024 * 1024 }, pids: { limit: 50 }, cpu: { shares: 512 } });
  const layout = await detectCgroupLayout();
  if (layout.version === 1) {
    assert.equal((await readFile(join(m.cgroup.controllers['memory']!, 'memory.limit_in_bytes'), 'utf8')).trim(), String(64 * 1024 * 1024));
    assert.equal((await readFile(join(m.cgroup.controllers['pids']!, 'pids.max'), 'utf8')).trim(), '50');
    assert.equal((await readFile(join(m.cgroup.controllers['cpu']!, 'cpu.shares'), 'utf8')).trim(), '512');
  } else {
    assert.equal((await readFile(join(m.cgroup.unified!, 'memory.max'), 'utf8')).trim(), String(64 * 1024 * 1024));
    assert.equal((await readFile(join(m.cgroup.unified!, 'pids.max'), 'utf8')).trim(), '50');
  }
  const stats = readCgroupSample(m.cgroup);
  assert.equal(stats.memory?.limitBytes, BigInt(64 * 1024 * 1024));
  assert.ok((stats.processes ?? 0n) >= 1n);
  assert.ok((stats.memory?.usageBytes ?? 0n) > 0n);
  assert.ok(stats.cpuNs !== undefined);
  await assert.rejects(rt.updateResources(m.id, { memory: { limit: -5 } }));
});

test('re-adoption: a new ContainerRuntime finds running and exited containers from files alone', async (t) => {
  const long = await run(t, 'adopt-long', ['sleep', '1000']);
  const short = await run(t, 'adopt-short', ['sh', '-c', 'sleep 1; exit 4']);
  const reborn = newRuntime();
  assert.deepEqual(await reborn.state(long.id), { status: 'running', pid: long.pid });
  assert.deepEqual((await reborn.list()).filter((id) => id === long.id || id === short.id).sort(), [long.id, short.id].sort());
  const e = await reborn.waitExit(short.id, AbortSignal.timeout(20_000));
  assert.equal(e.exitCode, 4);
  assert.deepEqual(await rt.readExit(short.id), e, 'the old object reads the same settled exit');
  const stopped = await reborn.stop(long.id, { timeoutSeconds: 0 });
  assert.equal(stopped.exitCode, 137);
});

test('waitExit honours its AbortSignal and unknown ids are NotFound', async (t) => {
  const m = await run(t, 'abort', ['sleep', '1000']);
  await assert.rejects(rt.waitExit(m.id, AbortSignal.timeout(200)), (e) => isCrispError(e, 'DeadlineExceeded'));
  await assert.rejects(rt.waitExit('montest-nope'), (e) => isCrispError(e, 'NotFound'));
  assert.equal(await rt.state('montest-nope'), null);
});

test('create failure returns runc\'s error and leaves no conmon, runc state, cgroup or files', async (t) => {
  const m = await prepare(t, 'bad', ['/no/such/binary']);
  await assert.rejects(rt.create({ id: m.id, bundle: m.bundle, logPath: m.logPath }), (e: Error) => {
    assert.match(e.message, /no such file or directory/i);
    assert.match(e.message, /\/no\/such\/binary/);
    return true;
  });
  assert.deepEqual(await processesMentioning(m.id), [], 'no conmon or runc process');
  assert.equal(await rt.state(m.id), null, 'no runc state');
  for (const dir of cgroupDirs(m.cgroup)) assert.equal(await pathExists(dir), false, `no cgroup ${dir}`);
  assert.equal(await pathExists(join(work, 'run', m.id)), false);
  assert.equal(await pathExists(join(work, 'exits', m.id)), false);
  assert.equal(await pathExists(join(work, 'run', 'attach', m.id)), false);
  assert.equal(await pathExists(m.logPath), false);

  await assert.rejects(rt.create({ id: m.id, bundle: join(work, 'no-bundle'), logPath: m.logPath }), (e) => isCrispError(e, 'InvalidArgument') && /config\.json/.test((e as Error).message));
  await assert.rejects(rt.create({ id: 'bad id!', bundle: m.bundle, logPath: m.logPath }), (e) => isCrispError(e, 'InvalidArgument') && /container id/.test((e as Error).message));
  await assert.rejects(rt.create({ id: m.id, bundle: m.bundle, logPath: m.logPath, terminal: true }), /process\.terminal/);
  const lowOom = await prepare(t, 'oomadj', ['sleep', '1'], { edit: (s) => (s.process.oomScoreAdj = -1000) });
  await assert.rejects(rt.create({ id: lowOom.id, bundle: lowOom.bundle, logPath: lowOom.logPath }), /process\.oomScoreAdj/);
});

test('creating an id twice is AlreadyExists', async (t) => {
  const m = await run(t, 'twice', ['sleep', '1000']);
  await assert.rejects(rt.create({ id: m.id, bundle: m.bundle, logPath: m.logPath }), (e) => isCrispError(e, 'AlreadyExists'));
  assert.equal((await rt.state(m.id))?.status, 'running', 'the original is untouched');
});

async function zombiesUnder(parent: number): Promise<number[]> {
  const found: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const s = await procStat(Number(e));
    if (s && s.ppid === parent && s.state === 'Z') found.push(Number(e));
  }
  return found;
}

async function assertNoRuncExec(id: string): Promise<void> {
  for (const p of await processesMentioning(id)) {
    const argv = (await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')).split('\0');
    assert.ok(!argv.includes('exec'), `no runc exec left behind (pid ${p}: ${argv.join(' ')})`);
  }
}

async function waitUntil(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error('condition not met in time');
}

test('a create cut short before runc wrote its pid file (crash mid-launch) is undone by delete and by a retried create', async (t) => {
  const m = await run(t, 'cutshort', ['sleep', '1000']);
  // What a crash while conmon runs the runtime's create leaves: conmon, the cgroup, the create
  // journal, perhaps runc state, but no pid file of the container.
  await rm(join(work, 'run', m.id, 'pidfile'));
  assert.equal(await rt.created(m.id), null);
  assert.ok((await newRuntime().list()).includes(m.id), 'list() names an id with only a create journal');
  const again = await newRuntime().create({ id: m.id, bundle: m.bundle, logPath: m.logPath });
  assert.notEqual(again.pid, m.pid, 'the half-made container was replaced, not adopted');
  assert.equal(await isAlive(m.conmonPid), false, 'the first attempt\'s conmon is gone');
  assert.equal(await isAlive(m.pid), false, 'the first attempt\'s process is gone');
  // And delete alone undoes a journal-only leftover, cgroup included.
  await rm(join(work, 'run', m.id, 'pidfile'));
  await newRuntime().delete(m.id);
  assert.equal(await rt.state(m.id), null);
  for (const dir of cgroupDirs(m.cgroup)) assert.equal(await pathExists(dir), false, `no cgroup ${dir}`);
});

test('conmon gone, process alive: inspect says orphaned, adoptOrphan watches it and settles an unknown exit', async (t) => {
  const m = await run(t, 'orphan', ['sleep', '1000']);
  process.kill(m.conmonPid, 'SIGKILL');
  await waitUntil(async () => !(await isAlive(m.conmonPid)));
  const reborn = newRuntime();
  assert.deepEqual(await reborn.inspect(m.id), { status: 'orphaned', pid: m.pid, conmonPid: m.conmonPid });
  const notices: string[] = [];
  reborn.orphaned$.subscribe((o) => notices.push(o.id));
  t.after(() => reborn.close());
  assert.equal(await reborn.adoptOrphan(m.id), true);
  assert.deepEqual(notices, [m.id]);
  const waiting = reborn.waitExit(m.id, AbortSignal.timeout(20_000));
  process.kill(m.pid, 'SIGKILL');
  const exit = await waiting;
  assert.equal(exit.exitCode, 255);
  assert.equal(exit.reason, 'Unknown');
  // whichever looks first — the orphan watch or the waiter seeing runc's stopped state — says why
  assert.match(exit.message ?? '', /conmon (was|is) gone/);
  assert.deepEqual(await reborn.inspect(m.id), { status: 'exited', exit });
});

test('conmon gone and runc says stopped with no exit file: the exit is settled as unknown (255)', async (t) => {
  const m = await run(t, 'lost', ['sleep', '1000']);
  process.kill(m.conmonPid, 'SIGKILL');
  await waitUntil(async () => !(await isAlive(m.conmonPid)));
  process.kill(m.pid, 'SIGKILL');
  await waitUntil(async () => (await rt.state(m.id))?.status === 'stopped');
  assert.equal(await pathExists(join(work, 'exits', m.id)), false, 'no exit file was written');
  const check = await newRuntime().inspect(m.id);
  assert.equal(check.status, 'exited');
  if (check.status !== 'exited') return;
  assert.equal(check.exit.exitCode, 255);
  assert.equal(check.exit.reason, 'Unknown');
  assert.match(check.exit.message ?? '', /no exit file/);
});

test('conmon dying while the runtime waits: the waiter adopts the process instead of giving up', async (t) => {
  const m = await run(t, 'orphan-live', ['sleep', '1000']);
  const notices: string[] = [];
  const sub = rt.orphaned$.subscribe((o) => notices.push(o.id));
  t.after(() => sub.unsubscribe());
  const waiting = rt.waitExit(m.id, AbortSignal.timeout(20_000));
  process.kill(m.conmonPid, 'SIGKILL');
  await waitUntil(async () => notices.includes(m.id));
  process.kill(m.pid, 'SIGKILL');
  const exit = await waiting;
  assert.equal(exit.exitCode, 255);
  assert.equal(exit.reason, 'Unknown');
});
