/**
 * The messages between the extension (src/extension/benchmarkPanel.ts) and the benchmark panel's page
 * (media/benchmark.js and the modules it loads). Type-only and free of imports beyond this folder's leaf modules,
 * so both sides check against it: the extension with `tsc -p .`, the page's JSDoc with `tsc -p
 * tsconfig.webview.json`. The report data (bench, routing, evaluation) travel as the CLI's JSON; the page
 * checks what it draws.
 */
import type { BenchEvent, TrainEvent } from './events';

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

/** Extension → page. */
export type ToWebview =
  | { type: 'update'; curves: TrainingCurve[]; bench: unknown; routing: unknown; evaluation: unknown; reveal?: PanelReveal }
  | { type: 'event'; command: 'train'; event: TrainEvent }
  | { type: 'event'; command: 'bench'; event: BenchEvent };

/** What the page reports having drawn (the e2e tests read it through the extension's API). */
export interface RenderedMessage {
  type: 'rendered';
  charts: number;
  curves: number;
  benchRows: number;
  routing: { layer: number; labels: number; parents: number; view: 'counts' | 'gate' } | null;
  evaluation: unknown;
  heatCells: number;
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

/** Report JSON as the page's drawing code walks it (it checks each value it draws). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ReportJson = any;

/** What the page keeps with `setState`, so it redraws at once when shown again. */
export interface PanelState {
  curves: TrainingCurve[];
  bench: ReportJson;
  live: {
    steps: [number, number][];
    evals: { step: number; epoch: number; metrics: Record<string, number> }[];
    totalSteps?: number;
  } | null;
  routing: ReportJson;
  routingView: 'counts' | 'gate';
  evaluation: ReportJson;
}
