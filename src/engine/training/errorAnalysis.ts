/**
 * Where a classifier goes wrong: the confusion matrix (rows = true label, columns = predicted), per-label
 * precision/recall/F1/support, and the metrics of multi-label tasks (micro/macro F1 over labels, subset accuracy).
 * Zero denominators give 0, as scikit-learn's zero_division=0.
 */
import type { ConfusionMatrix, LabelScores } from '../../protocol/results';

export type { ConfusionMatrix, LabelScores };

/** `pred`/`gold`: class indices; `lines`: each row's source line, so a cell can list its rows. */
export function confusionMatrix(pred: number[], gold: number[], labels: string[], lines?: number[]): ConfusionMatrix {
  const L = labels.length;
  const matrix = Array.from({ length: L }, () => new Array<number>(L).fill(0));
  const cellLines = lines ? Array.from({ length: L }, () => Array.from({ length: L }, () => [] as number[])) : undefined;
  for (let i = 0; i < gold.length; i++) {
    matrix[gold[i]][pred[i]]++;
    cellLines?.[gold[i]][pred[i]].push(lines![i]);
  }
  return { labels: [...labels], matrix, ...(cellLines ? { lines: cellLines } : {}) };
}

function scores(tp: number, fp: number, fn: number): LabelScores {
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  const f1 = 2 * tp + fp + fn === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  return { precision, recall, f1, support: tp + fn };
}

/** Per-label scores read off a confusion matrix. */
export function perLabelScores(confusion: ConfusionMatrix): Record<string, LabelScores> {
  const { labels, matrix } = confusion;
  // Keyed by label names (user data): a null prototype, so a label "__proto__" is a key like any other.
  const out: Record<string, LabelScores> = Object.create(null);
  labels.forEach((name, k) => {
    const tp = matrix[k][k];
    let fp = 0,
      fn = 0;
    for (let j = 0; j < labels.length; j++) {
      if (j === k) continue;
      fp += matrix[j][k];
      fn += matrix[k][j];
    }
    out[name] = scores(tp, fp, fn);
  });
  return { ...out };
}

export interface MultiLabelMetrics {
  micro_f1: number;
  macro_f1: number;
  subset_accuracy: number;
  per_label: Record<string, LabelScores>;
}

/** `predicted`/`gold`: one boolean per label per row. */
export function multiLabelMetrics(predicted: boolean[][], gold: boolean[][], labels: string[]): MultiLabelMetrics {
  const tp = new Array<number>(labels.length).fill(0),
    fp = [...tp],
    fn = [...tp];
  let exact = 0;
  for (let i = 0; i < gold.length; i++) {
    let same = true;
    for (let k = 0; k < labels.length; k++) {
      const p = predicted[i][k],
        g = gold[i][k];
      if (p && g) tp[k]++;
      else if (p) fp[k]++;
      else if (g) fn[k]++;
      if (p !== g) same = false;
    }
    if (same) exact++;
  }
  const per_label: Record<string, LabelScores> = Object.fromEntries(labels.map((name, k) => [name, scores(tp[k], fp[k], fn[k])]));
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  const micro = scores(sum(tp), sum(fp), sum(fn));
  const macro = labels.length ? labels.reduce((s, name) => s + per_label[name].f1, 0) / labels.length : 0;
  return { micro_f1: micro.f1, macro_f1: macro, subset_accuracy: gold.length ? exact / gold.length : 0, per_label };
}

/** A table for the terminal: a header row and aligned columns. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(4)) : c)))];
  const widths = header.map((_, j) => Math.max(...cells.map((r) => r[j].length)));
  return cells.map((r) => r.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ')).join('\n');
}
