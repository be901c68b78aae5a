/**
 * The input limits every entry point (CLI, serve worker, extension) checks before doing work, in one place so the
 * README, the messages and the checks cannot disagree. Each bounds memory or time that a hostile or accidental
 * input could otherwise make unbounded.
 */
import type { RobertaConfig } from './types';
import { SpartanError } from './types';

/** One text (or text pair half), in UTF-8 bytes. Far beyond what 512 tokens can use; past it we refuse. */
export const MAX_TEXT_BYTES = 1024 * 1024;
/** A JSONL data file. Read whole into memory, so bounded. */
export const MAX_JSONL_BYTES = 512 * 1024 * 1024;
/** One request line of `spartan serve`. */
export const MAX_REQUEST_BYTES = 2 * MAX_TEXT_BYTES + 64 * 1024;
/** A `--text` given on the command line; longer texts go through `--text-file` (argv is visible in `ps` too). */
export const MAX_ARGV_TEXT_BYTES = 16 * 1024;
/** Values in a method's own tensors (`--parents` × `--children` …): 100 M floats, 1.6 GB with AdamW's state. */
export const MAX_METHOD_VALUES = 100_000_000;
/** `--threads`: ONNX Runtime starts this many threads per session. */
export const MAX_THREADS = 256;
/** A backbone's config.json and tokenizer files (roberta-base's tokenizer.json is 1.4 MB). */
export const MAX_MODEL_TEXT_FILE_BYTES = 256 * 1024 * 1024;
/** The JSON header of a memory file read for listing (the extension's status bar, pickers). */
export const MAX_MEMORY_HEADER_BYTES = 16 * 1024 * 1024;
/** How long `spartan serve` works on one request before answering with a timeout error. */
export const SERVE_REQUEST_TIMEOUT_MS = 60_000;
/** Task models `spartan serve` keeps loaded at once (they share one backbone), least recently used evicted. */
export const SERVE_CACHE_ENTRIES = 8;
/** Downloads: time to the response headers, and the longest silence between two body chunks. */
export const DOWNLOAD_CONNECT_TIMEOUT_MS = 30_000;
export const DOWNLOAD_IDLE_TIMEOUT_MS = 60_000;
/** Downloads: no single file larger than this (roberta-large's weights are 1.4 GB). */
export const DOWNLOAD_MAX_FILE_BYTES = 4 * 1024 * 1024 * 1024;

/**
 * The most tokens a sequence may have on this backbone: position ids are pad + 1 + index (RobertaEmbeddings), so
 * 514 positions with pad id 1 leave 512.
 */
export function maxSequenceLength(config: Pick<RobertaConfig, 'maxPositions' | 'padTokenId'>): number {
  return config.maxPositions - config.padTokenId - 1;
}

/** Refuses a sequence length the backbone has no position embeddings for; `what` names the flag or field. */
export function checkSequenceLength(n: number, config: Pick<RobertaConfig, 'maxPositions' | 'padTokenId'>, what: string): void {
  const max = maxSequenceLength(config);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new SpartanError(`${what} is ${n}, but the backbone has positions for at most ${max} tokens`);
  }
}

/** `what is 2.0 MiB; the limit is 1.0 MiB` */
export function sizeProblem(what: string, bytes: number, limit: number): string {
  return `${what} is ${mib(bytes)}; the limit is ${mib(limit)}`;
}

export function mib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The problem with a text over MAX_TEXT_BYTES (`what` names it), or undefined. */
export function textSizeProblem(text: string, what: string): string | undefined {
  // Cheap bound first: a UTF-16 code unit is at most 3 UTF-8 bytes.
  if (text.length * 3 <= MAX_TEXT_BYTES) return undefined;
  const bytes = Buffer.byteLength(text, 'utf8');
  return bytes > MAX_TEXT_BYTES ? sizeProblem(what, bytes, MAX_TEXT_BYTES) : undefined;
}

/** Throws when a text is over MAX_TEXT_BYTES; `what` names where it came from (file:line, params.text, --text). */
export function checkTextSize(text: string, what: string): void {
  const problem = textSizeProblem(text, what);
  if (problem) throw new SpartanError(problem);
}
