/**
 * What to label next (uncertainty sampling, as Prodigy's textcat.teach): rows ordered by how unsure the memory's
 * calibrated probabilities are — smallest margin between the top two labels first, then highest entropy. For a
 * multi-label memory the margin is the distance of the closest label to its threshold, the entropy the sum of
 * the labels' Bernoulli entropies.
 */
import type { TextRow } from '../data/jsonl';
import type { TaskModel } from '../pipeline/taskModel';
import type { RankRow } from '../../protocol/results';
import { SpartanError } from '../types';

/** Entropy in nats of a distribution (terms with p = 0 contribute 0). */
export function entropy(p: number[]): number {
  return p.reduce((s, v) => (v > 0 ? s - v * Math.log(v) : s), 0);
}

/** Margin and entropy of one row's probabilities; `thresholds` only for multi-label. */
export function uncertaintyOf(p: number[], thresholds?: number[]): { margin: number; entropy: number } {
  if (thresholds) {
    return {
      margin: Math.min(...p.map((v, k) => Math.abs(v - thresholds[k]))),
      entropy: p.reduce((s, v) => s + entropy([v, 1 - v]), 0),
    };
  }
  const sorted = [...p].sort((a, b) => b - a);
  return { margin: sorted[0] - (sorted[1] ?? 0), entropy: entropy(p) };
}

export function orderByUncertainty<R extends { margin: number; entropy: number; line: number }>(rows: R[]): R[] {
  return rows.sort((a, b) => a.margin - b.margin || b.entropy - a.entropy || a.line - b.line);
}

export async function rankRows(model: TaskModel, rows: TextRow[], batchSize = 32, signal?: AbortSignal): Promise<RankRow[]> {
  const task = model.metadata.task;
  if (task === 'regression')
    throw new SpartanError('rank needs a classification or multi-label memory (this one is regression: it has no probabilities)');
  const logits = await model.logits(rows, batchSize, signal);
  const names = model.metadata.labels;
  const thresholds = task === 'multilabel' ? model.thresholds : undefined;
  const ranked = rows.map((r, i): RankRow => {
    const p = model.probabilities(logits[i]);
    let best = 0;
    for (let k = 1; k < p.length; k++) if (p[k] > p[best]) best = k;
    const predicted = thresholds ? names.filter((_, k) => p[k] >= thresholds[k]) : names[best];
    return {
      line: r.line,
      predicted,
      ...uncertaintyOf(p, thresholds),
      ...(r.label !== undefined && typeof r.label !== 'number' ? { label: r.label } : {}),
    };
  });
  return orderByUncertainty(ranked);
}
