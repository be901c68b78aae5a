/**
 * One HTTP GET against the hub with redirects followed by hand. Following them ourselves (instead of fetch's
 * automatic mode) matters for three reasons: the hub puts the facts about an LFS file (X-Linked-Etag = sha256,
 * X-Linked-Size) on its 302 response, not on the CDN's final one; the Authorization header must not leak to the
 * CDN host (its signed URL needs none, and some CDNs reject it); and a Range header must survive every hop.
 */
import { SpartanError } from '../types';
import { normalizeEtag } from './hash';

/** A failure worth another try: 5xx/429, a dropped connection, an incomplete body. */
export class RetryableError extends SpartanError {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** What the hub (the first host, before any cross-host redirect) said about the file. */
export interface HubFacts {
  /** X-Linked-Etag: the sha256 of an LFS file. */
  linkedEtag?: string;
  /** X-Linked-Size: the LFS file's size. */
  linkedSize?: number;
  /** ETag of a response served by the hub itself (for non-LFS files, the git blob sha1). */
  etag?: string;
  /** X-Repo-Commit: the commit the revision resolved to. */
  commit?: string;
  /** X-Error-Code / X-Error-Message on hub errors ("EntryNotFound", "RevisionNotFound", "GatedRepo", ...). */
  errorCode?: string;
  errorMessage?: string;
}

export interface OpenedResponse {
  res: Response;
  /** The URL that produced `res` (after redirects). */
  finalUrl: URL;
  /** True when `res` came from the hub's own origin (its ETag then has hub meaning). */
  fromHub: boolean;
  hub: HubFacts;
}

const MAX_REDIRECTS = 10;

/**
 * GETs `url`, following up to 10 redirects. `range` is sent on every hop; `token` only to the hub's origin.
 * Network failures become RetryableErrors saying which host could not be reached; an abort is rethrown as is so
 * the caller can tell cancellation from failure.
 */
export async function openFollowingRedirects(
  url: string,
  opts: { range?: string; token?: string; signal?: AbortSignal },
): Promise<OpenedResponse> {
  const start = new URL(url);
  let current = start;
  const hub: HubFacts = {};
  for (let hop = 0; ; hop++) {
    const sameOrigin = current.origin === start.origin;
    const headers: Record<string, string> = {
      // identity: a compressed body would make Content-Length and byte ranges refer to different bytes.
      'accept-encoding': 'identity',
      'user-agent': 'spartan-hub-download/1',
    };
    if (opts.range) headers.range = opts.range;
    if (opts.token && sameOrigin) headers.authorization = `Bearer ${opts.token}`;
    let res: Response;
    try {
      res = await fetch(current, { headers, redirect: 'manual', signal: opts.signal });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw new RetryableError(`could not reach ${current.host} (${networkCode(e)}) for ${current.href}: offline?`);
    }
    if (sameOrigin) collectHubFacts(res.headers, hub);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel().catch(() => undefined); // free the connection
      if (hop >= MAX_REDIRECTS) throw new SpartanError(`too many redirects starting at ${url}`);
      current = new URL(location, current); // relative redirects (renamed repos) resolve against the current URL
      continue;
    }
    return { res, finalUrl: current, fromHub: sameOrigin, hub };
  }
}

/** Keeps the first value seen of each fact: the hub's 302 carries them, a later hop must not overwrite them. */
function collectHubFacts(h: Headers, facts: HubFacts): void {
  facts.linkedEtag ??= normalizeEtag(h.get('x-linked-etag'));
  const size = h.get('x-linked-size');
  if (facts.linkedSize === undefined && size && /^\d+$/.test(size)) facts.linkedSize = Number(size);
  facts.commit ??= h.get('x-repo-commit') ?? undefined;
  facts.errorCode ??= h.get('x-error-code') ?? undefined;
  facts.errorMessage ??= h.get('x-error-message') ?? undefined;
  // Only a final (non-redirect) hub response's ETag describes the file itself.
  if (!h.get('location')) facts.etag ??= normalizeEtag(h.get('etag'));
}

/** The most specific code in a fetch error chain ("ECONNREFUSED", "ENOTFOUND", "UND_ERR_SOCKET", ...). */
export function networkCode(e: unknown): string {
  let cur: unknown = e;
  let deepest = e instanceof Error ? e.message : String(e); // "fetch failed" alone says nothing; its cause does
  for (let i = 0; i < 5 && cur; i++) {
    if (cur instanceof Error && cur.message) deepest = cur.message;
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    // Connection attempts to several addresses (IPv4/IPv6) fail as an AggregateError without a code of its own.
    const errors = (cur as { errors?: unknown[] }).errors;
    cur = (cur as { cause?: unknown }).cause ?? (Array.isArray(errors) ? errors[0] : undefined);
  }
  return deepest;
}

/** Retry-After in milliseconds (seconds form only; the hub does not send dates), capped at 30 s. */
export function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get('retry-after');
  return v && /^\d+$/.test(v) ? Math.min(Number(v) * 1000, 30_000) : undefined;
}

/** A sleep that ends early (rejecting) when `signal` aborts, so a cancel during backoff is immediate. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
