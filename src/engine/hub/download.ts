/**
 * downloadModel: fetches a backbone (default files of `roberta-base`) from the Hugging Face hub into a folder,
 * file by file, resumable, verified, with a manifest that makes a repeat call a no-op. No vscode import: the CLI and
 * the extension both call this.
 */
import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { SpartanError } from '../types';
import { describeFsError } from '../io/regularFile';
import { checkFileName, checkRepoId, resolveEndpoint, resolveUrl } from './endpoint';
import { fetchFile, sizeOf } from './fetch-file';
import { DownloadManifest, ManifestFile, readManifest, writeManifest } from './manifest';

/** What the engine needs from a RoBERTa repo: config, weights, and the byte-level BPE tokenizer files. */
export const DEFAULT_FILES: readonly string[] = [
  'config.json',
  'model.safetensors',
  'vocab.json',
  'merges.txt',
  'tokenizer.json',
  'tokenizer_config.json',
];

/** Files that may be absent from a repo (FacebookAI/roberta-base has no tokenizer_config.json). */
export const DEFAULT_OPTIONAL_FILES: readonly string[] = ['tokenizer_config.json'];

export interface DownloadProgress {
  file: string;
  /** Bytes of this file on disk so far, resumed bytes included. */
  received: number;
  /** The file's size when the server said it. */
  total?: number;
}

export interface DownloadOptions {
  /** "roberta-base" or "FacebookAI/roberta-base". */
  repo: string;
  /** Branch, tag or commit; default "main". */
  revision?: string;
  /** Destination folder (created if needed). */
  dest: string;
  /** Hub endpoint; default $SPARTAN_HF_ENDPOINT, else https://huggingface.co. */
  baseUrl?: string;
  /** Files to fetch; default DEFAULT_FILES. */
  files?: string[];
  /** Which of `files` may be missing from the repo (404 → skipped); default DEFAULT_OPTIONAL_FILES. */
  optionalFiles?: string[];
  onProgress?: (e: DownloadProgress) => void;
  /** Cancels the download; the current file's `.part` is kept for the next call to resume. */
  signal?: AbortSignal;
  /** Hugging Face access token, for gated or private repos; sent to the hub only, never to the CDN. */
  token?: string;
  /** Extra attempts after a 5xx/429 or a dropped connection; default 2. */
  retries?: number;
  /** First backoff delay in ms (then x3 per retry); default 500. */
  retryDelayMs?: number;
  /** Longest wait for response headers / between body chunks; defaults DOWNLOAD_CONNECT_TIMEOUT_MS / DOWNLOAD_IDLE_TIMEOUT_MS. */
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Largest file accepted; default DOWNLOAD_MAX_FILE_BYTES. */
  maxFileBytes?: number;
  /** Accept files the server sends no checksum for (default: refused, since they cannot be verified). */
  allowUnverified?: boolean;
}

export interface DownloadedFile {
  name: string;
  bytes: number;
  sha256: string;
}

export interface DownloadResult {
  /** Absolute destination folder. */
  dir: string;
  /** The requested files present in `dir`, in request order (skipped optional files are not listed). */
  files: DownloadedFile[];
}

export async function downloadModel(opts: DownloadOptions): Promise<DownloadResult> {
  checkRepoId(opts.repo);
  const revision = opts.revision ?? 'main';
  if (!revision.trim()) throw new SpartanError('revision must not be empty');
  const names = opts.files ?? [...DEFAULT_FILES];
  if (names.length === 0) throw new SpartanError('no files to download');
  names.forEach(checkFileName);
  if (new Set(names).size !== names.length) throw new SpartanError(`duplicate file names in ${JSON.stringify(names)}`);
  const optional = new Set(opts.optionalFiles ?? DEFAULT_OPTIONAL_FILES);
  const base = resolveEndpoint(opts.baseUrl);
  const dir = resolve(opts.dest);
  const destStat = await fsp.stat(dir).catch(() => undefined);
  if (destStat && !destStat.isDirectory())
    throw new SpartanError(`${opts.dest}: exists and is not a folder; give a folder (new or existing) as the destination`);

  // Files recorded by an earlier call for the same repo and revision are reused while they are still there with
  // the recorded size; a complete destination therefore costs no request at all.
  const previous = await readManifest(dir);
  const sameSource = previous && previous.repo === opts.repo && previous.revision === revision;
  const recorded = new Map<string, ManifestFile>(sameSource ? previous.files.map((f) => [f.name, f]) : []);
  const skipped = new Set<string>(sameSource ? previous.skipped : []);

  const results: DownloadedFile[] = [];
  let fetchedAny = false;
  const manifest = (complete: boolean): DownloadManifest => ({
    format: 1,
    repo: opts.repo,
    revision,
    complete,
    files: [...recorded.values()],
    skipped: [...skipped],
    updatedAt: new Date().toISOString(),
  });

  for (const name of names) {
    if (opts.signal?.aborted) throw new SpartanError(`download of ${opts.repo} was cancelled before ${name}`);
    const known = recorded.get(name);
    if (known && (await sizeOf(join(dir, name))) === known.bytes && (await exists(join(dir, name)))) {
      results.push({ name, bytes: known.bytes, sha256: known.sha256 });
      continue;
    }
    if (!known && optional.has(name) && skipped.has(name)) continue;

    try {
      await fsp.mkdir(dir, { recursive: true });
    } catch (e) {
      throw new SpartanError(describeFsError(opts.dest, e, 'cannot be created'));
    }
    const url = resolveUrl(base, opts.repo, revision, name);
    const got = await fetchFile(
      {
        dir,
        repo: opts.repo,
        revision,
        token: opts.token,
        signal: opts.signal,
        retries: opts.retries ?? 2,
        retryDelayMs: opts.retryDelayMs ?? 500,
        onProgress: opts.onProgress,
        connectTimeoutMs: opts.connectTimeoutMs,
        idleTimeoutMs: opts.idleTimeoutMs,
        maxFileBytes: opts.maxFileBytes,
        allowUnverified: opts.allowUnverified,
      },
      name,
      url,
      optional.has(name),
    );
    fetchedAny = true;
    if (!got) {
      skipped.add(name);
      recorded.delete(name);
    } else {
      skipped.delete(name);
      recorded.set(name, got.commit ? got : { name: got.name, bytes: got.bytes, sha256: got.sha256 });
      results.push({ name: got.name, bytes: got.bytes, sha256: got.sha256 });
    }
    await writeManifest(dir, manifest(false)); // progress survives an interruption of a later file
  }
  if (fetchedAny || !previous?.complete) await writeManifest(dir, manifest(true));
  return { dir, files: results };
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.access(path);
    return true;
  } catch {
    return false;
  }
}
