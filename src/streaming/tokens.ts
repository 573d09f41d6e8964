// Single-use tokens for streaming URLs, as kubelet's own streaming server hands out: the RPC
// stores the validated request under a random token, the HTTP request that presents it
// takes it out. A token works once and only within its time to live.
import { randomBytes } from 'node:crypto';
import { resourceExhausted } from './errors.js';

export const TOKEN_TTL_MS = 60_000;
/** Bounds memory if a client asks for URLs and never uses them. */
const MAX_PENDING_TOKENS = 1000;

interface Entry<T> {
  value: T;
  expiresAt: number;
}

export class TokenCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly ttlMs = TOKEN_TTL_MS,
    private readonly capacity = MAX_PENDING_TOKENS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Stores a request and returns the token that redeems it. */
  insert(value: T): string {
    this.evictExpired();
    if (this.entries.size >= this.capacity) {
      throw resourceExhausted(`${this.capacity} streaming requests are waiting for their clients; try again later`);
    }
    const token = randomBytes(18).toString('base64url');
    this.entries.set(token, { value, expiresAt: this.now() + this.ttlMs });
    return token;
  }

  /** The request for a token, removed so it cannot be used again; undefined if unknown or expired. */
  consume(token: string): T | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    this.entries.delete(token);
    return entry.expiresAt > this.now() ? entry.value : undefined;
  }

  get size(): number {
    return this.entries.size;
  }

  private evictExpired(): void {
    const now = this.now();
    for (const [token, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(token);
  }
}
