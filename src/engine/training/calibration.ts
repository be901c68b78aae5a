/**
 * How far to trust a probability: temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural
 * Networks"), expected calibration error over equal-width bins, the reliability diagram those bins draw, and
 * the per-label decision thresholds of a multi-label task.
 *
 * Temperature scaling divides the logits by one scalar T fitted on held-out rows; it never changes which label
 * wins (argmax), only how sure the model says it is, so accuracy and the confusion matrix are unaffected.
 */

import type { Calibration, ReliabilityBin } from '../../protocol/results';

export type { Calibration, ReliabilityBin };

/** Bins of the expected calibration error, as the paper above and most libraries (torchmetrics' default is 15). */
export const ECE_BINS = 15;

export const UNCALIBRATED: Calibration = { temperature: 1, fitted: false };

/** softmax(logits / T), in float64. */
export function softmaxWithTemperature(logits: ArrayLike<number>, temperature = 1): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] / temperature);
  const e = Array.from(logits, (v) => Math.exp(v / temperature - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** σ(logit / T) for every output (multi-label). */
export function sigmoidWithTemperature(logits: ArrayLike<number>, temperature = 1): number[] {
  return Array.from(logits, (v) => 1 / (1 + Math.exp(-v / temperature)));
}

/** Mean −log p(gold) of softmax(logits / T). */
export function softmaxNll(logits: ArrayLike<number>[], gold: number[], temperature: number): number {
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const z = logits[i];
    let max = -Infinity;
    for (let k = 0; k < z.length; k++) max = Math.max(max, z[k] / temperature);
    let s = 0;
    for (let k = 0; k < z.length; k++) s += Math.exp(z[k] / temperature - max);
    sum += -(z[gold[i]] / temperature - max - Math.log(s));
  }
  return logits.length ? sum / logits.length : 0;
}

/** Mean binary cross-entropy of σ(logits / T) against multi-hot targets, over every (row, label). */
export function sigmoidNll(logits: ArrayLike<number>[], targets: number[][], temperature: number): number {
  let sum = 0,
    n = 0;
  for (let i = 0; i < logits.length; i++) {
    for (let k = 0; k < logits[i].length; k++) {
      const z = logits[i][k] / temperature;
      // softplus(z) − t·z, computed without overflow.
      sum += Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))) - targets[i][k] * z;
      n++;
    }
  }
  return n ? sum / n : 0;
}

/**
 * The temperature minimising `nll(T)`. NLL is convex in 1/T for both softmax and sigmoid outputs, so a
 * golden-section search over log T in [1/100, 100] finds the minimum to ~1e-6 in log T.
 */
export function fitTemperature(nll: (temperature: number) => number): number {
  let lo = Math.log(0.01),
    hi = Math.log(100);
  const phi = (Math.sqrt(5) - 1) / 2;
  let a = hi - phi * (hi - lo),
    b = lo + phi * (hi - lo);
  let fa = nll(Math.exp(a)),
    fb = nll(Math.exp(b));
  while (hi - lo > 1e-6) {
    if (fa < fb) {
      hi = b;
      b = a;
      fb = fa;
      a = hi - phi * (hi - lo);
      fa = nll(Math.exp(a));
    } else {
      lo = a;
      a = b;
      fa = fb;
      b = lo + phi * (hi - lo);
      fb = nll(Math.exp(b));
    }
  }
  return Math.exp((lo + hi) / 2);
}

/**
 * Reliability bins: each row's `confidence` goes to the bin (i/n, (i+1)/n] (a confidence of 0 to the first),
 * `correct` says whether the row was right.
 */
export function reliabilityBins(confidence: number[], correct: boolean[], bins = ECE_BINS): ReliabilityBin[] {
  const out: ReliabilityBin[] = Array.from({ length: bins }, (_, i) => ({
    lo: i / bins,
    hi: (i + 1) / bins,
    count: 0,
    confidence: 0,
    accuracy: 0,
  }));
  for (let i = 0; i < confidence.length; i++) {
    const bin = Math.min(bins - 1, Math.max(0, Math.ceil(confidence[i] * bins) - 1));
    out[bin].count++;
    out[bin].confidence += confidence[i];
    out[bin].accuracy += correct[i] ? 1 : 0;
  }
  for (const b of out) {
    if (b.count) {
      b.confidence /= b.count;
      b.accuracy /= b.count;
    }
  }
  return out;
}

/** ECE = Σ_bins (count / rows)·|accuracy − confidence|. */
export function eceOfBins(bins: ReliabilityBin[]): number {
  const total = bins.reduce((n, b) => n + b.count, 0);
  if (total === 0) return 0;
  return bins.reduce((s, b) => s + (b.count / total) * Math.abs(b.accuracy - b.confidence), 0);
}

/** Single-label: confidence = the top probability, correct = the top label is the gold one. */
export function softmaxReliability(probabilities: number[][], gold: number[], bins = ECE_BINS): ReliabilityBin[] {
  const confidence: number[] = [];
  const correct: boolean[] = [];
  probabilities.forEach((p, i) => {
    let best = 0;
    for (let k = 1; k < p.length; k++) if (p[k] > p[best]) best = k;
    confidence.push(p[best]);
    correct.push(best === gold[i]);
  });
  return reliabilityBins(confidence, correct, bins);
}

/**
 * Multi-label: every (row, label) is one binary event; the bins hold p(label) and "accuracy" is how often the
 * label was present — the calibration of each sigmoid output, pooled.
 */
export function sigmoidReliability(probabilities: number[][], targets: number[][], bins = ECE_BINS): ReliabilityBin[] {
  const confidence: number[] = [];
  const present: boolean[] = [];
  probabilities.forEach((p, i) =>
    p.forEach((v, k) => {
      confidence.push(v);
      present.push(targets[i][k] > 0.5);
    }),
  );
  return reliabilityBins(confidence, present, bins);
}

/** softmaxReliability of logits at temperature `t` (the fitted one; 1 for the uncalibrated figures). */
export function softmaxReliabilityAt(logits: ArrayLike<number>[], gold: number[], t: number): ReliabilityBin[] {
  return softmaxReliability(
    logits.map((l) => softmaxWithTemperature(l, t)),
    gold,
  );
}

/** sigmoidReliability of logits at temperature `t`. */
export function sigmoidReliabilityAt(logits: ArrayLike<number>[], targets: number[][], t: number): ReliabilityBin[] {
  return sigmoidReliability(
    logits.map((l) => sigmoidWithTemperature(l, t)),
    targets,
  );
}

/** Fits T by `nll` on `rows` held-out rows and reports NLL and ECE before (T = 1) and after (both task kinds). */
function fitCalibration(
  rows: number,
  fittedOn: string,
  nll: (t: number) => number,
  reliabilityAt: (t: number) => ReliabilityBin[],
): Calibration {
  const temperature = fitTemperature(nll);
  const ece = (t: number) => eceOfBins(reliabilityAt(t));
  return {
    temperature,
    fitted: true,
    fittedOn,
    rows,
    nll: { uncalibrated: nll(1), calibrated: nll(temperature) },
    ece: { uncalibrated: ece(1), calibrated: ece(temperature) },
  };
}

/** Fits T on held-out logits of a single-label task and reports NLL and ECE before and after. */
export function calibrateSoftmax(logits: ArrayLike<number>[], gold: number[], fittedOn: string): Calibration {
  if (logits.length === 0) return { ...UNCALIBRATED };
  return fitCalibration(
    logits.length,
    fittedOn,
    (t) => softmaxNll(logits, gold, t),
    (t) => softmaxReliabilityAt(logits, gold, t),
  );
}

/**
 * Multi-label: T fitted on the pooled binary cross-entropy, then each label's threshold tuned on the calibrated
 * probabilities to maximise that label's F1 (ties: the threshold closest to 0.5).
 */
export function calibrateSigmoid(logits: ArrayLike<number>[], targets: number[][], labels: string[], fittedOn: string): Calibration {
  const thresholds = Object.fromEntries(labels.map((l) => [l, 0.5]));
  if (logits.length === 0) return { ...UNCALIBRATED, thresholds };
  const fitted = fitCalibration(
    logits.length,
    fittedOn,
    (t) => sigmoidNll(logits, targets, t),
    (t) => sigmoidReliabilityAt(logits, targets, t),
  );
  const probs = logits.map((l) => sigmoidWithTemperature(l, fitted.temperature));
  labels.forEach((name, k) => {
    thresholds[name] = tuneThreshold(
      probs.map((p) => p[k]),
      targets.map((t) => t[k] > 0.5),
    );
  });
  return { ...fitted, thresholds };
}

/** The threshold in {0.05, 0.10, …, 0.95} with the best F1 of `p ≥ threshold` against `present`. */
export function tuneThreshold(p: number[], present: boolean[]): number {
  let best = 0.5,
    bestF1 = -1;
  for (let step = 1; step <= 19; step++) {
    const t = step / 20;
    let tp = 0,
      fp = 0,
      fn = 0;
    for (let i = 0; i < p.length; i++) {
      const yes = p[i] >= t;
      if (yes && present[i]) tp++;
      else if (yes) fp++;
      else if (present[i]) fn++;
    }
    const f1 = 2 * tp + fp + fn === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
    if (f1 > bestF1 + 1e-12 || (Math.abs(f1 - bestF1) <= 1e-12 && Math.abs(t - 0.5) < Math.abs(best - 0.5))) {
      best = t;
      bestF1 = f1;
    }
  }
  return best;
}
