import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { optimiseFromNowOn } from '../../src/cli/optimising-compiler.js';
import { PACKAGE_ROOT } from '../../src/paths.js';

const DAEMON_NODE_FLAGS = readFileSync(join(PACKAGE_ROOT, 'scripts', 'daemon-node-flags'), 'utf8').split(/\s+/).filter(Boolean);

// A loop V8 optimises at once, run before and after optimiseFromNowOn in a node started with the
// daemon's flags; --trace-opt says what TurboFan compiled and when.
const PROGRAM = `
import { optimiseFromNowOn } from ${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'src', 'cli', 'optimising-compiler.ts')).href)};
function before(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }
function after(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 5; return s; }
for (let i = 0; i < 300; i++) before(100000);
console.log('turned on: ' + optimiseFromNowOn());
for (let i = 0; i < 300; i++) after(100000);
`;

test("the daemon's node flags start V8 without TurboFan and optimiseFromNowOn turns it on", () => {
  assert.ok(DAEMON_NODE_FLAGS.includes('--no-turbofan'), `scripts/daemon-node-flags: ${DAEMON_NODE_FLAGS.join(' ')}`);
  const run = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, '--trace-opt', '--import', 'tsx', '--input-type=module', '-e', PROGRAM], { cwd: PACKAGE_ROOT, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const [early, late] = run.stdout.split('turned on: true');
  assert.ok(late !== undefined, run.stdout);
  assert.doesNotMatch(early!, /completed optimizing .*<JSFunction before/, 'nothing optimised before');
  assert.match(late, /completed optimizing .*<JSFunction after .*TURBOFAN/, 'optimised after');
});

test('optimiseFromNowOn leaves a node started with TurboFan as it is', () => {
  assert.equal(optimiseFromNowOn(['--max-semi-space-size=2']), false);
});
