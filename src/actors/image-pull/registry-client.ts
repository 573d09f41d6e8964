// The distribution (OCI) registry API over Node's fetch: /v2/ ping, token and basic auth,
// manifests with digest verification, streamed blobs, bounded retries of transient failures.
// Credentials and tokens live only in request headers: never in errors, never in logs.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { CrispError, failedPrecondition, notFound, unavailable, invalidArgument } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { basicAuthorization, parseWwwAuthenticate, type Challenge, type Credentials } from './auth.js';
import { MANIFEST_ACCEPT } from './manifest.js';
import { sleep } from '../../async.js';

export interface RetryPolicy {
  /** Total tries of one request, first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 200, maxDelayMs: 5000 };

export interface RegistryClientOptions {
  logger?: Logger;
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
  /** Largest manifest accepted, in bytes (a manifest is held in memory). */
  maxManifestBytes?: number;
}

export interface RegistryEndpoint {
  /** `host[:port]` */
  host: string;
  repository: string;
  /** Plain HTTP instead of HTTPS. */
  insecure: boolean;
}

export interface FetchedManifest {
  digest: string;
  /** The Content-Type the registry sent (the document's own mediaType may refine it). */
  contentType: string | undefined;
  body: Buffer;
}

export interface BlobResponse {
  /** Content-Length when the registry sent one. */
  size: number | undefined;
  body: AsyncIterable<Uint8Array>;
}

/**
 * A failure worth another try (connection reset, 5xx, 429, a body cut short). Raised by blob
 * bodies mid-stream so that the caller, which owns the half-received data, can retry.
 */
export class TransientRegistryError extends CrispError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('Unavailable', message, options);
  }
}


/** The errno-style code under a fetch failure (`ECONNRESET`, `UND_ERR_SOCKET`...), for messages. */
function networkCause(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
    e = e.cause;
  }
  return err instanceof Error ? err.message : String(err);
}

export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterHeader?: string | null): number {
  const retryAfter = retryAfterHeader ? Number(retryAfterHeader) : NaN;
  if (Number.isFinite(retryAfter) && retryAfter >= 0) return Math.min(retryAfter * 1000, policy.maxDelayMs);
  const exp = Math.min(policy.baseDelayMs * 2 ** attempt, policy.maxDelayMs);
  return exp / 2 + Math.random() * (exp / 2);
}

export class RegistryClient {
  readonly logger: Logger;
  readonly retry: RetryPolicy;
  readonly userAgent: string;
  readonly maxManifestBytes: number;

  constructor(opts: RegistryClientOptions = {}) {
    this.logger = opts.logger ?? silentLogger;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.userAgent = opts.userAgent ?? 'crisp/0.1';
    this.maxManifestBytes = opts.maxManifestBytes ?? 4 * 1024 * 1024;
  }

  session(endpoint: RegistryEndpoint, credentials: Credentials): RegistrySession {
    return new RegistrySession(this, endpoint, credentials);
  }
}

/** Talks to one repository on one registry with one set of credentials; caches its token. */
export class RegistrySession {
  private authorization: string | undefined;
  private authorizationExpires = Infinity;
  private challenge: Challenge | undefined;
  private pinged = false;
  readonly baseUrl: string;
  private readonly log: Logger;

  constructor(
    private readonly client: RegistryClient,
    readonly endpoint: RegistryEndpoint,
    private readonly credentials: Credentials,
  ) {
    this.baseUrl = `${endpoint.insecure ? 'http' : 'https'}://${endpoint.host}`;
    this.log = client.logger.child({ registry: endpoint.host, repository: endpoint.repository });
  }

  private get scope(): string {
    return `repository:${this.endpoint.repository}:pull`;
  }

  /** What a message calls this registry: host and repository, never credentials. */
  private where(what: string): string {
    return `${what} from ${this.endpoint.host}/${this.endpoint.repository}`;
  }

  /**
   * One HTTP exchange with retries of transient failures. Answers the response of the last
   * try, or throws unavailable naming the last failure once the tries are used up.
   */
  private async send(url: string, init: RequestInit, what: string, signal?: AbortSignal): Promise<Response> {
    const policy = this.client.retry;
    let lastFailure = '';
    for (let attempt = 0; attempt < policy.attempts; attempt++) {
      let retryAfter: string | null = null;
      try {
        const res = await fetch(url, { ...init, signal, redirect: 'follow' });
        if (res.status < 500 && res.status !== 429) return res;
        lastFailure = `HTTP ${res.status}`;
        retryAfter = res.headers.get('retry-after');
        await res.body?.cancel().catch(() => {});
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        lastFailure = `connection failed (${networkCause(err)})`;
      }
      this.log.debug({ what, attempt: attempt + 1, failure: lastFailure }, 'registry request failed, may retry');
      if (attempt + 1 < policy.attempts) await sleep(backoffDelay(policy, attempt, retryAfter), signal);
    }
    throw unavailable(`${this.where(what)}: ${lastFailure} after ${policy.attempts} attempts`);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { 'user-agent': this.client.userAgent, ...extra };
    if (this.authorization !== undefined && Date.now() < this.authorizationExpires) h['authorization'] = this.authorization;
    return h;
  }

  /** GET /v2/: finds out whether and how the registry wants us to authenticate. */
  async ping(signal?: AbortSignal): Promise<void> {
    const res = await this.send(`${this.baseUrl}/v2/`, { headers: { 'user-agent': this.client.userAgent } }, 'ping', signal);
    await res.body?.cancel().catch(() => {});
    if (res.status === 401) {
      this.challenge = pickChallenge(res.headers.get('www-authenticate'));
      if (this.challenge === undefined) throw failedPrecondition(`${this.where('ping')}: 401 without a usable WWW-Authenticate challenge`);
    } else if (res.status === 404) {
      throw failedPrecondition(`${this.where('ping')}: ${this.baseUrl}/v2/ answered 404: not a distribution (v2) registry`);
    } else if (!res.ok) {
      throw failedPrecondition(`${this.where('ping')}: /v2/ answered HTTP ${res.status}`);
    }
    this.pinged = true;
  }

  /** Obtains the Authorization header value the challenge asks for. */
  private async authenticate(challenge: Challenge, signal?: AbortSignal): Promise<void> {
    const c = this.credentials;
    if (challenge.scheme === 'basic') {
      if (c.kind !== 'basic') throw failedPrecondition(`${this.where('authentication')}: registry requires a username and password (401)`);
      this.authorization = basicAuthorization(c.username, c.password);
      this.authorizationExpires = Infinity;
      return;
    }
    if (challenge.scheme !== 'bearer') throw failedPrecondition(`${this.where('authentication')}: unsupported auth scheme ${challenge.scheme}`);
    if (c.kind === 'registryToken') {
      this.authorization = `Bearer ${c.token}`;
      this.authorizationExpires = Infinity;
      return;
    }
    const realm = challenge.params['realm'];
    if (realm === undefined) throw failedPrecondition(`${this.where('authentication')}: bearer challenge without a realm`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw failedPrecondition(`${this.where('authentication')}: bearer realm is not a URL`);
    }
    if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:') {
      throw failedPrecondition(`${this.where('authentication')}: bearer realm must be http(s)`);
    }
    const service = challenge.params['service'];
    // The registry may name a wider scope (e.g. push); we only ever need pull on our repository.
    const scope = this.scope;
    let res: Response;
    if (c.kind === 'identityToken') {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.token, client_id: 'crisp', scope });
      if (service !== undefined) form.set('service', service);
      res = await this.send(
        realmUrl.toString(),
        { method: 'POST', headers: { 'user-agent': this.client.userAgent, 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() },
        'token',
        signal,
      );
    } else {
      if (service !== undefined) realmUrl.searchParams.set('service', service);
      realmUrl.searchParams.set('scope', scope);
      const headers: Record<string, string> = { 'user-agent': this.client.userAgent };
      if (c.kind === 'basic') {
        headers['authorization'] = basicAuthorization(c.username, c.password);
        realmUrl.searchParams.set('account', c.username);
      }
      res = await this.send(realmUrl.toString(), { headers }, 'token', signal);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel().catch(() => {});
      throw failedPrecondition(`${this.where('token')}: the token endpoint refused the credentials (HTTP ${res.status})`);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw failedPrecondition(`${this.where('token')}: the token endpoint answered HTTP ${res.status}`);
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = (await res.json()) as typeof body;
    } catch {
      throw failedPrecondition(`${this.where('token')}: the token endpoint answered something other than JSON`);
    }
    const token = typeof body.token === 'string' && body.token !== '' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '') throw failedPrecondition(`${this.where('token')}: the token endpoint answered no token`);
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    this.authorization = `Bearer ${token}`;
    // Renew a little early so a token never expires between our check and the registry's.
    this.authorizationExpires = Date.now() + Math.max(expiresIn - 5, 1) * 1000;
  }

  /** A GET that authenticates on demand and maps 401/403/404 to errors saying which. */
  private async authorizedGet(path: string, accept: string | undefined, what: string, signal?: AbortSignal): Promise<Response> {
    if (!this.pinged) await this.ping(signal);
    if (this.challenge !== undefined && (this.authorization === undefined || Date.now() >= this.authorizationExpires)) {
      await this.authenticate(this.challenge, signal);
    }
    const url = `${this.baseUrl}/v2/${this.endpoint.repository}/${path}`;
    const extra = accept !== undefined ? { accept } : undefined;
    let res = await this.send(url, { headers: this.headers(extra) }, what, signal);
    if (res.status === 401) {
      // A token can expire or be too narrow: take the fresh challenge and try once more.
      await res.body?.cancel().catch(() => {});
      const challenge = pickChallenge(res.headers.get('www-authenticate'));
      if (challenge === undefined) throw failedPrecondition(`${this.where(what)}: unauthorized (HTTP 401)`);
      this.challenge = challenge;
      await this.authenticate(challenge, signal);
      res = await this.send(url, { headers: this.headers(extra) }, what, signal);
    }
    if (res.ok) return res;
    const detail = await errorDetail(res);
    if (res.status === 401) throw failedPrecondition(`${this.where(what)}: unauthorized (HTTP 401)${detail}`);
    if (res.status === 403) throw failedPrecondition(`${this.where(what)}: access denied (HTTP 403)${detail}`);
    if (res.status === 404) throw notFound(`${this.where(what)}: not found (HTTP 404)${detail}`);
    throw failedPrecondition(`${this.where(what)}: HTTP ${res.status}${detail}`);
  }

  /**
   * Fetches a manifest by tag or digest and verifies its digest: against the reference when
   * it is one, and against the registry's Docker-Content-Digest header when sent.
   */
  async getManifest(reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const what = `manifest ${reference}`;
    const res = await this.authorizedGet(`manifests/${reference}`, MANIFEST_ACCEPT.join(', '), what, signal);
    const declared = Number(res.headers.get('content-length') ?? NaN);
    const limit = this.client.maxManifestBytes;
    if (Number.isFinite(declared) && declared > limit) {
      await res.body?.cancel().catch(() => {});
      throw failedPrecondition(`${this.where(what)}: manifest of ${declared} bytes exceeds the ${limit}-byte limit`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream<Uint8Array>)) {
        total += (chunk as Buffer).length;
        if (total > limit) throw failedPrecondition(`${this.where(what)}: manifest exceeds the ${limit}-byte limit`);
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof CrispError) throw err;
      throw new TransientRegistryError(`${this.where(what)}: connection failed while reading (${networkCause(err)})`, { cause: err });
    }
    const body = Buffer.concat(chunks);
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    if (reference.includes(':')) {
      if (!reference.startsWith('sha256:')) throw invalidArgument(`${this.where(what)}: only sha256 digests are supported`);
      if (reference !== digest) throw failedPrecondition(`${this.where(what)}: manifest digest mismatch: content hashes to ${digest}`);
    }
    const headerDigest = res.headers.get('docker-content-digest');
    if (headerDigest !== null && headerDigest.startsWith('sha256:') && headerDigest !== digest) {
      throw failedPrecondition(`${this.where(what)}: manifest digest mismatch: registry says ${headerDigest}, content hashes to ${digest}`);
    }
    return { digest, contentType: res.headers.get('content-type') ?? undefined, body };
  }

  /**
   * Opens a blob for streaming, following redirects (to a CDN or object store). The body's
   * read errors surface as TransientRegistryError; digest checks are the consumer's job.
   */
  async getBlob(digest: string, signal?: AbortSignal): Promise<BlobResponse> {
    const what = `blob ${digest}`;
    const res = await this.authorizedGet(`blobs/${digest}`, undefined, what, signal);
    const len = Number(res.headers.get('content-length') ?? NaN);
    const where = this.where(what);
    const stream = Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream<Uint8Array>);
    async function* body(): AsyncIterable<Uint8Array> {
      try {
        for await (const chunk of stream) yield chunk as Uint8Array;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw new TransientRegistryError(`${where}: connection failed while downloading (${networkCause(err)})`, { cause: err });
      } finally {
        stream.destroy();
      }
    }
    return { size: Number.isFinite(len) ? len : undefined, body: body() };
  }
}

/** Prefers a bearer challenge over basic when a registry offers both. */
function pickChallenge(header: string | null): Challenge | undefined {
  if (header === null) return undefined;
  let challenges: Challenge[];
  try {
    challenges = parseWwwAuthenticate(header);
  } catch {
    return undefined;
  }
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

/** The registry's own error code (`MANIFEST_UNKNOWN`...), for messages; never the raw body. */
async function errorDetail(res: Response): Promise<string> {
  try {
    const text = await res.text();
    const doc = JSON.parse(text) as { errors?: { code?: unknown }[] };
    const codes = (doc.errors ?? []).map((e) => e.code).filter((c): c is string => typeof c === 'string' && /^[A-Z_]+$/.test(c));
    return codes.length > 0 ? ` (${codes.join(', ')})` : '';
  } catch {
    return '';
  }
}
