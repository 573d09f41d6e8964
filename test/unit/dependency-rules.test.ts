// The layering DESIGN.md states, checked on every `npm test`: no import circle anywhere in src/
// (type-only imports count), and the leaves stay leaves. The imports are read as text
// (test/helpers/imports.ts), every one of a relative path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { importsOf } from '../helpers/imports.js';

const SRC = join(PACKAGE_ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'gen' ? [] : sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** src-relative file → the src-relative files it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const targets: string[] = [];
    for (const { spec } of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      if (spec.includes('/proto/gen/')) continue; // generated protobuf types: data shapes, not code
      targets.push(relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, '.ts'));
    }
    graph.set(relative(SRC, file), targets);
  }
  return graph;
}

test('src/ has no import circle', () => {
  const graph = importGraph();
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      circles.push([...path.slice(path.indexOf(file)), file].join(' → '));
      return;
    }
    state.set(file, 'open');
    for (const next of graph.get(file) ?? []) if (graph.has(next)) visit(next, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(circles, []);
});

test('leaves import nothing above them', () => {
  const graph = importGraph();
  const rules: [RegExp, RegExp, string][] = [
    [/^host\//, /^(?!host\/|errors\.ts$|log\.ts$|paths\.ts$)/, 'host/ runs programs for everyone and imports only errors, log, paths (where the package keeps its files) and itself'],
    [/^streaming\//, /^cri\//, 'streaming/ does not import the CRI layer (cri/ assembles its handlers)'],
    [/^(machines|events)\//, /^(cri|tracing|streaming)\//, 'machines/ and events/ do not import the CRI layer, tracing or streaming'],
    [/^actors\/(image-pull|storage)\//, /^cri\//, 'the image slice and storage do not import the CRI layer'],
    [/^actors\//, /^cri\//, 'actors do not import the CRI layer: src/cri assembles every handler table and hands the actors what they use'],
    [/^cri\//, /^tracing\//, 'cri/ reaches tracing only through the RpcTracer interface'],
    [/^actors\/(network|monitor|storage|spec)\//, /^actors\/(sandbox|container)\//,
      'the node drivers (CNI and namespaces, runc and conmon, layers and overlays, the OCI spec) import nothing of the pod and container lifecycles'],
    [/^machines\//, /^actors\//,
      'machines/ import no effects: the rules they share with the actors live in machines/ (pod-rules.ts, container-rules.ts)'],
  ];
  const broken: string[] = [];
  for (const [file, targets] of graph) {
    for (const [from, to, why] of rules) {
      if (!from.test(file)) continue;
      for (const target of targets) if (to.test(target)) broken.push(`${file} → ${target}: ${why}`);
    }
  }
  assert.deepEqual(broken, []);
});
