import { mountsAt } from '../../src/host/mountinfo.js';

/** Whether anything is mounted at `path`, by the mount table (what a test checks a release against). */
export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountsAt(path)).length > 0;
}
