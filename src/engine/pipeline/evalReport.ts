/**
 * What `spartan eval` reports on a labelled file: the task's metrics, and for classification tasks where the
 * memory goes wrong (confusion matrix with each cell's source lines, per-label scores) and how far its
 * probabilities can be trusted (ECE and reliability bins with the stored temperature and with T = 1).
 */
import type { Example } from '../data/jsonl';
import type { EvalResult } from '../../protocol/results';
import { ReliabilityBin, eceOfBins, sigmoidReliabilityAt, softmaxReliabilityAt } from '../training/calibration';
import { confusionMatrix, multiLabelMetrics, perLabelScores } from '../training/errorAnalysis';
import { multiHot } from '../training/trainer';
import type { TaskModel } from './taskModel';

/** How far the probabilities can be trusted: reliability and ECE at the stored temperature and at T = 1. */
function trustFigures(reliabilityAt: (t: number) => ReliabilityBin[], temperature: number) {
  const reliability = reliabilityAt(temperature);
  const raw = reliabilityAt(1);
  return {
    ece: eceOfBins(reliability),
    ece_uncalibrated: eceOfBins(raw),
    temperature,
    reliability,
    reliability_uncalibrated: raw,
  };
}

export async function evaluationReport(
  model: TaskModel,
  rows: Example[],
  file: string,
  batchSize = 32,
  signal?: AbortSignal,
): Promise<EvalResult> {
  const t0 = performance.now();
  const ev = await model.evaluate(rows, file, batchSize, signal);
  const seconds = () => (performance.now() - t0) / 1000;
  const common = { rows: rows.length, truncated: ev.truncated };
  const labels = model.metadata.labels;
  const temperature = model.calibration.temperature;
  const m = ev.metrics;

  if (model.metadata.task === 'regression') {
    return { task: 'regression', pearson: m.pearson, spearman: m.spearman, mse: m.mse, ...common, seconds: seconds() };
  }
  if (model.metadata.task === 'multilabel') {
    const targets = ev.examples.map((e) => multiHot(e, labels.length));
    const asBools = (t: number[]) => t.map((v) => v > 0.5);
    const predicted = ev.predictedSets!.map((set) => labels.map((_, k) => set.includes(k)));
    const scores = multiLabelMetrics(predicted, targets.map(asBools), labels);
    const thresholds = Object.fromEntries(labels.map((name, k) => [name, model.thresholds[k]]));
    return {
      task: 'multilabel',
      micro_f1: scores.micro_f1,
      macro_f1: scores.macro_f1,
      subset_accuracy: scores.subset_accuracy,
      per_label: scores.per_label,
      thresholds,
      ...trustFigures((t) => sigmoidReliabilityAt(ev.logits, targets, t), temperature),
      ...common,
      seconds: seconds(),
    };
  }
  const gold = ev.examples.map((e) => e.label);
  const confusion = confusionMatrix(
    ev.predictions,
    gold,
    labels,
    ev.examples.map((e) => e.line),
  );
  return {
    task: 'classification',
    accuracy: m.accuracy,
    f1: m.f1,
    mcc: m.mcc,
    per_label: perLabelScores(confusion),
    confusion,
    ...trustFigures((t) => softmaxReliabilityAt(ev.logits, gold, t), temperature),
    ...common,
    seconds: seconds(),
  };
}
