// A real distribution registry (Debian's docker-registry) on 127.0.0.1 for tests, plus a small
// Node reverse proxy in front of it that adds what the bare registry does not: bearer-token
// auth with a token endpoint of its own, basic auth, and injected faults (5xx, resets, stalls,
// corrupted blobs). Everything listens on loopback only; stop() is idempotent.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function waitForRegistry(url: string, child: ChildProcess, stderr: () => string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr()}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer on ${url} within ${timeoutMs}ms: ${stderr()}`);
}

// Registries still running when the test process exits (a crashed test) are killed here.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) if (c.pid !== undefined && c.exitCode === null) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Starts docker-registry on a free loopback port with its own storage directory. */
export async function startRegistry(): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'crisp-test-registry-'));
  let child: ChildProcess | undefined;
  try {
    const port = await freePort();
    await mkdir(join(dir, 'data'));
    const config = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n');
    await writeFile(join(dir, 'config.yml'), config);
    let err = '';
    child = spawn(REGISTRY_BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    live.add(child);
    const url = `http://127.0.0.1:${port}`;
    await waitForRegistry(url, child, () => err);
    const c = child;
    let stopped = false;
    return {
      host: `127.0.0.1:${port}`,
      url,
      port,
      dir,
      pid: c.pid!,
      async stop() {
        if (stopped) return;
        stopped = true;
        await killAndWait(c);
        live.delete(c);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (child) {
      await killAndWait(child);
      live.delete(child);
    }
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// The proxy

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
  /** Which scheme the client authenticated with on this request, if any. */
  auth: 'bearer' | 'basic' | 'none';
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface InterceptContext {
  /** Sends this request to the registry and returns the whole answer, unsent to the client. */
  fetchUpstream(): Promise<UpstreamResponse>;
  /** Sends an upstream answer (perhaps altered) to the client. */
  reply(r: UpstreamResponse): void;
}

/** Returns true when it answered the request itself (the proxy then does nothing more). */
export type Interceptor = (req: IncomingMessage, res: ServerResponse, ctx: InterceptContext) => boolean | Promise<boolean>;

export interface ProxyOptions {
  /** `host:port` of the registry behind. */
  upstream: string;
  auth: 'none' | 'bearer' | 'basic';
  /** username → password, for basic auth and for the token endpoint. */
  users?: Record<string, string>;
  /** Whether the token endpoint gives tokens without credentials. Default false. */
  anonymousTokens?: boolean;
  /** OAuth2 refresh tokens (identity tokens) the token endpoint exchanges. */
  refreshTokens?: string[];
  /** Bearer tokens the registry accepts as they are (CRI registry_token). */
  staticTokens?: string[];
  /** Lifetime of issued tokens, seconds. Default 300. */
  tokenTtlSeconds?: number;
  intercept?: Interceptor;
}

export interface RegistryProxy {
  host: string;
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** How many tokens the token endpoint issued. */
  tokensIssued(): number;
  setInterceptor(i: Interceptor | undefined): void;
  stop(): Promise<void>;
}

const SERVICE = 'crisp-test-registry';

function repoOf(path: string): string | undefined {
  const m = /^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(path);
  return m?.[1];
}

function parseBasic(header: string | undefined): { user: string; pass: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? undefined : { user: decoded.slice(0, i), pass: decoded.slice(i + 1) };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Starts the proxy on a free loopback port. */
export async function startRegistryProxy(opts: ProxyOptions): Promise<RegistryProxy> {
  const users = opts.users ?? {};
  const issued = new Map<string, number>(); // token → expiry (ms)
  const requests: RecordedRequest[] = [];
  let interceptor = opts.intercept;
  let tokenCount = 0;
  let server: Server;
  let port = 0;

  const issue = (res: ServerResponse) => {
    const token = randomBytes(18).toString('base64url');
    const ttl = opts.tokenTtlSeconds ?? 300;
    issued.set(token, Date.now() + ttl * 1000);
    tokenCount++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: ttl, issued_at: new Date().toISOString() }));
  };

  const tokenEndpoint = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST') {
      const form = new URLSearchParams((await readBody(req)).toString('utf8'));
      if (form.get('grant_type') === 'refresh_token' && (opts.refreshTokens ?? []).includes(form.get('refresh_token') ?? '')) return issue(res);
      res.writeHead(401, { 'content-type': 'application/json' });
      return res.end('{"error":"invalid_grant"}');
    }
    const basic = parseBasic(req.headers.authorization);
    if (basic !== undefined) {
      if (users[basic.user] !== undefined && users[basic.user] === basic.pass) return issue(res);
      res.writeHead(401, { 'content-type': 'application/json' });
      return res.end('{"details":"incorrect username or password"}');
    }
    if (opts.anonymousTokens) return issue(res);
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end('{"details":"credentials required"}');
  };

  const authorized = (req: IncomingMessage): RecordedRequest['auth'] | false => {
    const h = req.headers.authorization;
    if (opts.auth === 'none') return h?.startsWith('Bearer ') ? 'bearer' : h?.startsWith('Basic ') ? 'basic' : 'none';
    if (opts.auth === 'basic') {
      const b = parseBasic(h);
      return b !== undefined && users[b.user] !== undefined && users[b.user] === b.pass ? 'basic' : false;
    }
    if (!h?.startsWith('Bearer ')) return false;
    const t = h.slice(7);
    if ((opts.staticTokens ?? []).includes(t)) return 'bearer';
    const exp = issued.get(t);
    return exp !== undefined && exp > Date.now() ? 'bearer' : false;
  };

  const challenge = (path: string): string => {
    if (opts.auth === 'basic') return 'Basic realm="crisp-test"';
    const repo = repoOf(path);
    return `Bearer realm="http://127.0.0.1:${port}/token",service="${SERVICE}"${repo ? `,scope="repository:${repo}:pull"` : ''}`;
  };

  const upstreamRequest = (req: IncomingMessage, body: Buffer | undefined, onResponse: (r: IncomingMessage) => void, onError: (e: Error) => void) => {
    const headers = { ...req.headers, host: opts.upstream };
    delete headers.authorization;
    const [h, p] = opts.upstream.split(':');
    const up = httpRequest({ host: h, port: Number(p), method: req.method, path: req.url, headers }, onResponse);
    up.on('error', onError);
    if (body !== undefined) up.end(body);
    else req.pipe(up);
  };

  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    let recorded = false;
    let auth: RecordedRequest['auth'] | false = 'none';
    const record = (status: number, how: RecordedRequest['auth']) => {
      recorded = true;
      requests.push({ method: req.method ?? 'GET', path, status, auth: how });
    };
    // Requests answered by an interceptor are recorded when their response ends.
    res.once('close', () => {
      if (!recorded) record(res.statusCode, auth === false ? 'none' : auth);
    });
    void (async () => {
      if (path === '/token') {
        await tokenEndpoint(req, res);
        record(res.statusCode, 'none');
        return;
      }
      auth = authorized(req);
      if (auth === false) {
        await readBody(req);
        res.writeHead(401, { 'www-authenticate': challenge(path), 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        record(401, 'none');
        return;
      }
      const ctx: InterceptContext = {
        fetchUpstream: () =>
          new Promise<UpstreamResponse>((resolve, reject) => {
            upstreamRequest(
              req,
              Buffer.alloc(0),
              (up) => {
                readBody(up).then((body) => resolve({ status: up.statusCode ?? 502, headers: up.headers, body }), reject);
              },
              reject,
            );
          }),
        reply: (r) => {
          const headers = { ...r.headers };
          delete headers['transfer-encoding'];
          headers['content-length'] = String(r.body.length);
          res.writeHead(r.status, headers);
          res.end(r.body);
        },
      };
      if (interceptor !== undefined && (await interceptor(req, res, ctx))) return;
      const how = auth;
      upstreamRequest(
        req,
        undefined,
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          record(up.statusCode ?? 502, how);
        },
        (e) => {
          res.writeHead(502);
          res.end(String(e.message));
          record(502, how);
        },
      );
    })().catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  let stopped = false;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    tokensIssued: () => tokenCount,
    setInterceptor: (i) => (interceptor = i),
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Faults for the interceptor

/** Answers `status` to the first `times` requests whose path matches, then lets them through. */
export function failFirst(pathPattern: RegExp, status: number, times: number): Interceptor & { hits: () => number } {
  let hits = 0;
  const fn = ((req: IncomingMessage, res: ServerResponse) => {
    if (!pathPattern.test(req.url ?? '') || hits >= times) return false;
    hits++;
    res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '0' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected failure' }] }));
    return true;
  }) as unknown as Interceptor & { hits: () => number };
  fn.hits = () => hits;
  return fn;
}

/** Cuts the connection of the first `times` matching requests after sending part of the body. */
export function resetMidBody(pathPattern: RegExp, times: number): Interceptor & { hits: () => number } {
  let hits = 0;
  const fn = (async (req: IncomingMessage, res: ServerResponse, ctx: InterceptContext) => {
    if (req.method !== 'GET' || !pathPattern.test(req.url ?? '') || hits >= times) return false;
    hits++;
    const up = await ctx.fetchUpstream();
    const headers = { ...up.headers };
    delete headers['transfer-encoding'];
    headers['content-length'] = String(up.body.length);
    res.writeHead(up.status, headers);
    res.write(up.body.subarray(0, Math.floor(up.body.length / 2)));
    res.socket?.destroy();
    return true;
  }) as unknown as Interceptor & { hits: () => number };
  fn.hits = () => hits;
  return fn;
}

/** For a matching GET: fetches the upstream answer and sends its headers with its whole length; undefined otherwise. */
async function upstreamHeadersFor(pathPattern: RegExp, req: IncomingMessage, res: ServerResponse, ctx: InterceptContext): Promise<UpstreamResponse | undefined> {
  if (req.method !== 'GET' || !pathPattern.test(req.url ?? '')) return undefined;
  const up = await ctx.fetchUpstream();
  const headers = { ...up.headers };
  delete headers['transfer-encoding'];
  headers['content-length'] = String(up.body.length);
  res.writeHead(up.status, headers);
  return up;
}

/**
 * Sends the headers and the first bytes of matching responses, then nothing more: the
 * connection stays open until the client gives up or the proxy stops.
 */
export function stallAfterHeaders(pathPattern: RegExp): Interceptor {
  return async (req, res, ctx) => {
    const up = await upstreamHeadersFor(pathPattern, req, res, ctx);
    if (!up) return false;
    res.write(up.body.subarray(0, Math.min(16, up.body.length)));
    return true;
  };
}

/**
 * Serves matching GETs one byte every `intervalMs`: bytes keep moving, so only a rate floor
 * ends such a pull. The drip stops when the client goes away.
 */
export function trickle(pathPattern: RegExp, intervalMs: number): Interceptor {
  return async (req, res, ctx) => {
    const up = await upstreamHeadersFor(pathPattern, req, res, ctx);
    if (!up) return false;
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed || at >= up.body.length) return clearInterval(timer), res.end();
      res.write(up.body.subarray(at, ++at));
    }, intervalMs);
    res.on('close', () => clearInterval(timer));
    return true;
  };
}

/** Serves the blob `digest` with one byte flipped: a registry serving corrupted content. */
export function corruptBlob(digest: string): Interceptor {
  return async (req, _res, ctx) => {
    if (req.method !== 'GET' || !(req.url ?? '').includes(`/blobs/${digest}`)) return false;
    const up = await ctx.fetchUpstream();
    if (up.status === 200 && up.body.length > 0) {
      const body = Buffer.from(up.body);
      const at = Math.floor(body.length / 2);
      body[at] = body[at]! ^ 0xff;
      ctx.reply({ ...up, body });
    } else {
      ctx.reply(up);
    }
    return true;
  };
}

/** Runs interceptors in order; the first to answer wins. */
export function chain(...interceptors: Interceptor[]): Interceptor {
  return async (req, res, ctx) => {
    for (const i of interceptors) if (await i(req, res, ctx)) return true;
    return false;
  };
}
