// A bind mount with rshared or rslave propagation only receives mounts if its source sits on a
// shared host mount. As CRI-O does, the host mount holding the path is made shared when it is
// not (rslave would also accept a slave source, but a private one never propagates).
import { failedPrecondition, internal } from '../../errors.js';
import { describeFailure, run as runCommand } from '../../host/run.js';
import type { PropagationNeed } from '../spec/input.js';

async function run(file: string, args: string[]): Promise<{ stdout: string }> {
  const r = await runCommand(file, args);
  if (r.code !== 0) throw internal(describeFailure(file, args, r));
  return r;
}

async function mountOf(path: string): Promise<{ target: string; propagation: string }> {
  const { stdout } = await run('findmnt', ['--noheadings', '--output', 'TARGET,PROPAGATION', '--target', path]);
  const [target, propagation] = stdout.trim().split(/\s+/);
  if (!target || !propagation) throw failedPrecondition(`cannot tell which mount holds ${path}`);
  return { target, propagation };
}

export async function ensureHostPropagation(hostPath: string, need: PropagationNeed): Promise<void> {
  const mount = await mountOf(hostPath);
  const ok = need === 'shared' ? mount.propagation.includes('shared') : /shared|slave/.test(mount.propagation);
  if (!ok) await run('mount', ['--make-rshared', mount.target]);
}
