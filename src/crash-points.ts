// Fault injection for the crash-safety tests: named points in every multi-step operation where
// the process can be made to die at once, with no cleanup (what a SIGKILL or power cut does).
// Armed only by the test-only environment variable CRISP_TEST_CRASH_AT=<point>; read once, so
// a disarmed point costs one string comparison against undefined.
//
// Names: `<kind>:<step>:before` (the step's effect is about to start; the previous fact is
// committed) and `<kind>:<step>:after` (the effect is done, its fact not yet recorded), from
// the StreamDriver; `pull:*` from the image pull path; `runtime:conmon-launched` inside a runtime
// create, after conmon and runc made the container and before crisp's record of it is written.

export const CRASH_ENV = 'CRISP_TEST_CRASH_AT';

const armed: string | undefined = process.env[CRASH_ENV] || undefined;

/** Dies here, at once and without cleanup, if this is the armed point. */
export function crashPoint(name: string): void {
  if (armed === undefined || armed !== name) return;
  // stderr is unbuffered for a file or pipe, so the tests see which point fired.
  process.stderr.write(`crisp: crash point ${name} reached; dying\n`);
  process.kill(process.pid, 'SIGKILL');
}

