/**
 * The messages between the extension (src/extension/benchmarkPanel.ts) and the benchmark panel's page
 * (src/webview/, bundled into dist/webview/panel.js), and the data the page draws. Type-only and free of imports
 * beyond this folder's leaf modules, so both sides check against it: the extension with `tsc -p .`, the page with
 * `tsc -p tsconfig.webview.json` (DOM lib, no Node). The page still checks the values it draws: a benchmark
 * report may come from a file the user opened.
 */
import type { BenchEvent, TrainEvent } from './events';
import type { EvalResult, RoutingReport } from './results';

/** A training run's loss curve and dev evaluations, as the panel draws it. */
export interface TrainingCurve {
  task: string;
  memory: string;
  startedAt: string;
  steps: [number, number][]; // [step, loss]
  evals: { step: number; epoch: number; metrics: Record<string, number> }[];
  totalSteps?: number;
  seconds?: number;
}

export type PanelReveal = 'routing' | 'evaluation';

/** The parent-routing report as the panel draws it: `spartan routes --json` and where it came from. */
export interface PanelRouting extends RoutingReport {
  memory: string;
  memoryName: string;
  data: string;
  dataName: string;
  ranAt: string;
}

/** The last evaluation (`spartan eval --json`) and what it was run on. */
export interface PanelEvaluation {
  memoryName: string;
  /** The evaluated JSONL file (absolute), which the confusion cells' rows open at their lines. */
  data: string;
  dataName: string;
  result: EvalResult;
  ranAt: string;
}

/** One row of a benchmark report (profile × method × shape); a missing figure is null. */
export interface PanelBenchRow {
  profile: string;
  method: string;
  batch: number;
  seq: number;
  instancesPerMinute?: number | null;
  trainExamplesPerSecond?: number | null;
  peakRssMB?: number | null;
  storageBytes?: number | null;
  inferenceVsPlain?: number | null;
  trainingVsPlain?: number | null;
}

/** A `spartan bench --json` report as the panel draws it (the extension adds `ranAt`, and `source` for a file). */
export interface PanelBench {
  rows: PanelBenchRow[];
  ranAt?: string;
  source?: string;
  note?: string;
  backbone?: string;
  machine?: string | object;
  profiles?: { profile: string; label?: string; rationale?: string; threads?: number }[];
  /** profile → its constraints (each a value or an object with `detail`, `enforced`, `requested`). */
  constraints?: Record<string, object>;
}

/** Extension → page. */
export type ToWebview =
  | {
      type: 'update';
      curves: TrainingCurve[];
      bench: PanelBench | null;
      routing: PanelRouting | null;
      evaluation: PanelEvaluation | null;
      reveal?: PanelReveal;
    }
  | { type: 'event'; command: 'train'; event: TrainEvent }
  | { type: 'event'; command: 'bench'; event: BenchEvent };

/** What the page reports having drawn (the e2e tests read it through the extension's API). */
export interface RenderedMessage {
  type: 'rendered';
  charts: number;
  curves: number;
  benchRows: number;
  routing: { layer: number; labels: number; parents: number; cells: number; view: 'counts' | 'gate' } | null;
  evaluation: EvaluationDrawn | null;
  heatCells: number;
}

/** What the evaluation section drew: confusion cells, non-empty reliability bins, per-label rows. */
export interface EvaluationDrawn {
  confusionCells: number;
  reliabilityBins: number;
  perLabel: number;
}

/** Page → extension. */
export type ToExtension =
  | { type: 'ready' }
  | RenderedMessage
  | { type: 'listedRows'; count: number }
  | { type: 'openRow'; file: string; line: number }
  | { type: 'showRouting'; memory?: string; data?: string }
  | { type: 'runBench' }
  | { type: 'openReport' }
  | { type: 'fineTune' }
  | { type: 'showLog' };

/** What the page keeps with `setState`, so it redraws at once when shown again. */
export interface PanelState {
  curves: TrainingCurve[];
  bench: PanelBench | null;
  live: {
    steps: [number, number][];
    evals: { step: number; epoch: number; metrics: Record<string, number> }[];
    totalSteps?: number;
  } | null;
  routing: PanelRouting | null;
  routingView: 'counts' | 'gate';
  evaluation: PanelEvaluation | null;
}
