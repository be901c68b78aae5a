/**
 * The CLI's `--json` contract, command by command: the options the extension passes (mapped one-to-one on the
 * command's flags by `engineArgs` in src/extension/engineProcess.ts), the result object the command prints on
 * stdout and the progress events it prints as JSON lines on stderr; and the request/response lines of the `serve`
 * worker. Type-only, like vscode-eslint's `customMessages.ts`: the CLI writes these shapes, the extension
 * (`Ctx.runCommand`, `EngineServer.request`) and its webviews read them, so a change is a compile error on both
 * sides instead of a silent drift. Result shapes of eval, audit, rank and card are in `results.ts`.
 */
import type { AuditEvent, AuditResult, Calibration, CardResult, EvalResult, RankResult, RoutingReport } from './results';
import type { BenchReport } from '../lab/bench/report';
import type { TaskType } from '../engine/types';
import type { DownloadedFile } from '../engine/hub';
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

/** `spartan download --json`: where the backbone landed and what it is. */
export interface DownloadResult {
  dir: string;
  files: DownloadedFile[];
  layers: number;
  hidden: number;
}

/** `spartan download` progress: bytes received of one file (`total` when the server sent a length). */
export interface DownloadEvent {
  event: 'progress';
  file: string;
  received: number;
  total?: number;
}

// ---------------------------------------------------------------- per-command options
// Each key is one flag (`batchSize` → `--batch-size`; the table in engineProcess.ts spells them): a number or
// string is the flag's value, `true` the bare flag, a list a comma-separated value; absent options are left to
// the CLI's defaults.

/** `spartan train`. */
export interface TrainOptions {
  backbone: string;
  data: string;
  out: string;
  dev?: string;
  epochs?: number;
  lr?: number;
  batchSize?: number;
  maxLength?: number;
  parents?: number;
  children?: number;
  topK?: number;
  temperature?: number;
  dropout?: number;
  seed?: number;
  threads?: number;
  /** `--quantize` (`spartan.quantize`); undefined = the CLI's default (float32). */
  quantize?: 'none' | 'int8';
}

/** `spartan eval`. */
export interface EvalOptions {
  backbone: string;
  memory: string;
  data: string;
  threads?: number;
}

/** `spartan classify`, reading `{"text", "text_pair"}` on stdin (a user's text never goes through argv). */
export interface ClassifyOptions {
  backbone: string;
  memory: string;
  stdinJson: true;
  threads?: number;
}

/** `spartan export`. */
export interface ExportOptions {
  backbone: string;
  memory: string;
  onnx: string;
}

/** `spartan bench`. */
export interface BenchOptions {
  backbone?: string;
  profiles?: string[];
  methods?: string[];
  quick?: boolean;
  batch?: number;
  seq?: number;
  threads?: number;
}

/** `spartan routes`. */
export interface RoutesOptions {
  backbone: string;
  memory: string;
  data: string;
  layer: number;
  skipInvalid?: boolean;
  threads?: number;
}

/** `spartan audit` (the fold memories' training options: the CLI's defaults when absent). */
export interface AuditOptions {
  backbone: string;
  data: string;
  folds?: number;
  epochs?: number;
  method?: string;
  lr?: number;
  dropout?: number;
  threads?: number;
}

/** `spartan rank`. */
export interface RankOptions {
  backbone: string;
  memory: string;
  data: string;
  threads?: number;
}

/** `spartan download`. */
export interface DownloadOptions {
  repo: string;
  dest: string;
}

/** Command name → its options, what it prints on stdout, and its events (`never`: it prints none). */
export interface CommandProtocol {
  train: { options: TrainOptions; result: TrainSummary; event: TrainEvent };
  eval: { options: EvalOptions; result: EvalResult; event: never };
  classify: { options: ClassifyOptions; result: ClassifyResult; event: never };
  export: { options: ExportOptions; result: ExportResult; event: never };
  bench: { options: BenchOptions; result: BenchReport; event: BenchEvent };
  routes: { options: RoutesOptions; result: RoutingReport; event: never };
  audit: { options: AuditOptions; result: AuditResult; event: AuditEvent | (TrainEvent & { fold: number }) };
  rank: { options: RankOptions; result: RankResult; event: never };
  card: { options: { memory: string }; result: CardResult; event: never };
  download: { options: DownloadOptions; result: DownloadResult; event: DownloadEvent };
}

export type CommandName = keyof CommandProtocol;
export type OptionsOf<C extends CommandName> = CommandProtocol[C]['options'];
export type ResultOf<C extends CommandName> = CommandProtocol[C]['result'];
export type EventOf<C extends CommandName> = CommandProtocol[C]['event'];

// ---------------------------------------------------------------- the serve worker (src/cli/commands/serve.ts)

/** `classify` request parameters: the text (and pair) to classify with a memory on a backbone. */
export interface ServeClassifyParams {
  backbone?: string;
  memory: string;
  text: string;
  textPair?: string;
}

/** Method → its parameters and its answer. */
export interface ServeProtocol {
  classify: { params: ServeClassifyParams; result: ClassifyResult };
  shutdown: { params: undefined; result: { ok: true } };
}

export type ServeMethod = keyof ServeProtocol;
export type ServeId = number | string | null;

/** One request line on the worker's stdin. */
export type ServeRequest = { [M in ServeMethod]: { id: ServeId; method: M; params?: ServeProtocol[M]['params'] } }[ServeMethod];

/** One answer line on its stdout: the result, or an error message for users (`id` null when the line had none). */
export type ServeResponse<M extends ServeMethod = ServeMethod> =
  { id: ServeId; result: ServeProtocol[M]['result'] } | { id: ServeId; error: string };
