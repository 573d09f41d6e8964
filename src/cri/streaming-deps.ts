import type { CriContext } from './context.js';
import type { StreamingServer } from '../streaming/server.js';

/** What the Exec, Attach and PortForward handlers need: the log, and the server that issues URLs. */
export interface StreamingDeps {
  ctx: CriContext;
  server: StreamingServer;
}
