/**
 * The JSON results of `spartan eval`, `audit`, `rank` and `card` (`--json`, one object on stdout), and the progress
 * events of `audit` (JSON lines on stderr). Type-only: the CLI writes these shapes, the extension and its webview
 * read them, so a change here is a compile error on both sides instead of a silent drift.
 */

/** scikit-learn's per-class scores (zero_division = 0); support = rows whose true label it is. */
export interface LabelScores {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** Rows = true label, columns = predicted; `lines[t][p]` = the source lines of the rows in that cell. */
export interface ConfusionMatrix {
  labels: string[];
  matrix: number[][];
  lines?: number[][][];
}

/** One bar of a reliability diagram: rows whose confidence fell in (lo, hi]. */
export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean confidence of the bin's rows (0 when empty). */
  confidence: number;
  /** Share of the bin's rows that were right (multi-label: share of the (row, label) events that were present). */
  accuracy: number;
}

/** A memory's calibration (metadata key `calibration`); temperature 1 and `fitted` false without held-out rows. */
export interface Calibration {
  temperature: number;
  fitted: boolean;
  /** Which rows it was fitted on (the dev file, or the held-out share). */
  fittedOn?: string;
  rows?: number;
  /** Mean negative log-likelihood and ECE on those rows, before (T = 1) and after. */
  nll?: { uncalibrated: number; calibrated: number };
  ece?: { uncalibrated: number; calibrated: number };
  /** Multi-label tasks: the probability above which each label is predicted, tuned on the held-out rows. */
  thresholds?: Record<string, number>;
}

interface EvalCommon {
  rows: number;
  truncated: number;
  seconds: number;
  task: 'classification' | 'regression' | 'multilabel';
}

/** Calibration figures of classification and multi-label evaluations. */
interface EvalCalibration {
  /** Expected calibration error (15 equal-width bins) of the calibrated probabilities, and with T = 1. */
  ece: number;
  ece_uncalibrated: number;
  temperature: number;
  reliability: ReliabilityBin[];
  reliability_uncalibrated: ReliabilityBin[];
  per_label: Record<string, LabelScores>;
}

export interface ClassificationEval extends EvalCommon, EvalCalibration {
  task: 'classification';
  accuracy: number;
  f1: number;
  mcc: number;
  confusion: ConfusionMatrix;
}

export interface MultiLabelEval extends EvalCommon, EvalCalibration {
  task: 'multilabel';
  micro_f1: number;
  macro_f1: number;
  subset_accuracy: number;
  thresholds: Record<string, number>;
}

export interface RegressionEval extends EvalCommon {
  task: 'regression';
  pearson: number;
  spearman: number;
  mse: number;
}

export type EvalResult = ClassificationEval | MultiLabelEval | RegressionEval;

/** A row of `spartan audit`, most suspect first. */
export interface AuditRow {
  line: number;
  /** The label the file gives. */
  label: string;
  /** The out-of-fold model's most probable label. */
  predicted: string;
  /** Out-of-fold probability of the given label, and of the predicted one. */
  p_label: number;
  p_predicted: number;
  /** What the rows are ordered by, lowest (most suspect) first; see AuditResult.score. */
  score: number;
  /** Confident learning flags it: another label's probability reaches that label's per-class threshold. */
  issue: boolean;
}

/** How `audit` scores a row from its out-of-fold probabilities (src/engine/analysis/audit.ts). */
export type AuditScore = 'self-confidence' | 'normalized-margin' | 'adjusted-margin';

export interface AuditResult {
  file: string;
  folds: number;
  /** Fold repetitions (different seeds) whose probabilities were averaged. */
  repeats: number;
  /** Share of each fold's training rows held out for early stopping and temperature scaling (0: none). */
  devShare: number;
  score: AuditScore;
  labels: string[];
  /** Every row of the file, ordered by `score` ascending (most suspect first). */
  rows: AuditRow[];
  /** How many rows confident learning flags. */
  issues: number;
  /** Per-class thresholds: the mean out-of-fold probability of class k over the rows labelled k. */
  thresholds: Record<string, number>;
  /** Temperature of each fold memory, fitted on its inner dev rows (1 without them). */
  temperatures: number[];
  seconds: number;
}

/** `audit` progress on stderr, besides the trainer's events of each fold (which carry a `fold` key). */
export type AuditEvent =
  | { event: 'audit-start'; folds: number; repeats: number; rows: number; labels: string[] }
  | { event: 'fold'; fold: number; folds: number; trainRows: number; heldOutRows: number }
  | { event: 'audit-done'; seconds: number; issues: number };

/** A row of `spartan rank`, most uncertain first. */
export interface RankRow {
  line: number;
  /** Classification: the most probable label; multi-label: the labels above their thresholds. */
  predicted: string | string[];
  /** Top probability minus the second (single-label), or the smallest |p − threshold| (multi-label). */
  margin: number;
  /** Entropy (nats) of the calibrated probabilities (multi-label: summed over the labels' Bernoullis). */
  entropy: number;
  /** The row's own label when the file gives one. */
  label?: string | string[];
}

export interface RankResult {
  file: string;
  memory: string;
  /** Ordered by margin ascending, then entropy descending. */
  rows: RankRow[];
}

export interface CardResult {
  card: string;
  bytes: number;
}

/** `spartan routes --json`: parent routing of one layer per label (the paper's Figure 2; engine/analysis/routing.ts). */
export interface RoutingReport {
  layer: number;
  parents: number;
  topK: number;
  labels: string[];
  /** Real tokens per label. */
  tokens: number[];
  /** counts[label][parent]: share of the label's tokens whose top-K parents include this parent, in [0, 1]. Rows sum to K. */
  counts: number[][];
  /** meanGate[label][parent]: the parent's gate weight averaged over the label's tokens (0 where not selected). Rows sum to 1. */
  meanGate: number[][];
}
