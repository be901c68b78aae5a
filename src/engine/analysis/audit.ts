/**
 * Suspect labels, confident-learning style (Northcutt et al. 2021, "Confident Learning"; cleanlab): train k
 * memories, each on all rows but one fold, and score every row with the memory that never saw it. A row whose
 * given label gets a low out-of-fold probability is suspect; rows are ranked by that probability (cleanlab's
 * "self-confidence" ranking), and flagged as issues when another label's probability reaches that label's
 * per-class threshold (the mean out-of-fold probability of class k over the rows labelled k) — the off-diagonal
 * of the confident joint.
 */
import type { Backbone } from '../models/backbone';
import type { RobertaTokenizer } from '../tokenizers/robertaTokenizer';
import type { Example, TaskInfo } from '../data/jsonl';
import { encodeExamples } from '../data/batching';
import { compileInference } from '../runtime/compile';
import { GraphSession } from '../runtime/session';
import { predictLogits } from '../runtime/predict';
import { graphOptions, layerParams, train, TrainConfig, TrainEvent } from '../training/trainer';
import { softmaxWithTemperature } from '../training/calibration';
import { SpartanError } from '../types';
import { createRng, shuffleInPlace } from '../util/random';
import type { AuditEvent, AuditResult, AuditRow, AuditScore } from '../../protocol/results';

export interface AuditInput {
  backbone: Backbone;
  tokenizer: RobertaTokenizer;
  task: TaskInfo;
  rows: Example[];
  file: string;
  folds: number;
  /** Fold repetitions with different seeds, their probabilities averaged (default 1; the cost grows with it). */
  repeats?: number;
  /** Share of each fold's training rows held out for early stopping and its temperature (default 0: none). */
  devShare?: number;
  /**
   * Fewest inner dev rows worth holding out (default AUDIT_DEFAULTS.minDevRows): a temperature fitted on a handful
   * of rows that are all right runs to its bound and turns every probability into 0 or 1, so a smaller file trains
   * each fold on all its rows for every epoch instead.
   */
  minDevRows?: number;
  /** How rows are ordered (default DEFAULT_AUDIT_SCORE). */
  score?: AuditScore;
  /** How each fold's memory is trained (`epochs` is the most it runs; `patience` applies with a devShare). */
  config: TrainConfig;
  onEvent?: (e: AuditEvent | (TrainEvent & { fold: number })) => void;
  signal?: AbortSignal;
}

/**
 * Fold of each row: within each label, a seeded shuffle dealt round-robin (continuing where the previous label
 * stopped), so every fold holds each label in proportion and fold sizes differ by at most one.
 */
export function stratifiedFolds(labels: string[], folds: number, seed: number): number[] {
  const byLabel = new Map<string, number[]>();
  labels.forEach((l, i) => {
    if (!byLabel.has(l)) byLabel.set(l, []);
    byLabel.get(l)!.push(i);
  });
  const rng = createRng(seed);
  const fold = new Array<number>(labels.length);
  let next = 0;
  for (const name of [...byLabel.keys()].sort()) {
    for (const i of shuffleInPlace(byLabel.get(name)!, rng)) fold[i] = next++ % folds;
  }
  return fold;
}

/**
 * How a row's suspicion is scored from its out-of-fold probabilities `p`, given label `y` and the per-class
 * thresholds `t` (lower = more suspect):
 * - `self-confidence`: p[y] (cleanlab's default ranking);
 * - `normalized-margin`: p[y] − max_{k≠y} p[k] (cleanlab's `normalized_margin`);
 * - `adjusted-margin`: the margin after subtracting each class's threshold, (p[y] − t[y]) − max_{k≠y} (p[k] − t[k]):
 *   a class the model under-predicts (low mean self-confidence) is not blamed for its rows' lower probabilities.
 */
export const AUDIT_SCORES: readonly AuditScore[] = ['self-confidence', 'normalized-margin', 'adjusted-margin'];
export const DEFAULT_AUDIT_SCORE: AuditScore = 'self-confidence';

/**
 * `spartan audit`'s defaults, the same for every data set: up to 8 epochs per fold, early-stopped on an inner
 * 10 % dev share that also fits each fold's temperature, so that the folds' probabilities are on one scale before
 * they are pooled into one ranking (and averaged over repetitions). Measured on SST-2 with 5 % planted flips
 * (scripts/audit-grid.ts, results/audit-grid.txt) it ranks no better than 3 epochs without a dev share (top-150
 * precision 0.200 vs 0.213, 3.8 vs 2.5 CPU-minutes): on SST-2 the out-of-fold model's ~70 % accuracy is the limit.
 */
export const AUDIT_DEFAULTS = { folds: 4, epochs: 8, devShare: 0.1, patience: 2, repeats: 1, minDevRows: 40 } as const;

export function suspectScore(p: number[], y: number, thresholds: number[], score: AuditScore): number {
  if (score === 'self-confidence') return p[y];
  const adjust = score === 'adjusted-margin';
  let other = -Infinity;
  for (let k = 0; k < p.length; k++) if (k !== y) other = Math.max(other, adjust ? p[k] - thresholds[k] : p[k]);
  return (adjust ? p[y] - thresholds[y] : p[y]) - (p.length > 1 ? other : 0);
}

/** Per-class thresholds of confident learning: the mean out-of-fold probability of class k over the rows labelled k. */
export function classThresholds(probs: number[][], given: number[], numLabels: number): number[] {
  const sum = new Array<number>(numLabels).fill(0),
    count = new Array<number>(numLabels).fill(0);
  probs.forEach((p, i) => {
    sum[given[i]] += p[given[i]];
    count[given[i]]++;
  });
  return sum.map((s, k) => (count[k] ? s / count[k] : 1));
}

/** Ranks rows from their out-of-fold probabilities (`probs[i][k]`), most suspect (lowest `score`) first. */
export function rankSuspects(
  probs: number[][],
  given: number[],
  labels: string[],
  lines: number[],
  score: AuditScore = 'self-confidence',
): { rows: AuditRow[]; thresholds: number[] } {
  const L = labels.length;
  const thresholds = classThresholds(probs, given, L);
  const rows: AuditRow[] = probs.map((p, i) => {
    let predicted = 0;
    for (let k = 1; k < L; k++) if (p[k] > p[predicted]) predicted = k;
    // The confident joint's column: the most probable label among those reaching their own threshold.
    let confident = -1;
    for (let k = 0; k < L; k++) if (p[k] >= thresholds[k] && (confident < 0 || p[k] > p[confident])) confident = k;
    return {
      line: lines[i],
      label: labels[given[i]],
      predicted: labels[predicted],
      p_label: p[given[i]],
      p_predicted: p[predicted],
      score: suspectScore(p, given[i], thresholds, score),
      issue: confident >= 0 && confident !== given[i],
    };
  });
  rows.sort((a, b) => a.score - b.score || a.p_label - b.p_label || b.p_predicted - a.p_predicted || a.line - b.line);
  return { rows, thresholds };
}

/** The audit's out-of-fold probabilities, and what it cost. */
export interface OutOfFold {
  /** probs[i][k]: mean over the repetitions of the calibrated probability of label k from the memory that never saw row i. */
  probs: number[][];
  /** Temperature of each fold memory (repetition-major), fitted on its inner dev rows; 1 without them. */
  temperatures: number[];
  /** Best epoch of each fold memory (the last one without inner dev rows). */
  bestEpochs: number[];
  /** Optimiser steps over all fold memories. */
  steps: number;
}

/** Labels the audit can score: a single-label classification file (multi-label and regression are refused). */
function checkAuditable(input: AuditInput): void {
  const { task } = input;
  if (task.task === 'multilabel')
    throw new SpartanError(
      `${input.file}: audit does not support multi-label files yet (it needs one given label per row to score); ` +
        'audit a single-label file, or one label at a time as a yes/no file',
    );
  if (task.task !== 'classification')
    throw new SpartanError(`${input.file}: audit needs a single-label classification file (this one is regression)`);
  if (!Number.isInteger(input.folds) || input.folds < 2) throw new SpartanError(`--folds must be an integer ≥ 2, got ${input.folds}`);
  if (input.rows.length < input.folds)
    throw new SpartanError(`${input.file}: ${input.rows.length} rows cannot be split into ${input.folds} folds`);
  const repeats = input.repeats ?? 1;
  if (!Number.isInteger(repeats) || repeats < 1) throw new SpartanError(`--repeats must be an integer ≥ 1, got ${repeats}`);
  const share = input.devShare ?? 0;
  if (!(share >= 0 && share < 0.5)) throw new SpartanError(`--dev-share must be in [0, 0.5), got ${share}`);
}

/**
 * Trains `folds × repeats` memories and returns every row's out-of-fold probabilities. Repetition r deals the
 * folds and seeds training with `seed + 1000·r`, so its errors differ and the average is smoother. With a
 * `devShare`, each fold memory holds that share of its training rows out (stratified) to pick its best epoch
 * (early stopping with the config's patience) and to fit its temperature, so the folds' probabilities are
 * calibrated on rows they did not train on before they are averaged.
 */
export async function outOfFoldProbabilities(input: AuditInput): Promise<OutOfFold> {
  checkAuditable(input);
  const { backbone, tokenizer, task, rows, config } = input;
  const emit = input.onEvent ?? (() => {});
  const repeats = input.repeats ?? 1;
  const devShare = input.devShare ?? 0;
  const L = task.labels.length;
  const labelsOfRows = rows.map((r) => r.label as string);
  const sums = rows.map(() => new Array<number>(L).fill(0));
  const out: OutOfFold = { probs: [], temperatures: [], bestEpochs: [], steps: 0 };
  const session = await GraphSession.create(compileInference(graphOptions(backbone, config.method, 'classification', L)), {
    threads: config.threads,
  });
  try {
    for (let r = 0; r < repeats; r++) {
      const seed = config.seed + 1000 * r;
      const fold = stratifiedFolds(labelsOfRows, input.folds, seed);
      for (let f = 0; f < input.folds; f++) {
        input.signal?.throwIfAborted();
        const foldNo = r * input.folds + f + 1;
        const heldOut = rows.map((_, i) => i).filter((i) => fold[i] === f);
        let trainIdx = rows.map((_, i) => i).filter((i) => fold[i] !== f);
        let devIdx: number[] = [];
        if (devShare > 0 && Math.round(devShare * trainIdx.length) >= (input.minDevRows ?? AUDIT_DEFAULTS.minDevRows)) {
          // An inner stratified split: the fold of ⌈1/share⌉ inner folds that is numbered 0 becomes the dev rows.
          const inner = stratifiedFolds(
            trainIdx.map((i) => labelsOfRows[i]),
            Math.max(2, Math.round(1 / devShare)),
            seed + f + 1,
          );
          devIdx = trainIdx.filter((_, j) => inner[j] === 0);
          trainIdx = trainIdx.filter((_, j) => inner[j] !== 0);
        }
        emit({
          event: 'fold',
          fold: foldNo,
          folds: input.folds * repeats,
          trainRows: trainIdx.length,
          heldOutRows: heldOut.length,
        });
        const where = `${input.file} (fold ${f + 1} of ${input.folds}${repeats > 1 ? `, repetition ${r + 1} of ${repeats}` : ''})`;
        const result = await train(
          {
            backbone,
            tokenizer,
            task,
            train: trainIdx.map((i) => rows[i]),
            trainFile: where,
            ...(devIdx.length ? { dev: devIdx.map((i) => rows[i]), devFile: `${where}, inner dev rows` } : {}),
            onEvent: (e) => emit({ ...e, fold: foldNo }),
            signal: input.signal,
          },
          { ...config, seed, patience: devIdx.length ? config.patience : 0 },
        );
        const { examples } = encodeExamples(
          heldOut.map((i) => rows[i]),
          tokenizer,
          'classification',
          task.labels,
          config.maxLength,
          input.file,
        );
        const logits = await predictLogits(session, layerParams(backbone, result.tensors), examples, {
          batchSize: config.batchSize * 2,
          padId: tokenizer.padId,
          task: 'classification',
          numLabels: L,
          signal: input.signal,
        });
        const T = result.calibration.temperature;
        heldOut.forEach((i, j) => softmaxWithTemperature(logits[j], T).forEach((v, k) => (sums[i][k] += v / repeats)));
        out.temperatures.push(T);
        out.bestEpochs.push(result.bestEpoch);
        out.steps += result.steps;
      }
    }
  } finally {
    await session.release();
  }
  out.probs = sums;
  return out;
}

export async function auditLabels(input: AuditInput): Promise<AuditResult> {
  const started = Date.now();
  checkAuditable(input);
  const { task, rows } = input;
  const emit = input.onEvent ?? (() => {});
  const repeats = input.repeats ?? 1;
  const score = input.score ?? DEFAULT_AUDIT_SCORE;
  emit({ event: 'audit-start', folds: input.folds, repeats, rows: rows.length, labels: task.labels });
  const oof = await outOfFoldProbabilities(input);
  const labelIndex = new Map(task.labels.map((l, i) => [l, i]));
  const ranked = rankSuspects(
    oof.probs,
    rows.map((r) => labelIndex.get(r.label as string)!),
    task.labels,
    rows.map((r) => r.line),
    score,
  );
  const issues = ranked.rows.filter((r) => r.issue).length;
  const seconds = (Date.now() - started) / 1000;
  emit({ event: 'audit-done', seconds, issues });
  return {
    file: input.file,
    folds: input.folds,
    repeats,
    devShare: input.devShare ?? 0,
    score,
    labels: task.labels,
    rows: ranked.rows,
    issues,
    thresholds: Object.fromEntries(task.labels.map((l, k) => [l, ranked.thresholds[k]])),
    temperatures: oof.temperatures,
    seconds,
  };
}
