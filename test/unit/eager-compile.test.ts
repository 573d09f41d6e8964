// `crisp daemon` compiles crisp's own modules as they load (src/cli/eager-compile.ts): the list
// of packages loaded before them must be what those modules import, and the switch must reach
// exactly the modules loaded inside it. V8's function-event log says which functions were compiled:
// one that never runs is compiled only if its module was loaded with lazy compilation off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { LOAD_TIME_DEPENDENCIES } from '../../src/cli/eager-compile.js';
import { importsOf } from '../helpers/imports.js';

/** The packages the modules statically reachable from `entry` import as they load. */
function loadTimePackages(entry: string): string[] {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const { spec, typeOnly, dynamic } of importsOf(readFileSync(file, 'utf8'))) {
      if (typeOnly || dynamic || spec.startsWith('node:')) continue;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
      else packages.add(spec);
    }
  };
  visit(entry);
  return [...packages].sort();
}

test("the packages loaded before crisp's modules are the ones the daemon's modules import as they load", () => {
  assert.deepEqual(loadTimePackages(join(PACKAGE_ROOT, 'src', 'cli', 'commands.ts')), [...LOAD_TIME_DEPENDENCIES].sort());
});

test('loadCompiled compiles the modules loaded inside it, and neither the dependencies loaded before nor modules loaded after', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-eager-'));
  try {
    const url = (name: string) => pathToFileURL(join(dir, name)).href;
    writeFileSync(join(dir, 'dep.mjs'), 'export function depNeverRun() { return 1; }\n');
    writeFileSync(join(dir, 'own.mjs'), `import { depNeverRun } from '${url('dep.mjs')}';\nexport function ownNeverRun() { return depNeverRun(); }\n`);
    writeFileSync(join(dir, 'late.mjs'), 'export function lateNeverRun() { return 3; }\n');
    writeFileSync(join(dir, 'main.mjs'), [
      `const { loadCompiled } = await import('${pathToFileURL(join(PACKAGE_ROOT, 'src', 'cli', 'eager-compile.ts')).href}');`,
      `await loadCompiled(() => import('${url('own.mjs')}'), ['${url('dep.mjs')}']);`,
      `await import('${url('late.mjs')}');`,
    ].join('\n'));
    // One log per isolate: tsx's hooks run on a loader thread with an isolate of its own, and two
    // isolates writing one file (--no-logfile-per-isolate) overwrite each other's lines. The log
    // files are named isolate-<address>-<pid>-v8.log in the working directory.
    const run = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--log-function-events', '--logfile=v8.log', join(dir, 'main.mjs')], { cwd: dir, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const logs = readdirSync(dir).filter((f) => f.startsWith('isolate-') && f.endsWith('-v8.log'));
    assert.ok(logs.length >= 1, `V8 wrote no log in ${dir}`);
    // function,interpreter,<script>,<start>,<end>,<ms>,<timestamp>,<name>: bytecode was made for it.
    const lines = logs.flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'));
    const compiled = new Set(lines.filter((l) => l.startsWith('function,interpreter,')).map((l) => l.split(',').slice(7).join(',')));
    assert.ok(compiled.has('ownNeverRun'), 'a function of a module loaded inside loadCompiled is compiled though it never runs');
    assert.ok(!compiled.has('depNeverRun'), 'the dependencies are loaded before, lazily');
    assert.ok(!compiled.has('lateNeverRun'), 'lazy compilation is back on afterwards');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
