// Writing the spec into an OCI bundle directory, atomically, so a crash never leaves a torn
// config.json for runc to read; and removing it again. Written synchronously (a few KiB, where
// the thread pool's round trip costs more than the write) and not flushed: a spec matters only
// while its container can run, and no container outlives the power loss a flush would guard
// against (the log itself keeps synchronous=NORMAL for the same reason).

import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RuntimeSpec } from './oci-types.js';

const SPEC_FILE = 'config.json';

/** Writes <bundleDir>/config.json (creating bundleDir, mode 0700) and returns its path. */
export async function writeSpecFile(bundleDir: string, spec: RuntimeSpec): Promise<string> {
  mkdirSync(bundleDir, { recursive: true, mode: 0o700 });
  const target = path.join(bundleDir, SPEC_FILE);
  const temp = `${target}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, `${JSON.stringify(spec, null, 2)}\n`, { mode: 0o600 });
    renameSync(temp, target);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  return target;
}
