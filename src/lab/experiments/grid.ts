/**
 * The GLUE experiment grid (the paper's Tables 1 and 2): task × seed × method runs of `train()` in this process,
 * one after another. Each task's TSVs are read once and its texts tokenised once (a memoising tokenizer shared by
 * all its runs). Every finished run is merged into the results file at once, and runs already there (same task,
 * method, seed and protocol) are skipped, so a long grid can be stopped and resumed.
 *
 * Protocols:
 * - full data: `epochs` epochs over the (optionally capped) training rows, dev evaluation after every epoch, the
 *   best epoch's dev metrics recorded (picked by the task's GLUE metric).
 * - few-shot (`fewShot` n, `fewShotSteps` s): n rows sampled with the run's seed (see fewShot.ts), exactly s
 *   optimiser steps, then one evaluation on the full dev set (no dev-based epoch selection: the dev set is
 *   larger than the training set and must not pick the model).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  encodeSafetensors,
  saveMemory,
  MethodName,
  MethodSpec,
  methodSpec,
  trainedMemoryMetadata,
  Backbone,
  compileInference,
  GraphSession,
  RobertaTokenizer,
  evaluate,
  graphOptions,
  layerParams,
  numLabelsOf,
  train,
  TrainConfig,
  TrainEvent,
  encodeExamples,
  MemoryGeometry,
  SpartanError,
  glueTaskName,
} from '../../engine';
import { cachingTokenizer, GlueTaskData, loadGlueTaskData } from './data';
import { sampleFewShot } from './fewShot';
import { appendRun, Protocol, readResults, RunRecord, runKey } from './results';

/**
 * Peak learning rates by method: SPARTAN 1e-3 (the authors' setting); bottleneck adapters 1e-4 (AdapterHub's
 * usual rate for Pfeiffer and Houlsby adapters); full fine-tuning 2e-5 (RoBERTa's GLUE range 1e-5…3e-5); the head
 * alone 1e-3 (a linear probe tolerates, and with a frozen encoder needs, a large rate).
 */
export const DEFAULT_LR: Record<MethodName, number> = { spartan: 1e-3, pfeiffer: 1e-4, houlsby: 1e-4, head: 1e-3, full: 2e-5 };

export interface GridOptions {
  glueDir: string;
  tasks: string[];
  methods: MethodName[];
  seeds: number[];
  backbone: Backbone;
  tokenizer: RobertaTokenizer;
  /** Learning rate per method (DEFAULT_LR where absent). */
  lrs?: Partial<Record<MethodName, number>>;
  epochs: number;
  trainRows?: number;
  devRows?: number;
  fewShot?: number;
  fewShotSteps?: number;
  stratified?: boolean;
  batchSize: number;
  maxLength: number;
  dropout: number;
  warmupRatio: number;
  weightDecay: number;
  clipNorm: number;
  geometry: MemoryGeometry;
  threads: number;
  /** Results file (read for resuming, rewritten after every run); absent: results only returned. */
  out?: string;
  /** Save every trained delta as a memory file `<saveDir>/<task>-<method>-seed<seed>.safetensors`. */
  saveDir?: string;
  /** Only save these methods' deltas (full fine-tuning's is the whole backbone); absent: every method's. */
  saveMethods?: MethodName[];
  /**
   * One of `count` worker processes of a `--parallel` grid sharing `out`: runs are claimed one at a time (a claim
   * file per run in `<out>.claims/`, created exclusively), so whichever worker is free takes the next run and
   * slow methods (full fine-tuning) do not leave the other workers idle. The parent clears the claims.
   */
  shard?: { index: number; count: number };
  onEvent?: (e: GridEvent) => void;
  signal?: AbortSignal;
}

export interface RunId {
  index: number;
  total: number;
  task: string;
  method: MethodName;
  seed: number;
  lr: number;
}

export type GridEvent =
  | {
      event: 'start';
      runs: number;
      toRun: number;
      done: number;
      tasks: string[];
      methods: string[];
      seeds: number[];
      lrs: Record<string, number>;
    }
  /** `skipped`: the first 50 TSV lines the importer left out (file:line, why); `skippedCount`: all of them. */
  | {
      event: 'data';
      task: string;
      trainRows: number;
      devRows: number;
      totalTrain: number;
      totalDev: number;
      skippedCount: number;
      skipped: { file: string; line: number; message: string }[];
    }
  | ({ event: 'run' } & RunId)
  | ({ event: 'skip' } & RunId)
  | ({ event: 'train' } & RunId & { train: TrainEvent })
  | ({ event: 'result' } & RunId & { record: RunRecord })
  | { event: 'done'; ran: number; skipped: number; seconds: number };

export interface GridResult {
  /** The records of every run of this grid (finished now or found in the results file), in grid order. */
  runs: RunRecord[];
  ran: number;
  skipped: number;
}

export function learningRates(overrides: Partial<Record<MethodName, number>> = {}): Record<MethodName, number> {
  return { ...DEFAULT_LR, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
}

export function protocolOf(opts: GridOptions, method: MethodName): Protocol {
  const g = opts.geometry;
  return {
    backbone: opts.backbone.id,
    lr: learningRates(opts.lrs)[method],
    epochs: opts.fewShot ? 0 : opts.epochs,
    trainRows: opts.fewShot ? null : (opts.trainRows ?? null),
    devRows: opts.devRows ?? null,
    fewShot: opts.fewShot ?? null,
    fewShotSteps: opts.fewShot ? (opts.fewShotSteps ?? null) : null,
    stratified: Boolean(opts.fewShot && opts.stratified),
    batchSize: opts.batchSize,
    maxLength: opts.maxLength,
    dropout: opts.dropout,
    warmupRatio: opts.warmupRatio,
    weightDecay: opts.weightDecay,
    geometry: `${g.parents}x${g.children} k${g.topK} t${g.temperature}`,
  };
}

/** The runs of the grid in order: task, then seed, then method (so a partial grid compares methods early). */
export function gridRuns(opts: Pick<GridOptions, 'tasks' | 'methods' | 'seeds'>): { task: string; method: MethodName; seed: number }[] {
  const runs: { task: string; method: MethodName; seed: number }[] = [];
  for (const task of opts.tasks) for (const seed of opts.seeds) for (const method of opts.methods) runs.push({ task, method, seed });
  return runs;
}

/** The resume keys of every run of the grid, in grid order (task names made canonical: "sst2" → "SST-2"). */
export function gridKeys(opts: GridOptions): string[] {
  return gridRuns(opts).map((r) => runKey(glueTaskName(r.task) ?? r.task, r.method, r.seed, protocolOf(opts, r.method)));
}

export async function runGrid(opts: GridOptions): Promise<GridResult> {
  const started = Date.now();
  const emit = opts.onEvent ?? (() => {});
  if (opts.fewShot && !opts.fewShotSteps) throw new SpartanError('the few-shot protocol needs a number of steps (--few-shot-steps)');
  const lrs = learningRates(opts.lrs);
  const all = gridRuns(opts).map((r, index) => ({ ...r, index, key: '' }));
  const data = new Map<string, GlueTaskData>();
  // Canonical task names in the keys, so "sst2" and "SST-2" resume each other's runs.
  for (const r of all) {
    if (!data.has(r.task))
      data.set(
        r.task,
        loadGlueTaskData(opts.glueDir, r.task, { trainRows: opts.fewShot ? undefined : opts.trainRows, devRows: opts.devRows }),
      );
    r.task = data.get(r.task)!.task;
    r.key = runKey(r.task, r.method, r.seed, protocolOf(opts, r.method));
  }
  const existing = new Map((opts.out ? readResults(opts.out).runs : []).map((r) => [r.key, r]));
  if (opts.shard && !opts.out) throw new SpartanError('parallel workers need a results file to share');
  const toRun = all.filter((r) => !existing.has(r.key));
  emit({
    event: 'start',
    runs: all.length,
    toRun: toRun.length,
    done: all.length - toRun.length,
    tasks: [...new Set(all.map((r) => r.task))],
    methods: opts.methods,
    seeds: opts.seeds,
    lrs,
  });
  for (const d of data.values()) {
    emit({
      event: 'data',
      task: d.task,
      trainRows: d.train.length,
      devRows: d.dev.length,
      totalTrain: d.totalTrain,
      totalDev: d.totalDev,
      skippedCount: d.skipped.length,
      skipped: d.skipped.slice(0, 50).map((p) => ({ file: p.file, line: p.line, message: p.message })),
    });
  }

  const tokenizer = cachingTokenizer(opts.tokenizer);
  const records = new Map<string, RunRecord>(existing);
  let ran = 0,
    skipped = 0;
  for (const r of all) {
    const id: RunId = { index: r.index + 1, total: all.length, task: r.task, method: r.method, seed: r.seed, lr: lrs[r.method] };
    if (existing.has(r.key)) {
      skipped++;
      emit({ event: 'skip', ...id });
      continue;
    }
    if (opts.shard && !claim(opts.out!, r.key)) continue; // another worker has it
    opts.signal?.throwIfAborted();
    emit({ event: 'run', ...id });
    const record = await runOne(opts, data.get(r.task)!, tokenizer, r.method, r.seed, r.key, (e) =>
      emit({ event: 'train', ...id, train: e }),
    );
    records.set(r.key, record);
    if (opts.out) appendRun(opts.out, record);
    ran++;
    emit({ event: 'result', ...id, record });
  }
  emit({ event: 'done', ran, skipped, seconds: (Date.now() - started) / 1000 });
  // Every run of the grid the file now holds (other shards' too), in grid order.
  const final = opts.out ? new Map(readResults(opts.out).runs.map((r) => [r.key, r])) : records;
  return { runs: all.map((r) => final.get(r.key)).filter((r): r is RunRecord => r !== undefined), ran, skipped };
}

/** The folder of run claims of a parallel grid writing `out`. */
export function claimsDir(out: string): string {
  return `${out}.claims`;
}

/** Claims a run for this process; false when another worker already has. */
function claim(out: string, key: string): boolean {
  const dir = claimsDir(out);
  fs.mkdirSync(dir, { recursive: true });
  try {
    fs.closeSync(fs.openSync(path.join(dir, createHash('sha256').update(key).digest('hex').slice(0, 32)), 'wx'));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new SpartanError(`${dir}: cannot claim a run: ${(e as Error).message}`);
  }
}

async function runOne(
  opts: GridOptions,
  data: GlueTaskData,
  tokenizer: RobertaTokenizer,
  methodName: MethodName,
  seed: number,
  key: string,
  onTrain: (e: TrainEvent) => void,
): Promise<RunRecord> {
  const protocol = protocolOf(opts, methodName);
  const method = methodSpec(methodName, { geometry: opts.geometry });
  const fewShot = Boolean(opts.fewShot);
  const trainRows = fewShot ? sampleFewShot(data.train, { size: opts.fewShot!, seed, stratified: Boolean(opts.stratified) }) : data.train;
  const cfg: TrainConfig = {
    method,
    epochs: opts.epochs,
    steps: fewShot ? opts.fewShotSteps : undefined,
    batchSize: opts.batchSize,
    maxLength: opts.maxLength,
    optimizer: 'adamw',
    lr: protocol.lr,
    weightDecay: opts.weightDecay,
    warmupRatio: opts.warmupRatio,
    clipNorm: opts.clipNorm,
    dropout: opts.dropout,
    seed,
    shuffle: true,
    bucket: true,
    threads: opts.threads,
    // Every epoch is evaluated and the best kept; no early stopping, so all methods get the same budget.
    patience: 0,
    metric: data.metric,
    positiveClass: data.positiveClass,
  };

  const result = await train(
    {
      backbone: opts.backbone,
      tokenizer,
      task: data.info,
      train: trainRows,
      trainFile: data.trainFile,
      dev: fewShot ? undefined : data.dev,
      devFile: data.devFile,
      onEvent: onTrain,
      signal: opts.signal,
    },
    cfg,
  );

  let metrics = result.metrics;
  if (fewShot) metrics = await evaluateOnce(opts, data, tokenizer, method, result.tensors, cfg);
  const storageBytes = encodeSafetensors(result.tensors, 'float16').length;
  const trainableParameters = [...result.tensors.values()].reduce((n, t) => n + t.data.length, 0);
  let memory: string | null = null;
  if (opts.saveDir && (!opts.saveMethods || opts.saveMethods.includes(methodName))) {
    memory = path.join(opts.saveDir, `${data.task}-${methodName}-seed${seed}.safetensors`);
    saveMemory(
      memory,
      result.tensors,
      trainedMemoryMetadata({
        backbone: opts.backbone,
        task: data.info,
        cfg,
        result,
        metrics,
        trainRows: trainRows.length,
        devRows: data.dev.length,
        extra: { init: null, glueTask: data.task, fewShot: opts.fewShot ?? null },
      }),
      'float16',
    );
  }
  const score = metrics[data.metric];
  return {
    key,
    task: data.task,
    method: methodName,
    seed,
    protocol,
    metric: data.metric,
    score,
    metrics,
    bestEpoch: fewShot ? result.history.length : result.bestEpoch,
    steps: result.steps,
    trainExamples: trainRows.length,
    devExamples: data.dev.length,
    // Training throughput: the trainer's own step times (graph building and dev evaluation excluded).
    trainSeconds: result.stepSeconds,
    examplesPerSecond: result.stepExamples / Math.max(1e-9, result.stepSeconds),
    wallSeconds: result.seconds,
    trainableParameters,
    storageBytes,
    memory,
    finishedAt: new Date().toISOString(),
  };
}

/** One evaluation of the trained tensors on the whole dev set (the few-shot protocol). */
async function evaluateOnce(
  opts: GridOptions,
  data: GlueTaskData,
  tokenizer: RobertaTokenizer,
  method: MethodSpec,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  cfg: TrainConfig,
): Promise<Record<string, number>> {
  const numLabels = numLabelsOf(data.info);
  const session = await GraphSession.create(compileInference(graphOptions(opts.backbone, method, data.info.task, numLabels)), {
    threads: opts.threads,
  });
  try {
    const dev = encodeExamples(data.dev, tokenizer, data.info.task, data.info.labels, cfg.maxLength, data.devFile);
    const ev = await evaluate(
      session,
      layerParams(opts.backbone, tensors),
      dev.examples,
      data.info.task,
      numLabels,
      tokenizer.padId,
      cfg.batchSize * 2,
      opts.signal,
      data.positiveClass,
    );
    return { ...ev.metrics };
  } finally {
    await session.release();
  }
}
