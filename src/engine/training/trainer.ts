/**
 * The training loop: a frozen backbone, trained tensors (method, head, optionally LayerNorms) updated from the
 * gradients the ONNX training graph returns. Evaluation on a dev set after every epoch, early stopping, and the
 * best tensors kept.
 */
import { Backbone, expectedBackboneTensors } from '../models/backbone';
import { headShapes } from '../models/robertaGraph';
import { EncodedExample, encodeExamples, makeBatches } from '../data/batching';
import { Example, TaskInfo } from '../data/jsonl';
import { MethodSpec, initialTensors, methodHooks, methodShapes, trainableNames } from '../methods';
import { compileInference, compileTraining } from '../runtime/compile';
import { GraphSession } from '../runtime/session';
import { buildSessions } from '../runtime/sessionBuild';
import { argmax, predictLogits } from '../runtime/predict';
import { RobertaTokenizer } from '../tokenizers/robertaTokenizer';
import { SpartanError, TaskType, TensorMap } from '../types';
import { createRng } from '../util/random';
import { AdamW, Optimizer, OptimizerName, Sgd, clipScaleOfSquares, linearSchedule } from './optimizer';
import { classificationMetrics, regressionMetrics } from './metrics';
import { Calibration, calibrateSigmoid, calibrateSoftmax, sigmoidWithTemperature, UNCALIBRATED } from './calibration';
import { multiLabelMetrics } from './errorAnalysis';
import { accumulatedStep } from './microBatch';
import { GraphOptions } from '../models/robertaGraph';
import { int8WeightLevels, QuantizeMode } from '../models/quantize';

export interface TrainConfig {
  method: MethodSpec;
  /** Epochs over the training rows; ignored when `steps` is set. */
  epochs: number;
  /** Total optimiser steps (cycling through epochs); 0 saves the initial tensors. */
  steps?: number;
  batchSize: number;
  maxLength: number;
  optimizer: OptimizerName;
  lr: number;
  weightDecay: number;
  /** Share of the steps spent warming up linearly (AdamW only). */
  warmupRatio: number;
  /** Global gradient-norm clip (AdamW only); 0 disables. */
  clipNorm: number;
  dropout: number;
  seed: number;
  shuffle: boolean;
  /** Length bucketing (only when shuffling): batches of similar lengths, so less padding. */
  bucket: boolean;
  threads: number;
  /** Stop after this many evaluations without improvement of the dev metric; 0 disables. */
  patience: number;
  /** Metric that picks the best epoch (default: accuracy for classification, pearson for regression). */
  metric?: string;
  /** Class index binary F1 is computed for (default 1); GLUE MRPC/QQP's positive class sorts to index 0. */
  positiveClass?: number;
  /** `int8`: the frozen backbone linears run int8 in the forward pass and the input gradients (models/quantize.ts). */
  quantize?: QuantizeMode;
}

// The trainer's progress events are part of the CLI's protocol (what `train --json` prints).
import type { TrainEvent } from '../../protocol/commands';
export type { TrainEvent };

export interface TrainInput {
  backbone: Backbone;
  tokenizer: RobertaTokenizer;
  task: TaskInfo;
  train: Example[];
  trainFile: string;
  dev?: Example[];
  devFile?: string;
  /** Tensors to start from (`--init`): method, head and LayerNorm tensors of an earlier memory. */
  init?: TensorMap;
  onEvent?: (e: TrainEvent) => void;
  signal?: AbortSignal;
  /**
   * The caller owns the backbone and builds nothing else on it: its float32 linears may be dropped, once quantised
   * or read by ONNX Runtime from the backbone's file (runtime/sessionBuild.ts).
   */
  ownsBackbone?: boolean;
}

export interface TrainResult {
  /** The trained tensors of the best evaluation (or the last step without a dev set). */
  tensors: TensorMap;
  /** Dev metrics of those tensors (empty without a dev set). */
  metrics: Record<string, number>;
  /** Temperature (and multi-label thresholds) fitted on the dev logits of those tensors; T = 1 without a dev set. */
  calibration: Calibration;
  bestEpoch: number;
  steps: number;
  seconds: number;
  /** Seconds of the optimiser steps alone (forward, backward, update; no graph building or evaluation). */
  stepSeconds: number;
  /** Examples those steps trained on (an epoch's last batch may be short). */
  stepExamples: number;
  truncated: number;
  devTruncated: number;
  history: { epoch: number; step: number; loss: number; metrics?: Record<string, number> }[];
}

export function numLabelsOf(task: TaskInfo): number {
  return task.task === 'regression' ? 1 : task.labels.length;
}

export function primaryMetric(task: TaskType, requested?: string): string {
  return requested ?? (task === 'regression' ? 'pearson' : task === 'multilabel' ? 'micro_f1' : 'accuracy');
}

/** Parameter shapes every graph of this model may read: backbone, head and method tensors. */
export function parameterShapesOf(backbone: Backbone, method: MethodSpec, numLabels: number): Map<string, number[]> {
  // The backbone's shapes from its config (loadBackbone checked its tensors against them): the same after an owned
  // build dropped some of its float32 tensors (runtime/sessionBuild.ts).
  const shapes = new Map<string, number[]>(expectedBackboneTensors(backbone.config));
  for (const [name, s] of methodShapes(method, backbone.config)) shapes.set(name, s);
  for (const [name, s] of headShapes(backbone.config, numLabels)) shapes.set(name, s);
  return shapes;
}

export function graphOptions(
  backbone: Backbone,
  method: MethodSpec,
  task: TaskType,
  numLabels: number,
  dropout = 0,
  quantize: QuantizeMode = 'none',
): GraphOptions {
  return {
    config: backbone.config,
    task,
    numLabels,
    parameterShapes: parameterShapesOf(backbone, method, numLabels),
    hooks: methodHooks(method),
    training: false,
    dropout,
    ...(quantize === 'int8' ? { int8: { weights: backbone.weights, levels: int8WeightLevels() } } : {}),
  };
}

/** The full parameter map of a session: the backbone's tensors with the trained ones layered on top. */
export function layerParams(backbone: Backbone, trained: TensorMap): TensorMap {
  const params: TensorMap = new Map(backbone.weights);
  for (const [name, t] of trained) params.set(name, t);
  return params;
}

export async function train(input: TrainInput, cfg: TrainConfig): Promise<TrainResult> {
  const started = Date.now();
  const { backbone, tokenizer, task } = input;
  const numLabels = numLabelsOf(task);
  const emit = input.onEvent ?? (() => {});
  const metricName = primaryMetric(task.task, cfg.metric);

  const trainSet = encodeExamples(input.train, tokenizer, task.task, task.labels, cfg.maxLength, input.trainFile);
  const devSet = input.dev ? encodeExamples(input.dev, tokenizer, task.task, task.labels, cfg.maxLength, input.devFile) : undefined;

  const names = trainableNames(cfg.method, backbone.config, numLabels, backbone.weights.keys());
  const trained = startingTensors(input, cfg, names, numLabels);
  const params = layerParams(backbone, trained);
  const opts = graphOptions(backbone, cfg.method, task.task, numLabels, cfg.dropout, cfg.quantize);

  const stepsPerEpoch = Math.ceil(trainSet.examples.length / cfg.batchSize);
  const totalSteps = cfg.steps ?? cfg.epochs * stepsPerEpoch;
  const epochs = Math.ceil(totalSteps / stepsPerEpoch);
  const trainableParameters = names.reduce((n, k) => n + trained.get(k)!.data.length, 0);
  emit({
    event: 'start',
    steps: totalSteps,
    epochs,
    examples: trainSet.examples.length,
    devExamples: devSet?.examples.length ?? 0,
    trainableParameters,
    truncated: trainSet.truncated,
    devTruncated: devSet?.truncated ?? 0,
  });

  const result: TrainResult = {
    tensors: cloneTensors(trained),
    metrics: {},
    calibration: { ...UNCALIBRATED },
    bestEpoch: 0,
    steps: 0,
    seconds: 0,
    stepSeconds: 0,
    stepExamples: 0,
    truncated: trainSet.truncated,
    devTruncated: devSet?.truncated ?? 0,
    history: [],
  };
  // The frozen linears' form (int8 copies, prepacked float32) and the build order: runtime/sessionBuild.ts.
  const sessions = await buildSessions({
    config: backbone.config,
    quantize: cfg.quantize ?? 'none',
    params,
    sources: [backbone.weights],
    backbone,
    trainable: names,
    ownsBackbone: input.ownsBackbone === true,
    threads: cfg.threads,
    graphs: {
      // The dev set is evaluated on the training session (its forward pass alone: compile.ts `gradientSwitch`),
      // which holds the frozen linears once for both; an inference session only where nothing is trained.
      inference: devSet && totalSteps === 0 ? { compile: (frozen) => compileInference({ ...opts, ...frozen }) } : undefined,
      training:
        totalSteps > 0
          ? { compile: (frozen) => compileTraining({ ...opts, ...frozen, training: true }, names), trainingSeed: cfg.seed }
          : undefined,
    },
  });
  const devSession = sessions.inference ?? sessions.training;
  const evaluateDev = () =>
    evaluate(
      devSession!,
      params,
      devSet!.examples,
      task.task,
      numLabels,
      tokenizer.padId,
      cfg.batchSize * 2,
      input.signal,
      cfg.positiveClass,
    );
  const calibrate = (ev: Evaluation) => calibrationOf(task, ev.logits, devSet!.examples, input.devFile ?? 'the dev rows');
  if (totalSteps === 0) {
    if (devSet) {
      const ev = await evaluateDev();
      result.metrics = ev.metrics;
      result.calibration = calibrate(ev);
    }
    await devSession?.release();
    result.seconds = (Date.now() - started) / 1000;
    return result;
  }

  const session = sessions.training!;
  const optimizer: Optimizer =
    cfg.optimizer === 'sgd'
      ? new Sgd()
      : new AdamW({
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: cfg.weightDecay,
          noDecay: (n) => n.endsWith('.bias') || n.includes('LayerNorm'),
        });
  const warmup = Math.round(cfg.warmupRatio * totalSteps);
  const lengths = trainSet.examples.map((e) => e.ids.length);
  let best = -Infinity;
  let sinceBest = 0;
  let step = 0;
  try {
    for (let epoch = 1; epoch <= epochs && step < totalSteps; epoch++) {
      const batches = makeBatches(lengths, cfg.batchSize, {
        shuffle: cfg.shuffle,
        seed: cfg.seed * 1000 + epoch,
        bucket: cfg.shuffle && cfg.bucket,
      });
      let epochLoss = 0,
        epochBatches = 0;
      for (const indices of batches) {
        if (step >= totalSteps) break;
        input.signal?.throwIfAborted();
        const t0 = Date.now();
        // Micro-batches sized for GEMM efficiency, gradients summed: the full batch's gradient (microBatch.ts).
        const { loss, grads, gradSquares } = await accumulatedStep(
          session,
          params,
          indices.map((i) => trainSet.examples[i]),
          names,
          { padId: tokenizer.padId, task: task.task, numLabels },
        );
        if (!Number.isFinite(loss))
          throw new SpartanError(`training diverged at step ${step + 1} (loss ${loss}); try a lower learning rate`);
        // SGD is the plain update (no clipping, no schedule); AdamW clips as it reads the gradients.
        const sgd = cfg.optimizer === 'sgd';
        const { norm: gradNorm, scale } = clipScaleOfSquares(gradSquares, sgd ? 0 : cfg.clipNorm);
        const lr = sgd ? cfg.lr : linearSchedule(step, totalSteps, warmup, cfg.lr);
        optimizer.step(trained, grads, lr, scale);
        const stepSeconds = Math.max(1e-3, (Date.now() - t0) / 1000);
        result.stepSeconds += stepSeconds;
        result.stepExamples += indices.length;
        step++;
        epochLoss += loss;
        epochBatches++;
        emit({
          event: 'step',
          step,
          steps: totalSteps,
          epoch,
          loss,
          lr,
          gradNorm,
          examplesPerSecond: indices.length / stepSeconds,
        });
      }
      const entry: TrainResult['history'][number] = { epoch, step, loss: epochLoss / Math.max(1, epochBatches) };
      result.history.push(entry);
      if (devSet) {
        const ev = await evaluateDev();
        const metrics = ev.metrics;
        entry.metrics = metrics;
        const value = metrics[metricName];
        if (value === undefined) throw new SpartanError(`unknown metric "${metricName}" (have: ${Object.keys(metrics).join(', ')})`);
        const improved = value > best;
        emit({ event: 'eval', epoch, step, metrics, best: improved });
        if (improved) {
          best = value;
          sinceBest = 0;
          result.tensors = cloneTensors(trained);
          result.metrics = metrics;
          result.calibration = calibrate(ev);
          result.bestEpoch = epoch;
        } else if (cfg.patience > 0 && ++sinceBest >= cfg.patience) {
          break;
        }
      } else {
        result.tensors = cloneTensors(trained);
        result.bestEpoch = epoch;
      }
    }
  } finally {
    await session.release();
    if (devSession !== session) await devSession?.release();
  }
  result.steps = step;
  result.seconds = (Date.now() - started) / 1000;
  emit({ event: 'done', steps: step, seconds: result.seconds });
  return result;
}

/** Temperature scaling on held-out logits (regression: nothing to calibrate). */
export function calibrationOf(task: TaskInfo, logits: Float32Array[], examples: EncodedExample[], fittedOn: string): Calibration {
  if (task.task === 'regression') return { ...UNCALIBRATED };
  if (task.task === 'multilabel')
    return calibrateSigmoid(
      logits,
      examples.map((e) => multiHot(e, task.labels.length)),
      task.labels,
      fittedOn,
    );
  return calibrateSoftmax(
    logits,
    examples.map((e) => e.label),
    fittedOn,
  );
}

/** A multi-label row's targets: 1 for each label it carries. */
export function multiHot(e: EncodedExample, numLabels: number): number[] {
  const t = new Array<number>(numLabels).fill(0);
  for (const k of e.labelSet ?? []) t[k] = 1;
  return t;
}

/** Initial trained tensors: from `--init`, else fresh method/head tensors and the backbone's LayerNorms. */
function startingTensors(input: TrainInput, cfg: TrainConfig, names: string[], numLabels: number): TensorMap {
  const rng = createRng(cfg.seed);
  const fresh = initialTensors(cfg.method, input.backbone.config, numLabels, () => rng.normal());
  const out: TensorMap = new Map();
  for (const name of names) {
    const source = input.init?.get(name) ?? fresh.get(name) ?? input.backbone.weights.get(name);
    if (!source) throw new SpartanError(`no starting value for ${name}`);
    const expected = fresh.get(name)?.shape ?? input.backbone.weights.get(name)?.shape;
    if (expected && expected.join('x') !== source.shape.join('x')) {
      throw new SpartanError(`the initial memory's ${name} has shape [${source.shape}] but this model needs [${expected}]`);
    }
    out.set(name, { shape: [...source.shape], data: Float32Array.from(source.data) });
  }
  return out;
}

function cloneTensors(m: TensorMap): TensorMap {
  return new Map([...m].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.data) }]));
}

export interface Evaluation {
  metrics: Record<string, number>;
  /** Class index or regression score per example, in input order (multi-label: empty, see `predictedSets`). */
  predictions: number[];
  /** Multi-label: the label indices predicted for each example. */
  predictedSets?: number[][];
  logits: Float32Array[];
}

export async function evaluate(
  session: GraphSession,
  params: TensorMap,
  examples: EncodedExample[],
  task: TaskType,
  numLabels: number,
  padId: number,
  batchSize: number,
  signal?: AbortSignal,
  positive = 1,
): Promise<Evaluation> {
  const logits = await predictLogits(session, params, examples, { batchSize, padId, task, numLabels, signal });
  const gold = examples.map((e) => e.label);
  if (task === 'multilabel') {
    // During training: σ(logits) ≥ 0.5; a saved memory's temperature and thresholds apply in TaskModel.
    return evaluateMultiLabel(logits, examples, numLabels, 1, new Array<number>(numLabels).fill(0.5));
  }
  if (task === 'regression') {
    const predictions = logits.map((l) => l[0]);
    return { metrics: { ...regressionMetrics(predictions, gold) }, predictions, logits };
  }
  const predictions = logits.map((l) => argmax(l));
  return { metrics: { ...classificationMetrics(predictions, gold, numLabels, positive) }, predictions, logits };
}

/** Multi-label metrics of logits at a temperature and per-label thresholds; metric names are the labels' indices. */
export function evaluateMultiLabel(
  logits: Float32Array[],
  examples: EncodedExample[],
  numLabels: number,
  temperature: number,
  thresholds: number[],
): Evaluation {
  const names = Array.from({ length: numLabels }, (_, k) => String(k));
  const predictedSets = logits.map((l) => sigmoidWithTemperature(l, temperature).flatMap((p, k) => (p >= thresholds[k] ? [k] : [])));
  const asBools = (set: number[]) => names.map((_, k) => set.includes(k));
  const m = multiLabelMetrics(
    predictedSets.map(asBools),
    examples.map((e) => asBools(e.labelSet ?? [])),
    names,
  );
  return {
    metrics: { micro_f1: m.micro_f1, macro_f1: m.macro_f1, subset_accuracy: m.subset_accuracy },
    predictions: [],
    predictedSets,
    logits,
  };
}
