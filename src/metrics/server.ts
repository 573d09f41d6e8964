// GET /metrics over plain HTTP, for Prometheus. Bound to the configured host:port only.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsRegistry } from './exposition.js';
import { invalidArgument, messageOf } from '../errors.js';
import type { Logger } from '../log.js';

export interface MetricsServer {
  /** The address actually bound, "host:port". */
  address: string;
  /** Stops listening and ends open connections; idempotent. */
  close(): Promise<void>;
}

export function parseListenAddress(address: string, field = 'metrics_address'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw invalidArgument(`${field}: ${JSON.stringify(address)} is not host:port with a port from 1 to 65535`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export async function startMetricsServer(address: string, registry: MetricsRegistry, logger: Logger): Promise<MetricsServer> {
  const { host, port } = parseListenAddress(address);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    let body: string;
    try {
      body = registry.metrics();
    } catch (err) {
      logger.error({ err }, 'collecting metrics failed');
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${messageOf(err)}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const shown = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  logger.info({ address: shown }, 'metrics server listening');
  let closing: Promise<void> | undefined;
  return {
    address: shown,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
