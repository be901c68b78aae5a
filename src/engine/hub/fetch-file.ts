/**
 * Downloads one repo file into `dir`, resumably: bytes go to `<file>.part`; a later attempt asks for the rest with
 * `Range: bytes=<size>-` and appends on 206 (or starts over on 200). The file is renamed into place only once
 * complete and verified, so `<file>` existing always means "good". The sha256 covers the whole file: on resume the
 * existing part is re-hashed before new bytes are appended.
 */
import { createHash } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import { SpartanError } from '../types';
import { DOWNLOAD_CONNECT_TIMEOUT_MS, DOWNLOAD_IDLE_TIMEOUT_MS, DOWNLOAD_MAX_FILE_BYTES, mib } from '../limits';
import { gitBlobSha1File, hashFileInto, isGitSha1Hex, isSha256Hex } from './hash';
import { OpenedResponse, RetryableError, networkCode, openFollowingRedirects, retryAfterMs, sleep } from './http';

export interface FetchFileContext {
  dir: string;
  repo: string;
  revision: string;
  token?: string;
  signal?: AbortSignal;
  retries: number;
  retryDelayMs: number;
  onProgress?: (e: { file: string; received: number; total?: number }) => void;
  /** Longest wait for a response's headers, and for the next body chunk; defaults in engine/limits.ts. */
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** No file larger than this is accepted (announced or received). */
  maxFileBytes?: number;
  /** Accept a file the server gave no checksum for (no X-Linked-Etag sha256, no hub git-blob ETag). */
  allowUnverified?: boolean;
}

export interface FetchedFile {
  name: string;
  bytes: number;
  sha256: string;
  commit?: string;
}

/** One file being fetched: where from, where to, and whether the repo may lack it. */
interface FileJob {
  ctx: FetchFileContext;
  name: string;
  url: string;
  optional: boolean;
  /** The final path, and the `.part` the bytes go to until they are verified. */
  target: string;
  part: string;
}

/** Returns undefined when an optional file is not in the repo. */
export async function fetchFile(ctx: FetchFileContext, name: string, url: string, optional: boolean): Promise<FetchedFile | undefined> {
  const target = join(ctx.dir, name);
  const part = `${target}.part`;
  await fsp.mkdir(dirname(target), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      return await attemptOnce({ ctx, name, url, optional, target, part });
    } catch (e) {
      if (ctx.signal?.aborted) throw cancelled(name, url, part);
      if (!(e instanceof RetryableError)) {
        if (e instanceof SpartanError) throw e;
        throw new SpartanError(`downloading ${name} from ${url} failed: ${(e as Error).message ?? e}`);
      }
      if (attempt >= ctx.retries) {
        const resumable = (await sizeOf(part)) > 0 ? `; ${part} is kept and the next call resumes it` : '';
        throw new SpartanError(`${e.message} (gave up on ${name} after ${attempt + 1} attempts${resumable})`);
      }
      // Exponential backoff (x3), or the server's Retry-After when it gave a longer one.
      const delay = Math.max(ctx.retryDelayMs * 3 ** attempt, e.retryAfterMs ?? 0);
      try {
        await sleep(delay, ctx.signal);
      } catch {
        throw cancelled(name, url, part);
      }
    }
  }
}

function cancelled(name: string, url: string, part: string): SpartanError {
  return new SpartanError(`download of ${name} from ${url} was cancelled; ${part} is kept and the next call resumes it`);
}

async function attemptOnce(job: FileJob): Promise<FetchedFile | undefined> {
  const { ctx, name, url, target, part } = job;
  await refuseLinks(target, part);
  const have = await sizeOf(part);
  // One controller per attempt: the caller's cancel, the wait for headers and the silence between chunks all end it.
  const attempt = new AbortController();
  const onCancel = () => attempt.abort(ctx.signal?.reason);
  ctx.signal?.addEventListener('abort', onCancel, { once: true });
  let timedOut: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number, why: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = why;
      attempt.abort();
    }, ms);
  };
  const host = new URL(url).host;
  try {
    arm(
      ctx.connectTimeoutMs ?? DOWNLOAD_CONNECT_TIMEOUT_MS,
      `${host} sent no response within ${(ctx.connectTimeoutMs ?? DOWNLOAD_CONNECT_TIMEOUT_MS) / 1000} s`,
    );
    return await attemptBody(job, have, attempt.signal, arm);
  } catch (e) {
    if (timedOut && !ctx.signal?.aborted) throw new RetryableError(`${timedOut} while downloading ${name}`);
    throw e;
  } finally {
    clearTimeout(timer);
    ctx.signal?.removeEventListener('abort', onCancel);
  }
}

/** A symlink where the download writes would make it write (or append) wherever the link points: refused. */
async function refuseLinks(target: string, part: string): Promise<void> {
  for (const p of [part, target]) {
    const st = await fsp.lstat(p).catch(() => undefined);
    if (st?.isSymbolicLink()) throw new SpartanError(`${p} is a symbolic link; refusing to download through it (remove it and run again)`);
    if (st && !st.isFile()) throw new SpartanError(`${p} exists and is not a regular file; refusing to download over it`);
  }
}

async function attemptBody(
  job: FileJob,
  have: number,
  signal: AbortSignal,
  arm: (ms: number, why: string) => void,
): Promise<FetchedFile | undefined> {
  const { ctx, name, url, optional, part } = job;
  const maxBytes = ctx.maxFileBytes ?? DOWNLOAD_MAX_FILE_BYTES;
  const idleMs = ctx.idleTimeoutMs ?? DOWNLOAD_IDLE_TIMEOUT_MS;
  const opened = await openFollowingRedirects(url, {
    range: have > 0 ? `bytes=${have}-` : undefined,
    token: ctx.token,
    signal,
  });
  const { res, hub } = opened;
  const where = opened.finalUrl.href === url ? url : `${url} (redirected to ${opened.finalUrl.host})`;

  if (res.status === 404) {
    await res.body?.cancel().catch(() => undefined);
    // A missing repo or revision is an error even for an optional file: everything else would 404 too.
    const repoLevel = hub.errorCode === 'RepoNotFound' || hub.errorCode === 'RevisionNotFound';
    if (optional && !repoLevel) return undefined;
    const what =
      hub.errorCode === 'RevisionNotFound'
        ? `revision "${ctx.revision}" of ${ctx.repo}`
        : hub.errorCode === 'RepoNotFound'
          ? `repo ${ctx.repo}`
          : `${name} in ${ctx.repo}@${ctx.revision}`;
    throw new SpartanError(`${what} not found on the hub (HTTP 404 for ${where})`);
  }
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel().catch(() => undefined);
    const hint = ctx.token
      ? "the token given was not accepted for it (check it, and accept the repo's terms on the hub if it is gated)"
      : 'it is gated or private (or does not exist): pass a Hugging Face access token (token option, e.g. from HF_TOKEN)';
    const detail = hub.errorMessage ? ` [${hub.errorMessage}]` : '';
    throw new SpartanError(`access to ${name} of ${ctx.repo} was refused (HTTP ${res.status} for ${where}): ${hint}${detail}`);
  }
  if (res.status === 429 || res.status >= 500) {
    await res.body?.cancel().catch(() => undefined);
    throw new RetryableError(`the server answered HTTP ${res.status} for ${where}`, retryAfterMs(res));
  }
  if (res.status === 416) return finishFromPart(job, have, opened);
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel().catch(() => undefined);
    throw new SpartanError(`unexpected HTTP ${res.status} for ${where} while downloading ${name}`);
  }

  // Where the body starts: 206 continues the part (if it really starts where the part ends), 200 restarts.
  let start = 0;
  let total = hub.linkedSize;
  if (res.status === 206) {
    const cr = parseContentRange(res.headers.get('content-range'));
    if (!cr || cr.start !== have) {
      await res.body?.cancel().catch(() => undefined);
      await fsp.rm(part, { force: true });
      throw new RetryableError(`${where} resumed ${name} at the wrong offset (${res.headers.get('content-range')}); restarting it`);
    }
    start = have;
    total ??= cr.total;
  } else if (total === undefined && !res.headers.get('content-encoding')) {
    const len = res.headers.get('content-length');
    if (len && /^\d+$/.test(len)) total = Number(len);
  }

  if (total !== undefined && total > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new SpartanError(`${where} announces ${mib(total)} for ${name}; the limit for one file is ${mib(maxBytes)}`);
  }
  const hash = createHash('sha256');
  if (start > 0) await hashFileInto(hash, part); // the sha256 must cover the bytes from the earlier attempt too
  let received = start;
  ctx.onProgress?.({ file: name, received, total });
  // O_NOFOLLOW: a symlink placed at the .part path between the check above and here is not written through.
  const flags = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_NOFOLLOW | (start > 0 ? fsc.O_APPEND : fsc.O_TRUNC);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(part, flags, 0o644);
  } catch (e) {
    await res.body?.cancel().catch(() => undefined);
    throw new SpartanError(`${part}: cannot be written (${networkCode(e)})`);
  }
  const silence = `${opened.finalUrl.host} sent nothing for ${idleMs / 1000} s`;
  arm(idleMs, silence);
  let writeError: unknown; // a disk error (ENOSPC, ...) or a throwing onProgress: not a network error, no retry
  try {
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        // Write before hashing/counting so `received` never runs ahead of what is on disk.
        try {
          for (let off = 0; off < chunk.length;) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
        } catch (we) {
          writeError = we;
          throw we;
        }
        hash.update(chunk);
        received += chunk.length;
        arm(idleMs, silence);
        if (received > maxBytes || (total !== undefined && received > total)) {
          // An endless or oversized body: stop now, not after the disk is full.
          writeError = new SpartanError(
            received > maxBytes
              ? `${where} sent more than ${mib(maxBytes)} for ${name}, the limit for one file; the partial file was removed`
              : `${where} sent more than the ${total} bytes announced for ${name}; the partial file was removed`,
          );
          throw writeError;
        }
        try {
          ctx.onProgress?.({ file: name, received, total });
        } catch (pe) {
          writeError = pe; // a throwing callback is the caller's bug, not a dropped connection: no retry
          throw pe;
        }
      }
    }
  } catch (e) {
    if (ctx.signal?.aborted) throw e;
    if (writeError instanceof SpartanError) {
      await fh.close().catch(() => undefined);
      await fsp.rm(part, { force: true });
      throw writeError;
    }
    if (writeError) throw new SpartanError(`downloading ${name} into ${part} failed: ${networkCode(writeError)}`);
    // The connection dropped mid-body: what arrived is on disk; the retry asks for the rest.
    throw new RetryableError(`the connection to ${opened.finalUrl.host} dropped after ${received} bytes of ${name} (${networkCode(e)})`);
  } finally {
    await fh.close().catch(() => undefined);
  }

  if (total !== undefined && received < total) {
    throw new RetryableError(`${where} ended ${name} after ${received} of ${total} bytes`);
  }
  if (total !== undefined && received > total) {
    await fsp.rm(part, { force: true });
    throw new SpartanError(`${where} sent ${received} bytes for ${name}, more than the ${total} announced; the partial file was removed`);
  }
  return verifyAndPlace(job, received, hash.digest('hex'), opened, start > 0);
}

/**
 * 416 (range not satisfiable) after a resume request: either the part already holds the whole file (a previous run
 * stopped just before renaming it) or it is longer than the file (the file changed); start over in that case.
 */
async function finishFromPart(job: FileJob, have: number, opened: OpenedResponse): Promise<FetchedFile> {
  const { name, url, part } = job;
  await opened.res.body?.cancel().catch(() => undefined);
  const total = opened.hub.linkedSize ?? parseContentRange(opened.res.headers.get('content-range'))?.total;
  if (have > 0 && total === have) {
    const h = createHash('sha256');
    await hashFileInto(h, part);
    return verifyAndPlace(job, have, h.digest('hex'), opened, true);
  }
  await fsp.rm(part, { force: true });
  throw new RetryableError(`${url} refused the resume range for ${name} (HTTP 416); restarting it`);
}

/**
 * Checks the finished part against what the hub promised, then renames it into place. A mismatching part is
 * deleted: resuming from corrupt bytes could never succeed.
 */
async function verifyAndPlace(job: FileJob, bytes: number, sha256: string, opened: OpenedResponse, resumed: boolean): Promise<FetchedFile> {
  const { ctx, name, url, target, part } = job;
  const { hub } = opened;
  // When the bad bytes may come from an old part (the file changed since), one clean fetch from zero is worth a try.
  const fail = (message: string): SpartanError =>
    resumed
      ? new RetryableError(`${message}; it had resumed an earlier partial file, so it restarts from zero`)
      : new SpartanError(message);
  if (isSha256Hex(hub.linkedEtag)) {
    if (hub.linkedEtag !== sha256) {
      await fsp.rm(part, { force: true });
      throw fail(
        `sha256 mismatch for ${name} from ${url}: expected ${hub.linkedEtag} (X-Linked-Etag), got ${sha256}; ` +
          'the download was discarded (corrupted transfer or a proxy rewriting it); run again to retry',
      );
    }
  } else if (opened.fromHub && hub.linkedEtag === undefined && isGitSha1Hex(hub.etag)) {
    // A plain git file served by the hub itself: its ETag is the git blob sha1, not a sha256.
    const blob = await gitBlobSha1File(part, bytes);
    if (blob !== hub.etag) {
      await fsp.rm(part, { force: true });
      throw fail(`git blob id mismatch for ${name} from ${url}: expected ${hub.etag} (ETag), got ${blob}; the download was discarded`);
    }
  } else if (!ctx.allowUnverified) {
    // Nothing to check the bytes against (no X-Linked-Etag, no hub ETag): a corrupted or substituted file would be
    // reported as downloaded. Refused unless the caller accepts unverified files.
    await fsp.rm(part, { force: true });
    throw new SpartanError(
      `${name} from ${url}${opened.finalUrl.href === url ? '' : ` (redirected to ${opened.finalUrl.host})`} came without a checksum ` +
        '(no X-Linked-Etag sha256 nor a git ETag from the hub), so it cannot be verified; the download was discarded (allow it with --allow-unverified)',
    );
  }
  await fsp.rename(part, target);
  return { name, bytes, sha256, commit: hub.commit };
}

function parseContentRange(v: string | null): { start: number; total?: number } | undefined {
  const m = v && /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(v.trim());
  if (!m) return undefined;
  return { start: m[1] !== undefined ? Number(m[1]) : -1, total: m[2] !== '*' ? Number(m[2]) : undefined };
}

export async function sizeOf(path: string): Promise<number> {
  try {
    return (await fsp.lstat(path)).size;
  } catch {
    return 0;
  }
}
