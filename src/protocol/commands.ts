/**
 * The CLI's `--json` contract, command by command: the result object it prints on stdout and the progress events
 * it prints as JSON lines on stderr. Type-only, like vscode-eslint's `customMessages.ts`: the CLI writes these
 * shapes, the extension (`Ctx.runCommand`) and its webviews read them, so a change is a compile error on both
 * sides instead of a silent drift. Result shapes of eval, audit, rank and card are in `results.ts`.
 */
import type { AuditEvent, AuditResult, Calibration, CardResult, EvalResult, RankResult } from './results';
import type { RoutingReport } from '../engine/analysis/routing';
import type { BenchReport } from '../lab/bench/report';
import type { TaskType } from '../engine/types';
import type { BenchEvent, TrainEvent } from './events';

export type { BenchEvent, TrainEvent };

/** `spartan train --json`. */
export interface TrainSummary {
  memory: string;
  bytes: number;
  seconds: number;
  steps: number;
  bestEpoch: number;
  /** Dev metrics of the saved tensors (empty without a dev set). */
  metrics: Record<string, number>;
  calibration: Calibration;
  truncated: number;
  devTruncated: number;
  task: TaskType;
  labels: string[];
  /** One entry per epoch: mean training loss, and dev metrics where there is a dev set. */
  history: { epoch: number; step: number; loss: number; metrics?: Record<string, number> }[];
}

/** One prediction (`classify --text`, and the serve worker's `classify` answer). */
export interface Prediction {
  /** Classification: the most probable label and every label's (calibrated) probability. */
  label?: string;
  probabilities?: Record<string, number>;
  /** Multi-label: the labels whose calibrated probability reaches their threshold. */
  labels?: string[];
  /** Regression: the predicted score. */
  score?: number;
}

/** `spartan classify --text … --json`. */
export interface ClassifyResult extends Prediction {
  task: TaskType;
  milliseconds: number;
  /** The backbone precision the answer was computed with (`--quantize`, else the memory's). */
  quantize?: 'none' | 'int8';
}

/** `spartan export --json`. */
export interface ExportResult {
  onnx: string;
  bytes: number;
  inputs: string[];
  outputs: string[];
  labels: string[];
  temperature: number;
  thresholds?: Record<string, number>;
}

/** Command name → what it prints. `never`: the command prints no progress events. */
export interface CommandProtocol {
  train: { result: TrainSummary; event: TrainEvent };
  eval: { result: EvalResult; event: never };
  classify: { result: ClassifyResult; event: never };
  export: { result: ExportResult; event: never };
  bench: { result: BenchReport; event: BenchEvent };
  routes: { result: RoutingReport; event: never };
  audit: { result: AuditResult; event: AuditEvent | (TrainEvent & { fold: number }) };
  rank: { result: RankResult; event: never };
  card: { result: CardResult; event: never };
}

export type CommandName = keyof CommandProtocol;
export type ResultOf<C extends CommandName> = CommandProtocol[C]['result'];
export type EventOf<C extends CommandName> = CommandProtocol[C]['event'];
