// Entry point of the threads that unpack layers, so that a large layer's many synchronous
// file operations never stall the daemon's event loop. One job at a time per thread.

import { parentPort } from 'node:worker_threads';
import { asCrispError, diskFullAt } from '../../errors.js';
import { unpackLayer, type UnpackJob } from './unpack.js';

export type WorkerReply =
  | { ok: true; diffId: string; size: number; inodes: number }
  | { ok: false; kind: string | undefined; message: string };

parentPort!.on('message', (job: UnpackJob) => {
  unpackLayer(job).then(
    (outcome) => parentPort!.postMessage({ ok: true, ...outcome } satisfies WorkerReply),
    (err: unknown) => {
      const failure = asCrispError(diskFullAt(err, `layer directory ${job.diffDir}`));
      parentPort!.postMessage({ ok: false, kind: failure.kind === 'Internal' ? undefined : failure.kind, message: failure.message } satisfies WorkerReply);
    },
  );
});
