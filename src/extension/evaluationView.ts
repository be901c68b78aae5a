/**
 * The last evaluation the benchmark panel shows (confusion matrix, reliability diagram, per-label scores): set by
 * *Evaluate Memory on File…*, read by the panel when it posts its update. One per window; not persisted.
 */
import * as path from 'node:path';
import type { EvalResult } from '../protocol/results';
import type { PanelEvaluation } from '../protocol/webview';

/** The evaluation and what it ran on, as the panel draws it. */
export type EvaluationView = PanelEvaluation;

let latest: EvaluationView | undefined;

export function setEvaluation(memoryName: string, data: string, result: EvalResult): EvaluationView {
  latest = { memoryName, data, dataName: path.basename(data), result, ranAt: new Date().toISOString() };
  return latest;
}

export function latestEvaluation(): EvaluationView | undefined {
  return latest;
}

/**
 * An evaluation run on a file of selected rows (the held-out share the fine-tune wrote to a temp file) points at
 * that file's lines: `lineOf[k − 1]` is the source line of its k-th line, so the confusion cells open the rows
 * where the user wrote them.
 */
export function remapLines(result: EvalResult, lineOf: number[]): EvalResult {
  if (result.task !== 'classification' || !result.confusion.lines) return result;
  const lines = result.confusion.lines.map((row) => row.map((cell) => cell.map((l) => lineOf[l - 1] ?? l)));
  return { ...result, confusion: { ...result.confusion, lines } };
}
