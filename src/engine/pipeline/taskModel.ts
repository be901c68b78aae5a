/**
 * A frozen backbone plus one task memory, ready to classify: what `classify`, `eval`, `export` and the
 * extension's worker use. Loading checks that the memory was made for this backbone and tokenizer.
 */
import { Backbone, loadBackbone } from '../models/backbone';
import { loadMemory, MemoryMetadata } from '../memory/memoryFile';
import { methodFromMetadata, maxLengthOf, quantizeFromMetadata } from '../memory/memoryMethod';
import { QuantizeMode } from '../models/quantize';
import { CompiledGraph, compileInference } from '../runtime/compile';
import { buildSessions } from '../runtime/sessionBuild';
import { GraphSession } from '../runtime/session';
import { predictLogits, argmax } from '../runtime/predict';
import { loadTokenizer, RobertaTokenizer } from '../tokenizers/robertaTokenizer';
import { encodeExamples } from '../data/batching';
import { Example } from '../data/jsonl';
import { evaluate, Evaluation, evaluateMultiLabel, graphOptions, layerParams } from '../training/trainer';
import { Calibration, sigmoidWithTemperature, softmaxWithTemperature, UNCALIBRATED } from '../training/calibration';
import type { EncodedExample } from '../data/batching';
import { SpartanError, TensorMap } from '../types';

// What `classify` and the serve worker answer: part of the CLI's protocol.
import type { Prediction } from '../../protocol/commands';
export type { Prediction };

// Kept importable from here: the CLI and the tests read a memory's method through the task model's module.
export { methodFromMetadata } from '../memory/memoryMethod';

export class TaskModel {
  private constructor(
    readonly backbone: Backbone,
    readonly tokenizer: RobertaTokenizer,
    readonly metadata: MemoryMetadata,
    readonly tensors: TensorMap,
    private readonly session: GraphSession,
    private readonly params: TensorMap,
    /** The backbone precision the session runs: `--quantize`, else what the memory was trained with. */
    readonly quantize: QuantizeMode,
  ) {}

  /**
   * `ownsBackbone`: the caller owns the backbone and builds nothing else on it (classify, eval; not serve, which
   * shares it): the backbone's float32 linears may be dropped, once quantised or read by ONNX Runtime from its file
   * (runtime/sessionBuild.ts).
   */
  static async load(opts: {
    backbone: Backbone | string;
    memory: string;
    threads: number;
    quantize?: QuantizeMode;
    ownsBackbone?: boolean;
  }): Promise<TaskModel> {
    const backbone = typeof opts.backbone === 'string' ? await loadBackbone(opts.backbone) : opts.backbone;
    const { tensors, metadata } = loadMemory(opts.memory, backbone);
    if (metadata.tokenizerHash && backbone.tokenizerHash && metadata.tokenizerHash !== backbone.tokenizerHash) {
      throw new SpartanError(`${opts.memory} was trained with a different tokenizer than ${backbone.id}'s`);
    }
    const method = methodFromMetadata(metadata, opts.memory);
    const numLabels = metadata.task === 'regression' ? 1 : metadata.labels.length;
    const quantize = opts.quantize ?? quantizeFromMetadata(metadata, opts.memory);
    const graphOpts = graphOptions(backbone, method, metadata.task, numLabels, 0, quantize);
    const params = layerParams(backbone, tensors);
    const { inference } = await buildSessions({
      config: backbone.config,
      quantize,
      params,
      sources: [backbone.weights],
      backbone,
      trainable: [],
      ownsBackbone: opts.ownsBackbone === true,
      threads: opts.threads,
      graphs: { inference: { compile: (frozen) => checkedGraph(compileInference({ ...graphOpts, ...frozen }), params, opts.memory) } },
    });
    return new TaskModel(backbone, loadTokenizer(backbone.tokenizerDir), metadata, tensors, inference!, params, quantize);
  }

  get numLabels(): number {
    return this.metadata.task === 'regression' ? 1 : this.metadata.labels.length;
  }

  get maxLength(): number {
    return maxLengthOf(this.metadata);
  }

  /** The stored temperature (and multi-label thresholds); T = 1 for memories saved before calibration existed. */
  get calibration(): Calibration {
    return this.metadata.calibration ?? { ...UNCALIBRATED };
  }

  /** Multi-label decision thresholds in label order (0.5 where none was tuned). */
  get thresholds(): number[] {
    const t = this.calibration.thresholds;
    return this.metadata.labels.map((name) => (t && typeof t[name] === 'number' ? t[name] : 0.5));
  }

  /** Raw logits of each row, in input order. */
  async logits(rows: { text: string; textPair?: string }[], batchSize = 32, signal?: AbortSignal): Promise<Float32Array[]> {
    const examples = rows.map((r, i) => ({ ids: this.tokenizer.encode(r.text, r.textPair, this.maxLength).ids, label: 0, line: i + 1 }));
    return predictLogits(this.session, this.params, examples, {
      batchSize,
      padId: this.tokenizer.padId,
      task: this.metadata.task,
      numLabels: this.numLabels,
      signal,
    });
  }

  /** Calibrated probabilities of one row's logits: softmax(z/T), or σ(z/T) per label for multi-label tasks. */
  probabilities(logits: ArrayLike<number>, temperature = this.calibration.temperature): number[] {
    return this.metadata.task === 'multilabel' ? sigmoidWithTemperature(logits, temperature) : softmaxWithTemperature(logits, temperature);
  }

  async predict(rows: { text: string; textPair?: string }[], batchSize = 32): Promise<Prediction[]> {
    const logits = await this.logits(rows, batchSize);
    const names = this.metadata.labels;
    const thresholds = this.thresholds;
    return logits.map((l) => {
      if (this.metadata.task === 'regression') return { score: l[0] };
      const p = this.probabilities(l);
      const probabilities = Object.fromEntries(names.map((name, i) => [name, p[i]]));
      if (this.metadata.task === 'multilabel') return { labels: names.filter((_, k) => p[k] >= thresholds[k]), probabilities };
      return { label: names[argmax(l)], probabilities };
    });
  }

  /** Metrics (multi-label: at the stored temperature and thresholds), predictions, logits and the encoded rows. */
  async evaluate(
    rows: Example[],
    file: string,
    batchSize = 32,
    signal?: AbortSignal,
  ): Promise<Evaluation & { truncated: number; examples: EncodedExample[] }> {
    this.checkPairing(rows, file);
    const set = encodeExamples(rows, this.tokenizer, this.metadata.task, this.metadata.labels, this.maxLength, file);
    let ev = await evaluate(
      this.session,
      this.params,
      set.examples,
      this.metadata.task,
      this.numLabels,
      this.tokenizer.padId,
      batchSize,
      signal,
    );
    if (this.metadata.task === 'multilabel')
      ev = evaluateMultiLabel(ev.logits, set.examples, this.numLabels, this.calibration.temperature, this.thresholds);
    return { ...ev, truncated: set.truncated, examples: set.examples };
  }

  /** Refuses rows that are text pairs for a single-text memory, or single texts for a pair memory. */
  checkPairing(rows: { textPair?: string }[], file: string): void {
    const pairTask = Boolean(this.metadata.hyperparameters.pair);
    const pairRows = rows.some((r) => r.textPair !== undefined);
    if (rows.length && pairRows !== pairTask) {
      throw new SpartanError(
        `${file}: its rows are ${pairRows ? 'text pairs' : 'single texts'}, but the memory is a ${pairTask ? 'text-pair' : 'single-text'} task`,
      );
    }
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** The inference graph, once every tensor it reads as an input is known to be there. */
function checkedGraph(graph: CompiledGraph, params: TensorMap, memory: string): CompiledGraph {
  for (const name of graph.parameterInputs) {
    if (!params.has(name)) throw new SpartanError(`${memory}: tensor ${name} is missing`);
  }
  return graph;
}
