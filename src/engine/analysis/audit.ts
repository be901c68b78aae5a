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
import type { AuditEvent, AuditResult, AuditRow } from '../../protocol/results';

export interface AuditInput {
  backbone: Backbone;
  tokenizer: RobertaTokenizer;
  task: TaskInfo;
  rows: Example[];
  file: string;
  folds: number;
  /** How each fold's memory is trained (no dev set: every epoch runs). */
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

/** Ranks rows from their out-of-fold probabilities (`probs[i][k]`), most suspect first. */
export function rankSuspects(
  probs: number[][],
  given: number[],
  labels: string[],
  lines: number[],
): { rows: AuditRow[]; thresholds: number[] } {
  const L = labels.length;
  const sum = new Array<number>(L).fill(0),
    count = new Array<number>(L).fill(0);
  probs.forEach((p, i) => {
    sum[given[i]] += p[given[i]];
    count[given[i]]++;
  });
  const thresholds = sum.map((s, k) => (count[k] ? s / count[k] : 1));
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
      issue: confident >= 0 && confident !== given[i],
    };
  });
  rows.sort((a, b) => a.p_label - b.p_label || b.p_predicted - a.p_predicted || a.line - b.line);
  return { rows, thresholds };
}

export async function auditLabels(input: AuditInput): Promise<AuditResult> {
  const started = Date.now();
  const { backbone, tokenizer, task, rows, config } = input;
  const emit = input.onEvent ?? (() => {});
  if (task.task !== 'classification') {
    throw new SpartanError(
      `${input.file}: audit needs a single-label classification file (this one is ${task.task === 'multilabel' ? 'multi-label' : 'regression'})`,
    );
  }
  if (!Number.isInteger(input.folds) || input.folds < 2) throw new SpartanError(`--folds must be an integer ≥ 2, got ${input.folds}`);
  if (rows.length < input.folds) throw new SpartanError(`${input.file}: ${rows.length} rows cannot be split into ${input.folds} folds`);
  const L = task.labels.length;
  const labelIndex = new Map(task.labels.map((l, i) => [l, i]));
  const given = rows.map((r) => labelIndex.get(r.label as string)!);
  const fold = stratifiedFolds(
    rows.map((r) => r.label as string),
    input.folds,
    config.seed,
  );
  emit({ event: 'audit-start', folds: input.folds, rows: rows.length, labels: task.labels });

  const session = await GraphSession.create(compileInference(graphOptions(backbone, config.method, 'classification', L)), {
    threads: config.threads,
  });
  const probs = new Array<number[]>(rows.length);
  try {
    for (let f = 0; f < input.folds; f++) {
      input.signal?.throwIfAborted();
      const heldOut = rows.map((_, i) => i).filter((i) => fold[i] === f);
      const trainRows = rows.filter((_, i) => fold[i] !== f);
      emit({ event: 'fold', fold: f + 1, folds: input.folds, trainRows: trainRows.length, heldOutRows: heldOut.length });
      const result = await train(
        {
          backbone,
          tokenizer,
          task,
          train: trainRows,
          trainFile: `${input.file} (fold ${f + 1} of ${input.folds})`,
          onEvent: (e) => emit({ ...e, fold: f + 1 }),
          signal: input.signal,
        },
        { ...config, patience: 0 },
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
      heldOut.forEach((i, j) => (probs[i] = softmaxWithTemperature(logits[j])));
    }
  } finally {
    await session.release();
  }
  const ranked = rankSuspects(
    probs,
    given,
    task.labels,
    rows.map((r) => r.line),
  );
  const issues = ranked.rows.filter((r) => r.issue).length;
  const seconds = (Date.now() - started) / 1000;
  emit({ event: 'audit-done', seconds, issues });
  return {
    file: input.file,
    folds: input.folds,
    labels: task.labels,
    rows: ranked.rows,
    issues,
    thresholds: Object.fromEntries(task.labels.map((l, k) => [l, ranked.thresholds[k]])),
    seconds,
  };
}
