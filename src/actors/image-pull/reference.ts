// Image references, parsed and normalised the way the container ecosystem does it (the
// docker/distribution reference grammar), so that `busybox`, `library/busybox` and
// `docker.io/library/busybox:latest` all name the same image in crisp as in kubelet,
// containerd and CRI-O.

import { clip, invalidArgument } from '../../errors.js';

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';

const NAME_TOTAL_MAX = 255;

const alnum = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
const host = `(?:${domainName}|${ipv6})`;
const domainRe = new RegExp(`^${host}(?::[0-9]+)?$`);
const pathRe = new RegExp(`^${pathComponent}(?:/${pathComponent})*$`);
const tagRe = /^[\w][\w.-]{0,127}$/;
const digestRe = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const sha256DigestRe = /^sha256:[0-9a-f]{64}$/;
const hexIdRe = /^[a-f0-9]{64}$/;

/** A fully qualified image reference: domain and path are always set, tag and/or digest optional. */
export class ImageReference {
  constructor(
    /** Registry host, with port when given: `docker.io`, `localhost:5000`, `[::1]:5000`. */
    readonly domain: string,
    /** Repository path inside the registry: `library/busybox`. */
    readonly path: string,
    readonly tag?: string,
    readonly digest?: string,
    /** True when the input named no registry, so `docker.io` was assumed (a "short name"). */
    readonly shortName = false,
  ) {}

  /** `docker.io/library/busybox` */
  get name(): string {
    return `${this.domain}/${this.path}`;
  }

  /** The canonical string: `docker.io/library/busybox:latest`, `...@sha256:…` or both. */
  toString(): string {
    return this.name + (this.tag !== undefined ? `:${this.tag}` : '') + (this.digest !== undefined ? `@${this.digest}` : '');
  }

  /** The name as users type it: `busybox`, `foo/bar`, `quay.io/x/y`. */
  get familiarName(): string {
    if (this.domain !== DEFAULT_DOMAIN) return this.name;
    return this.path.startsWith(OFFICIAL_REPO_PREFIX) && !this.path.slice(OFFICIAL_REPO_PREFIX.length).includes('/')
      ? this.path.slice(OFFICIAL_REPO_PREFIX.length)
      : this.path;
  }

  /** `busybox:latest`, `quay.io/x/y@sha256:…` */
  familiarString(): string {
    return this.familiarName + (this.tag !== undefined ? `:${this.tag}` : '') + (this.digest !== undefined ? `@${this.digest}` : '');
  }

  /** What to ask the registry's manifest endpoint for: the digest wins over the tag. */
  get manifestReference(): string {
    return this.digest ?? this.tag ?? DEFAULT_TAG;
  }

  /** `name:tag`, or undefined when the reference carries no tag. */
  get repoTag(): string | undefined {
    return this.tag !== undefined ? `${this.name}:${this.tag}` : undefined;
  }

  /** `name@digest` for a given (manifest) digest. */
  repoDigest(digest: string): string {
    return `${this.name}@${digest}`;
  }

  /** The same repository under another domain/path (used to address mirrors). */
  withLocation(domain: string, path: string): ImageReference {
    return new ImageReference(domain, path, this.tag, this.digest, this.shortName);
  }
}

/** Splits `name[:tag][@digest]` without confusing a registry port with a tag. */
function splitTagAndDigest(input: string): { name: string; tag?: string; digest?: string } {
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon !== -1 && !rest.slice(lastColon + 1).includes('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
  }
  return { name: rest, tag, digest };
}

/** Far above any real reference (a repository name is at most 255, a tag 128, a digest ~100). */
export const REFERENCE_MAX = 1024;

/**
 * Parses and normalises an image reference: `busybox` → `docker.io/library/busybox:latest`.
 * A reference with a digest and no tag keeps no tag. Throws invalidArgument naming the input.
 */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): ImageReference {
  const fail = (why: string) => invalidArgument(`invalid image reference ${JSON.stringify(String(input).length > REFERENCE_MAX ? clip(String(input), 100) : input)}: ${why}`);
  if (typeof input !== 'string' || input.length === 0) throw fail('empty');
  if (input.length > REFERENCE_MAX) throw fail(`longer than ${REFERENCE_MAX} characters`);
  if (input !== input.trim()) throw fail('contains leading or trailing whitespace');
  if (hexIdRe.test(input)) throw fail('a 64-character hexadecimal string is an image id, not a reference');

  const { name, tag, digest } = splitTagAndDigest(input);
  if (name.length === 0) throw fail('missing repository name');
  if (tag !== undefined && !tagRe.test(tag)) throw fail(`tag ${JSON.stringify(tag)} is not valid`);
  if (digest !== undefined) {
    if (!digestRe.test(digest)) throw fail(`digest ${JSON.stringify(digest)} is not valid`);
    if (digest.startsWith('sha256:') && !sha256DigestRe.test(digest)) {
      throw fail(`sha256 digest must be 64 lowercase hex characters`);
    }
  }

  // The first component is a registry host only if it looks like one: it has a dot or a
  // port, is `localhost`, or has upper-case letters (which repository paths never have).
  let domain: string;
  let path: string;
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  const explicitDomain =
    slash !== -1 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first);
  if (explicitDomain) {
    domain = first;
    path = name.slice(slash + 1);
    if (!domainRe.test(domain)) throw fail(`registry host ${JSON.stringify(domain)} is not valid`);
  } else {
    domain = DEFAULT_DOMAIN;
    path = name;
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path.toLowerCase() !== path) throw fail('repository name must be lowercase');
  if (!pathRe.test(path)) throw fail(`repository path ${JSON.stringify(path)} is not valid`);
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  if (domain.length + 1 + path.length > NAME_TOTAL_MAX) throw fail(`repository name longer than ${NAME_TOTAL_MAX} characters`);

  const effectiveTag = tag ?? (digest === undefined && opts.defaultTag !== false ? DEFAULT_TAG : undefined);
  return new ImageReference(domain, path, effectiveTag, digest, !explicitDomain);
}

/** True when `s` is a `sha256:<64 hex>` digest. */
export function isSha256Digest(s: string): boolean {
  return sha256DigestRe.test(s);
}
