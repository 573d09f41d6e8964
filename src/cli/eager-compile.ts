// V8 compiles a function the first time it runs, not when its module loads. For the daemon that
// put the compiling of the whole pod path (validation, the planners, the driver, CNI, the
// machines: ~150 functions) into the first RunPodSandbox after every start, which took 15–20 ms
// of the event loop's CPU against 6–12 for the calls after it (12–17 with this). `crisp daemon`
// loads crisp's own modules with lazy compilation off, so each of their functions is compiled
// as its module loads. The packages they import are loaded before, as usual: compiling all of
// their code too (node's `--no-lazy`) cost 4 MiB of RSS, where crisp's own cost 1–2 MiB.
import { setFlagsFromString } from 'node:v8';

/**
 * The packages crisp's modules import as they load (statically), as they name them; those
 * imported only on first use (tracing's, ws, node-pty, reflection) are not here. A unit test
 * holds this list to the daemon's imports.
 */
export const LOAD_TIME_DEPENDENCIES: readonly string[] = [
  '@grpc/grpc-js',
  'better-sqlite3',
  'nanoid',
  'pino',
  'protobufjs',
  'rxjs/internal/Subject',
  'rxjs/internal/operators/filter',
  'smol-toml',
  'xstate',
];

/**
 * Loads `dependencies` as usual, then runs `load` (which imports modules) with V8's lazy
 * compilation off, and turns it back on: modules imported later compile lazily again.
 */
export async function loadCompiled<T>(load: () => Promise<T>, dependencies: readonly string[] = LOAD_TIME_DEPENDENCIES): Promise<T> {
  await Promise.all(dependencies.map((name) => import(name)));
  setFlagsFromString('--no-lazy');
  try {
    return await load();
  } finally {
    setFlagsFromString('--lazy');
  }
}
