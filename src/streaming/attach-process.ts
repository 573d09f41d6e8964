// Attach to a container's main process through conmon: its attach socket carries the
// process's output as records whose first byte names the pipe (2 stdout, 3 stderr) and
// takes stdin as plain records; a window size goes to conmon's control fifo ("1 rows cols").
// Leaving an attach session detaches; it never signals the container.
import { open } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { PassThrough } from 'node:stream';
import { failedPrecondition } from '../errors.js';
import { clampSize, type StreamedProcess, type TerminalSize } from './exec-process.js';
import { RecordSplitter, openSeqpacket } from './relay.js';

const STDOUT_PIPE = 2;
const STDERR_PIPE = 3;
const RESIZE_EVENT = 1;

export function resizeMessage(size: TerminalSize): string {
  return `${RESIZE_EVENT} ${clampSize(size.height)} ${clampSize(size.width)}\n`;
}

export async function startAttach(o: { containerId: string; socketPath: string; ctlPath: string; stdin: boolean }): Promise<StreamedProcess> {
  const relay = openSeqpacket(o.socketPath);
  try {
    await relay.ready;
  } catch (err) {
    relay.destroy();
    throw failedPrecondition(`container ${o.containerId}: cannot attach (${err instanceof Error ? err.message : String(err)})`);
  }
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const splitter = new RecordSplitter();
  relay.on('data', (chunk: Buffer) => {
    for (const record of splitter.push(chunk)) {
      if (record[0] === STDOUT_PIPE) stdout.write(record.subarray(1));
      else if (record[0] === STDERR_PIPE) stderr.write(record.subarray(1));
    }
  });
  const exited = new Promise<number>((resolve) => {
    relay.once('end', () => {
      stdout.end();
      stderr.end();
      resolve(0);
    });
    relay.once('close', () => {
      stdout.end();
      stderr.end();
      resolve(0);
    });
  });
  if (!o.stdin) relay.end();
  return {
    stdin: o.stdin ? relay : null,
    stdout,
    stderr,
    exited,
    async resize(size) {
      let fifo;
      try {
        fifo = await open(o.ctlPath, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      } catch {
        return; // conmon gone: the container has ended, and with it the session
      }
      try {
        await fifo.write(resizeMessage(size));
      } finally {
        await fifo.close();
      }
    },
    async kill() {
      relay.destroy();
      await exited;
    },
  };
}
