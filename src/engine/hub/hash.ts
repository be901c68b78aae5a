/**
 * Hashing helpers. The hub's etags mean different things per file kind: for LFS files (weights) the linked etag
 * is the sha256 of the content; for ordinary git files it is the git blob sha1, i.e. sha1("blob <size>\0" + bytes).
 * Mixing them up would report every small file as corrupt, so the two checks are kept distinct here.
 */
import { createHash, Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** Strips the weak marker and quotes from an ETag header value; undefined for a missing header. */
export function normalizeEtag(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  return (
    value
      .trim()
      .replace(/^W\//, '')
      .replace(/^"(.*)"$/, '$1') || undefined
  );
}

export function isSha256Hex(s: string | undefined): s is string {
  return !!s && /^[0-9a-f]{64}$/.test(s);
}

export function isGitSha1Hex(s: string | undefined): s is string {
  return !!s && /^[0-9a-f]{40}$/.test(s);
}

/** Feeds a file's bytes into `hash` (streamed: the weights are hundreds of MB). */
export async function hashFileInto(hash: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await hashFileInto(h, path);
  return h.digest('hex');
}

/** The git blob id of a file of `size` bytes (what `git hash-object` prints). */
export async function gitBlobSha1File(path: string, size: number): Promise<string> {
  const h = createHash('sha1');
  h.update(`blob ${size}\0`);
  await hashFileInto(h, path);
  return h.digest('hex');
}
