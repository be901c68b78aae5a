/**
 * The results file of a GLUE grid: one JSON object holding every finished run. It is rewritten (atomically,
 * under a lock file) after each run, so a grid interrupted after hours loses at most the run in progress, and a
 * second invocation with the same --out skips the runs already there. The lock lets the shard processes of
 * `--parallel` share one file: each re-reads the file and merges its run in.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, SpartanError } from '../../engine';

export const RESULTS_FORMAT = 'spartan-glue-results';
export const RESULTS_VERSION = 1;

/** Everything that changes what a run computes besides task, method and seed: part of the resume key. */
export interface Protocol {
  backbone: string;
  lr: number;
  epochs: number;
  /** Cap on training rows (a fixed subset, the same for every method and seed); null = all. */
  trainRows: number | null;
  devRows: number | null;
  /** Few-shot: rows sampled per seed and exact optimiser steps; null = the full-data protocol. */
  fewShot: number | null;
  fewShotSteps: number | null;
  stratified: boolean;
  batchSize: number;
  maxLength: number;
  dropout: number;
  warmupRatio: number;
  weightDecay: number;
  /** SPARTAN geometry (Np, Nc, K, τ); recorded for every method, only SPARTAN uses it. */
  geometry: string;
}

export interface RunRecord {
  key: string;
  task: string;
  method: string;
  seed: number;
  protocol: Protocol;
  /** The task's GLUE headline metric and its dev value at the best epoch (few-shot: after the last step). */
  metric: string;
  score: number;
  /** Every dev metric of that evaluation (accuracy, f1, mcc or pearson, spearman, mse). */
  metrics: Record<string, number>;
  bestEpoch: number;
  steps: number;
  trainExamples: number;
  devExamples: number;
  /** Seconds spent in optimiser steps (forward, backward, update), without graph building and dev evaluation. */
  trainSeconds: number;
  /** Training examples per second of those steps. */
  examplesPerSecond: number;
  /** Wall-clock seconds of the whole run (building graphs, training and every dev evaluation). */
  wallSeconds: number;
  trainableParameters: number;
  /** Bytes of the trained tensors as an F16 safetensors file (no metadata): the per-task storage cost. */
  storageBytes: number;
  /** Where the memory was saved (--save-dir), else null. */
  memory: string | null;
  finishedAt: string;
}

export interface ResultsFile {
  format: typeof RESULTS_FORMAT;
  version: number;
  runs: RunRecord[];
}

export function runKey(task: string, method: string, seed: number, protocol: Protocol): string {
  // Keys in a fixed order so the same protocol always gives the same string.
  const p = protocol as unknown as Record<string, unknown>;
  const parts = Object.keys(protocol)
    .sort()
    .map((k) => `${k}=${String(p[k])}`);
  return `${task}|${method}|seed=${seed}|${parts.join('|')}`;
}

export function emptyResults(): ResultsFile {
  return { format: RESULTS_FORMAT, version: RESULTS_VERSION, runs: [] };
}

export function readResults(file: string): ResultsFile {
  if (!fs.existsSync(file)) return emptyResults();
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SpartanError(`${file}: not a results file (invalid JSON: ${(e as Error).message})`);
  }
  const r = value as Partial<ResultsFile>;
  if (!r || r.format !== RESULTS_FORMAT || !Array.isArray(r.runs))
    throw new SpartanError(`${file}: not a Spartan GLUE results file (format "${RESULTS_FORMAT}")`);
  if (r.version !== RESULTS_VERSION)
    throw new SpartanError(`${file}: results version ${r.version} is not supported (this version reads ${RESULTS_VERSION})`);
  return r as ResultsFile;
}

/** Adds (or replaces, by key) one run under the lock; returns the file as written. */
export function appendRun(file: string, run: RunRecord): ResultsFile {
  return withLock(file, () => {
    const results = readResults(file);
    results.runs = results.runs.filter((r) => r.key !== run.key);
    results.runs.push(run);
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    writeFileAtomic(file, Buffer.from(JSON.stringify(results, null, 1) + '\n', 'utf8'));
    return results;
  });
}

/** Stale after this long: a lock left by a killed process must not block the grid forever. */
const LOCK_STALE_MS = 60_000;

function withLock<T>(file: string, fn: () => T): T {
  const lock = `${file}.lock`;
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const started = Date.now();
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, 'wx'));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new SpartanError(`${lock}: cannot create the lock file: ${(e as Error).message}`);
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > LOCK_STALE_MS) fs.rmSync(lock, { force: true });
      } catch {
        // Removed by its owner meanwhile: try again.
      }
      if (Date.now() - started > 5 * LOCK_STALE_MS) throw new SpartanError(`${lock}: still locked after ${(5 * LOCK_STALE_MS) / 1000} s`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}
