/** Human-readable tables of `spartan eval`'s result: the metrics line, per-label scores, the confusion matrix. */
import type { EvalResult } from '../protocol/results';
import { formatTable } from '../engine';

export function formatEvalReport(file: string, r: EvalResult): string {
  const f = (v: number) => v.toFixed(4);
  if (r.task === 'regression') return `${file}: ${r.rows} rows  pearson ${f(r.pearson)}  spearman ${f(r.spearman)}  mse ${f(r.mse)}`;
  const head =
    r.task === 'classification'
      ? `${file}: ${r.rows} rows  accuracy ${f(r.accuracy)}  f1 ${f(r.f1)}  mcc ${f(r.mcc)}`
      : `${file}: ${r.rows} rows  micro_f1 ${f(r.micro_f1)}  macro_f1 ${f(r.macro_f1)}  subset_accuracy ${f(r.subset_accuracy)}`;
  const calibration = `calibration: ece ${f(r.ece)} at temperature ${r.temperature.toFixed(3)} (uncalibrated ece ${f(r.ece_uncalibrated)})`;
  const perLabel = formatTable(
    ['label', 'precision', 'recall', 'f1', 'support', ...(r.task === 'multilabel' ? ['threshold'] : [])],
    Object.entries(r.per_label).map(([name, s]) => [
      name,
      s.precision,
      s.recall,
      s.f1,
      s.support,
      ...(r.task === 'multilabel' ? [r.thresholds[name].toFixed(2)] : []),
    ]),
  );
  const parts = [head, calibration, '', perLabel];
  if (r.task === 'classification') {
    const { labels, matrix } = r.confusion;
    parts.push(
      '',
      'confusion (rows: true label, columns: predicted)',
      formatTable(
        ['', ...labels],
        matrix.map((row, i) => [labels[i], ...row]),
      ),
    );
  }
  return parts.join('\n');
}
