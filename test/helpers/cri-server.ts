// A real CRI server on a socket of the test's own that answers Version, for the tests of what
// sits in front of the handlers (the connection filter, reflection).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startCriServer } from '../../src/cri/server.js';
import { Readiness } from '../../src/cri/wrap.js';
import { silentLogger } from '../../src/log.js';

/** Starts the server; the test's end shuts it down and removes its directory. Returns the socket path. */
export async function startVersionServer(t: TestContext): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'crisp-cri-server-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'crisp.sock');
  const readiness = new Readiness();
  readiness.markReady();
  const server = await startCriServer({
    socketPath, logger: silentLogger, readiness, image: {},
    runtime: { Version: () => ({ version: '0.1.0', runtime_name: 'crisp', runtime_version: '9', runtime_api_version: 'v1' }) },
  });
  t.after(() => server.shutdown(100));
  return socketPath;
}
