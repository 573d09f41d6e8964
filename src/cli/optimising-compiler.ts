// The daemon's node starts without V8's optimising compiler (TurboFan; scripts/daemon-node-flags
// passes --no-turbofan) and crisp turns it on once its modules are loaded. Loading them runs the
// module loader's path and URL code hundreds of times, once per import, and V8 optimised a few
// of those functions for that one pass; its compiler's own code (~3.4 MiB of the node binary)
// then stayed in the RSS of a daemon that had done nothing else. Code that runs for pods (list
// encoding, protobuf, JSON, replay) is optimised as before.
import { setFlagsFromString } from 'node:v8';

/** Turns V8's optimising compiler on, if this process was started with it off (and only then). */
export function optimiseFromNowOn(execArgv: readonly string[] = process.execArgv): boolean {
  if (!execArgv.includes('--no-turbofan')) return false;
  setFlagsFromString('--turbofan');
  return true;
}
