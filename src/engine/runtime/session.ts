/**
 * ONNX Runtime sessions over the generated graphs. Parameters are fed from the engine's Float32Arrays on every
 * run; onnxruntime-node wraps them without copying, so one backbone in memory serves every session. Initializers
 * (int8 weights, prepacked twins, linears read from the backbone's file) are the session's own.
 */
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { BATCH_INPUTS, MASK_NEGATIVE } from '../models/robertaGraph';
import { SpartanError, TaskType, TensorMap } from '../types';
import { ExternalFiles } from '../onnx/serialize';
import { CompiledGraph, OUTPUT_LOGITS } from './compile';
import type { PaddedBatch } from '../data/batching';
import { DropoutMaskPool } from './dropoutMasks';

export type { PaddedBatch };

export interface SessionOptions {
  threads: number;
  /**
   * Let idle intra-op threads spin (ONNX Runtime's default: lowest latency). Off under a CPU quota, where
   * spinning burns the quota the real work needs.
   */
  allowSpinning?: boolean;
}

/**
 * Every session uses ONNX Runtime's memory arena: blocks are re-used across runs. It grows by doubling, which with
 * micro-batched training costs less memory than mapping fresh blocks each run costs time (see processEnv.ts).
 * SPARTAN_ARENA=0 turns it off (for measurements).
 */
const useArena = process.env.SPARTAN_ARENA !== '0';
/**
 * SPARTAN_ORT_PROFILE=prefix: ONNX Runtime's per-op profiler writes `prefix_<date>.json` when the session is
 * released (for measurements: where a run's time goes).
 */
const profilePrefix = process.env.SPARTAN_ORT_PROFILE;
/**
 * ONNX Runtime's memory pattern (one planned block per run and input shape) is off: with the arena, per-tensor
 * blocks are re-used as well and the arena never has to hold a whole planned block next to the blocks of earlier
 * shapes. Measured on 2 threads (Xeon, AVX-512 VNNI), roberta-base SPARTAN, dropout 0.1 (`SPARTAN_MEM_PATTERN=0|1
 * node --import tsx scripts/bench.ts --phase train|infer|infer-memory|sst2`): training 32×128 6.57 s and 987 MB
 * peak without it, 6.70 s and 1265 MB with it; int8 training 2.52 s and 1134 MB against 2.46 s and 1535 MB;
 * inference and SST-2 rows alike in speed, 634 against 645 MB for a classify-like process.
 * SPARTAN_MEM_PATTERN=0/1 overrides it (for measurements).
 */
const memPatternOverride = process.env.SPARTAN_MEM_PATTERN === undefined ? undefined : process.env.SPARTAN_MEM_PATTERN !== '0';

/**
 * `forwardOnly`: a training graph runs its forward pass alone, as an evaluation (keep-masks of ones, no gradients;
 * only `logits_out` is fetched): the dev set's logits on the training session (compile.ts `gradientSwitch`).
 * Inference graphs ignore it.
 */
export interface RunMode {
  forwardOnly?: boolean;
}

export class GraphSession {
  private masks?: DropoutMaskPool;
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly graph: CompiledGraph,
    seed: number,
  ) {
    if (graph.maskInputs.length) this.masks = new DropoutMaskPool(graph.dropout, seed);
  }

  static async create(graph: CompiledGraph, opts: SessionOptions, seed = 0): Promise<GraphSession> {
    if (graph.externalFiles) checkUnchanged(graph.externalFiles);
    const sessionConfig = {
      ...(opts.allowSpinning === false ? { intra_op: { allow_spinning: '0' } } : {}),
      // Where the file-backed initializers' locations are resolved (the model comes as bytes, from no folder).
      ...(graph.externalFiles ? { model_external_initializers_file_folder_path: graph.externalFiles.folder } : {}),
    };
    const session = await ort.InferenceSession.create(graph.bytes, {
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: (process.env.SPARTAN_ORT_OPT as 'all' | 'basic' | 'extended' | 'disabled' | undefined) ?? 'all',
      enableCpuMemArena: useArena,
      enableMemPattern: memPatternOverride ?? false,
      ...(graph.externalData.length ? { externalData: graph.externalData } : {}),
      ...(profilePrefix ? { enableProfiling: true, profileFilePrefix: profilePrefix } : {}),
      ...(Object.keys(sessionConfig).length ? { extra: { session: sessionConfig } } : {}),
    });
    // Neither the bytes nor the external data are kept: the session holds its own copies (the int8 weights and the
    // prepacked twins, prepacked).
    return new GraphSession(session, { ...graph, bytes: new Uint8Array(0), externalData: [] }, seed);
  }

  /**
   * Runs the graph on one batch; `labels` feeds the training graph's targets. `lossRows`: the rows the loss is
   * the mean over (default the batch's own); a micro-batch of a larger batch passes the larger batch's size, so
   * that the losses and gradients of its micro-batches sum to the large batch's (training/microBatch.ts).
   */
  async run(
    params: TensorMap,
    batch: PaddedBatch,
    task: TaskType,
    numLabels: number,
    lossRows = batch.batch,
    mode: RunMode = {},
  ): Promise<Record<string, ort.Tensor>> {
    const forwardOnly = mode.forwardOnly === true && this.graph.gradientSwitch !== undefined;
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.graph.parameterInputs) {
      const t = params.get(name);
      if (!t) throw new Error(`session: parameter ${name} is missing`);
      feeds[name] = new ort.Tensor('float32', t.data, t.shape);
    }
    const { batch: B, seqLen: T } = batch;
    const wanted = new Set(this.graph.batchInputs);
    feeds[BATCH_INPUTS.inputIds] = new ort.Tensor('int64', batch.inputIds, [B, T]);
    feeds[BATCH_INPUTS.positionIds] = new ort.Tensor('int64', batch.positionIds, [B, T]);
    feeds[BATCH_INPUTS.attentionBias] = new ort.Tensor('float32', attentionBias(batch.attentionMask), [B, 1, 1, T]);
    if (wanted.has(BATCH_INPUTS.targets) && forwardOnly) {
      // The loss is not read: any targets of the right shape do (an unlabelled batch has none).
      const width = task === 'regression' ? 1 : numLabels;
      feeds[BATCH_INPUTS.targets] = new ort.Tensor('float32', new Float32Array(B * width), [B, width]);
      if (wanted.has(BATCH_INPUTS.rowWeights)) feeds[BATCH_INPUTS.rowWeights] = new ort.Tensor('float32', new Float32Array(B), [B, 1]);
    } else if (wanted.has(BATCH_INPUTS.targets)) {
      if (task === 'multilabel') {
        // Multi-hot targets; each (row, label) weighs 1/(B·L), so the loss is the mean binary cross-entropy.
        const t = new Float32Array(B * numLabels);
        batch.labelSets?.forEach((set, b) => set.forEach((k) => (t[b * numLabels + k] = 1)));
        feeds[BATCH_INPUTS.targets] = new ort.Tensor('float32', t, [B, numLabels]);
        feeds[BATCH_INPUTS.rowWeights] = new ort.Tensor('float32', new Float32Array(B).fill(1 / (lossRows * numLabels)), [B, 1]);
      } else if (task === 'classification') {
        const t = new Float32Array(B * numLabels);
        for (let b = 0; b < B; b++) t[b * numLabels + batch.labels[b]] = 1 / lossRows;
        feeds[BATCH_INPUTS.targets] = new ort.Tensor('float32', t, [B, numLabels]);
      } else {
        feeds[BATCH_INPUTS.targets] = new ort.Tensor('float32', Float32Array.from(batch.labels), [B, 1]);
        feeds[BATCH_INPUTS.rowWeights] = new ort.Tensor('float32', new Float32Array(B).fill(1 / lossRows), [B, 1]);
      }
    }
    if (this.masks) {
      const dims: Record<string, number> = { B, T, N: B * T };
      for (const m of this.graph.maskInputs) {
        const shape = m.shape.map((d) => (typeof d === 'number' ? d : dims[d]));
        const n = shape.reduce((a, b) => a * b, 1);
        feeds[m.name] = new ort.Tensor('float32', forwardOnly ? this.masks.ones(n) : this.masks.take(n), shape);
      }
    }
    if (this.graph.gradientSwitch) feeds[this.graph.gradientSwitch] = new ort.Tensor('bool', [!forwardOnly], []);
    return forwardOnly ? this.session.run(feeds, [OUTPUT_LOGITS]) : this.session.run(feeds);
  }

  async release(): Promise<void> {
    if (profilePrefix) this.session.endProfiling();
    await this.session.release();
  }
}

/**
 * Refuses a file rewritten since its offsets were read: ONNX Runtime would read other bytes (or other tensors) at
 * them, silently. The backbone's hash, recorded in memories, was taken from the file as it was at load.
 */
function checkUnchanged(ext: ExternalFiles): void {
  for (const f of ext.files) {
    let now: fs.Stats | undefined;
    try {
      now = fs.statSync(f.path);
    } catch {
      now = undefined;
    }
    if (!now || now.size !== f.stamp.size || now.mtimeMs !== f.stamp.mtimeMs || now.ino !== f.stamp.ino)
      throw new SpartanError(`${f.path} ${now ? 'changed' : 'was removed'} after it was loaded: load the backbone again`);
  }
}

/** The additive attention mask: 0 for tokens, a large negative number for padding. */
export function attentionBias(mask: Float32Array): Float32Array {
  const out = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] > 0 ? 0 : MASK_NEGATIVE;
  return out;
}
