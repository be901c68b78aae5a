/**
 * Throughput measurements of the engine: inference instances/minute, training examples/second, the sgemm peak
 * of this machine as ONNX Runtime sees it, and FLOP counts to turn times into GFLOP/s. Used by scripts/bench.ts
 * and `spartan bench`; no timing here is a test.
 */
import * as ort from 'onnxruntime-node';
import {
  Backbone,
  PaddedBatch,
  EncodedExample,
  padBatch,
  MethodSpec,
  initialTensors,
  trainableNames,
  compileInference,
  compileTraining,
  predictLogits,
  accumulatedStep,
  GraphSession,
  graphOptions,
  layerParams,
  AdamW,
  clipScaleOfSquares,
  Graph,
  toModelBytes,
  RobertaConfig,
  TensorMap,
  createRng,
  QuantizeMode,
  buildSessions,
  GraphSpec,
} from '../../engine';

export interface Timing {
  /** Seconds of each timed repetition. */
  seconds: number[];
  median: number;
  min: number;
  max: number;
  /** Process CPU seconds (user + system, every thread) of each timed repetition, when measured. */
  cpuSeconds?: number[];
}

export function summarize(seconds: number[], cpuSeconds?: number[]): Timing {
  const s = [...seconds].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { seconds, median, min: s[0], max: s[s.length - 1], ...(cpuSeconds ? { cpuSeconds } : {}) };
}

/** Process CPU seconds (user + system, all threads) since `since` (a process.cpuUsage() reading). */
export function cpuSecondsSince(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

/** Runs `fn` `warmup` times untimed, then `reps` times timed (wall and process CPU seconds). */
export async function timeRepetitions(fn: () => Promise<void>, reps: number, warmup: number): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await fn();
  const seconds: number[] = [],
    cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    seconds.push((performance.now() - t0) / 1000);
    cpu.push(cpuSecondsSince(c0));
  }
  return summarize(seconds, cpu);
}

/** A batch of B random full-length sequences of T tokens (<s> … </s>), no padding: the paper's fixed shapes. */
export function syntheticBatch(config: RobertaConfig, B: number, T: number, numLabels: number, seed = 0): PaddedBatch {
  return padBatch(syntheticExamples(config, B, T, numLabels, seed), config.padTokenId);
}

/** The rows of `syntheticBatch`, unpadded (what BenchModel's infer and trainStep take). */
export function syntheticExamples(config: RobertaConfig, B: number, T: number, numLabels: number, seed = 0): EncodedExample[] {
  const rng = createRng(seed);
  const examples: EncodedExample[] = [];
  for (let b = 0; b < B; b++) {
    const ids = new Int32Array(T);
    for (let t = 0; t < T; t++) ids[t] = 3 + Math.floor(rng.next() * (config.vocabSize - 3));
    ids[0] = 0;
    ids[T - 1] = 2;
    examples.push({ ids, label: b % numLabels, line: b + 1 });
  }
  return examples;
}

/** Multiply-adds ×2 of one forward pass over B×T tokens (dense layers, attention, memory, head). */
export function forwardFlops(config: RobertaConfig, method: MethodSpec, B: number, T: number): number {
  const d = config.hiddenSize,
    f = config.intermediateSize;
  const perTokenLayer = 4 * d * d + 2 * d * f + 2 * T * d;
  const memory = method.name === 'spartan' ? d * method.geometry.parents * (1 + 2 * method.geometry.children) : 0;
  return 2 * B * T * config.numLayers * (perTokenLayer + memory) + 2 * B * (d * d + 2 * d);
}

/** A backbone with a method's freshly initialised tensors, ready to time. */
export class BenchModel {
  readonly trained: TensorMap;
  readonly params: TensorMap;
  readonly names: string[];

  constructor(
    readonly backbone: Backbone,
    readonly method: MethodSpec,
    readonly numLabels = 2,
    seed = 0,
  ) {
    const rng = createRng(seed);
    this.names = trainableNames(method, backbone.config, numLabels, backbone.weights.keys());
    const fresh = initialTensors(method, backbone.config, numLabels, () => rng.normal());
    this.trained = new Map();
    for (const name of this.names) {
      const src = fresh.get(name) ?? backbone.weights.get(name)!;
      this.trained.set(name, { shape: [...src.shape], data: Float32Array.from(src.data) });
    }
    this.params = layerParams(backbone, this.trained);
  }

  private graphOptions(dropout: number, quantize: QuantizeMode): ReturnType<typeof graphOptions> {
    return graphOptions(this.backbone, this.method, 'classification', this.numLabels, dropout, quantize);
  }

  /** The inference graph, for a build of runtime/sessionBuild.ts (which adds the frozen linears' form). */
  inferenceSpec(quantize: QuantizeMode = 'none'): GraphSpec {
    return { compile: (frozen) => compileInference({ ...this.graphOptions(0, quantize), ...frozen }) };
  }

  trainingSpec(dropout = 0.1, quantize: QuantizeMode = 'none'): GraphSpec {
    return {
      compile: (frozen) => compileTraining({ ...this.graphOptions(dropout, quantize), ...frozen, training: true }, this.names),
      trainingSeed: 0,
    };
  }

  /**
   * Sessions built as the product builds them (runtime/sessionBuild.ts). `ownsBackbone`: as `spartan train`,
   * classify and eval, which may drop the backbone's float32 linears once the sessions hold them; `sharing`: other
   * models layered on the same backbone (their maps lose those linears too).
   */
  sessions<K extends string>(
    threads: number,
    quantize: QuantizeMode,
    graphs: Partial<Record<K, GraphSpec>>,
    ownsBackbone = false,
    sharing: BenchModel[] = [],
  ): Promise<Partial<Record<K, GraphSession>>> {
    return buildSessions({
      config: this.backbone.config,
      quantize,
      params: this.params,
      sources: [this.backbone.weights, ...sharing.map((m) => m.params)],
      backbone: this.backbone,
      trainable: this.names,
      ownsBackbone,
      threads,
      graphs,
    });
  }

  async inferenceSession(threads: number, quantize: QuantizeMode = 'none'): Promise<GraphSession> {
    return (await this.sessions(threads, quantize, { inference: this.inferenceSpec(quantize) })).inference!;
  }

  async trainingSession(threads: number, dropout = 0.1, quantize: QuantizeMode = 'none'): Promise<GraphSession> {
    return (await this.sessions(threads, quantize, { training: this.trainingSpec(dropout, quantize) })).training!;
  }

  /** Logits of one batch, as the product computes them (predictLogits: bucketing, micro-batches). */
  async infer(session: GraphSession, examples: EncodedExample[]): Promise<void> {
    await predictLogits(session, this.params, examples, {
      batchSize: examples.length,
      padId: this.backbone.config.padTokenId,
      task: 'classification',
      numLabels: this.numLabels,
    });
  }

  /** One full optimiser step, as the trainer does it: forward and backward over micro-batches, clipping and AdamW. */
  trainStep(session: GraphSession, optimizer: AdamW): (examples: EncodedExample[]) => Promise<void> {
    return async (examples) => {
      const { grads, gradSquares } = await accumulatedStep(session, this.params, examples, this.names, {
        padId: this.backbone.config.padTokenId,
        task: 'classification',
        numLabels: this.numLabels,
      });
      optimizer.step(this.trained, grads, 1e-3, clipScaleOfSquares(gradSquares, 1).scale);
    };
  }

  static adamW(): AdamW {
    return new AdamW({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, noDecay: () => true });
  }
}

/**
 * The sgemm throughput ONNX Runtime reaches on this machine: a [M, K]×[K, N] MatMul of the shape of a
 * roberta-base FFN at batch 32×128 (M = 4096, K = 768, N = 3072), B prepacked. The yardstick for "GEMM-bound" efficiency.
 */
export async function sgemmPeak(
  threads: number,
  reps = 5,
  shape = { M: 4096, K: 768, N: 3072 },
): Promise<{ gflops: number; timing: Timing }> {
  const rng = createRng(1);
  const A = new Float32Array(shape.M * shape.K),
    B = new Float32Array(shape.K * shape.N);
  rng.fillNormal(A);
  rng.fillNormal(B);
  // B is an initializer, prepacked by ONNX Runtime as the training graphs' input-gradient weights are
  // (runtime/sessionBuild.ts); the forward Gemms read their weights as inputs.
  const g = new Graph();
  const a = g.input('a', 'float32', [shape.M, shape.K]);
  const b = g.initializer('b', 'float32', [shape.K, shape.N], B);
  g.node('MatMul', [a, b], [{ name: 'c', type: 'float32', shape: [shape.M, shape.N] }]);
  g.output('c');
  const session = await ort.InferenceSession.create(toModelBytes(g), { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const feeds = { a: new ort.Tensor('float32', A, [shape.M, shape.K]) };
  const timing = await timeRepetitions(async () => void (await session.run(feeds)), reps, 2);
  await session.release();
  return { gflops: (2 * shape.M * shape.K * shape.N) / timing.median / 1e9, timing };
}

export function peakRssMB(): number {
  // resourceUsage().maxRSS is in kilobytes.
  return process.resourceUsage().maxRSS / 1024;
}
