import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerFiles } from '../../src/actors/monitor/container-records.js';

function scratch(t: { after(fn: () => void): void }): { run: string; files: ContainerFiles } {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-records-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { run: join(dir, 'run'), files: new ContainerFiles(join(dir, 'run'), join(dir, 'exits')) };
}

test('a container counts as created once runc and conmon have both written their pid files', (t) => {
  const { run, files } = scratch(t);
  assert.deepEqual(files.list(), [], 'a missing run dir lists nothing');
  mkdirSync(join(run, 'c1'), { recursive: true });
  writeFileSync(join(run, 'c1', 'intent.json'), JSON.stringify({ version: 1, id: 'c1', bundle: '/b', logPath: '/l' }));
  assert.deepEqual(files.list(), ['c1'], 'the journal alone names the id (a create cut short)');
  assert.equal(files.created('c1'), null);
  writeFileSync(join(run, 'c1', 'conmon.pid'), '4242\n');
  assert.equal(files.created('c1'), null, 'conmon runs, runc has not made the container yet');
  writeFileSync(join(run, 'c1', 'pidfile'), '4343');
  assert.deepEqual(files.created('c1'), { pid: 4343, conmonPid: 4242 });
  writeFileSync(join(run, 'c1', 'pidfile'), 'garbage');
  assert.equal(files.created('c1'), null, 'an unreadable pid is no pid');
  mkdirSync(join(run, 'no-journal'));
  mkdirSync(join(run, 'attach'));
  assert.deepEqual(files.list(), ['c1'], 'directories without a journal, and the attach links, are not containers');
});

test('the journal of a container an older crisp made takes the log path and conmon cgroup from its meta.json', async (t) => {
  const { run, files } = scratch(t);
  mkdirSync(join(run, 'old'), { recursive: true });
  writeFileSync(join(run, 'old', 'intent.json'), JSON.stringify({ version: 1, id: 'old', bundle: '/b', cgroupsPath: '/crisp/crisp-old' }));
  writeFileSync(join(run, 'old', 'meta.json'), JSON.stringify({ version: 1, id: 'old', bundle: '/b', logPath: '/var/log/old.log', pid: 1, conmonPid: 2, conmonCgroup: '/crisp/crisp-conmon-old' }));
  assert.deepEqual(files.journal('old'), { version: 1, id: 'old', bundle: '/b', cgroupsPath: '/crisp/crisp-old', logPath: '/var/log/old.log', conmonCgroup: '/crisp/crisp-conmon-old' });
  assert.equal(files.journal('missing'), null);
  assert.throws(() => files.journal('../escape'), /container id/);
});
