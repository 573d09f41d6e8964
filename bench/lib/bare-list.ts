// The floor of the List benches: bench/fixtures/bare-list-server.mjs (grpc-js with the same
// proto, nothing else on its event loop) answering List calls with the responses in a file.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { call, criClients } from '../../test/helpers/cri-client.js';
import { PACKAGE_ROOT } from '../../src/paths.js';

/** Starts the server on `socket` and resolves once it answers; it is killed if it never does. */
export async function startBareListServer(socket: string, responsesFile: string): Promise<ChildProcess> {
  const server = spawn(process.execPath, [join(PACKAGE_ROOT, 'bench', 'fixtures', 'bare-list-server.mjs'), socket, responsesFile], { stdio: 'ignore' });
  const rt = criClients(socket).runtime;
  try {
    for (let i = 0; ; i++) {
      try {
        await call(rt, rt.ListPodSandbox, {}, 1000);
        return server;
      } catch (err) {
        if (i > 100) {
          server.kill();
          throw err;
        }
        await sleep(100);
      }
    }
  } finally {
    rt.close();
  }
}
