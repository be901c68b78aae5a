/**
 * The forward pass of RobertaForSequenceClassification as an ONNX graph, with hook points where a
 * parameter-efficient method inserts its modules (SPARTAN: after every layer's output LayerNorm).
 *
 * Every parameter — frozen or trained — is a graph *input*, not an initializer: ONNX Runtime then reads the
 * engine's Float32Arrays without copying them, one copy of the backbone serves the inference, training and
 * benchmark sessions alike, and building a graph costs milliseconds whatever the model size.
 *
 * Hidden states are kept as 2-D [N, d] (N = B·T) so every dense layer is one Gemm; attention reshapes to
 * [B, H, T, dh]. Semantics follow Hugging Face's modeling_roberta (post-LayerNorm, exact GELU, additive mask).
 */
import { FileData, Graph } from '../onnx/graph';
import { RobertaConfig, TaskType, TensorMap } from '../types';
import { Int8Options, int8CopyOf, isInt8Linear, QuantizedMatrix, scaledBy } from './quantize';

/**
 * Where a method may insert a module. Block hooks replace a sub-layer's "residual + LayerNorm" step: they get the
 * sub-layer output `h` (after dropout), the residual input and the LayerNorm's tensor prefix, and return the
 * block's output — which is where AdapterHub places bottleneck adapters.
 */
export interface MethodHooks {
  /** Attention block: default `LayerNorm(h + residual)`. */
  attentionBlock?(b: ModelBuilder, layer: number, h: string, residual: string, lnPrefix: string): string;
  /** Feed-forward block: default `LayerNorm(h + residual)`. */
  ffnBlock?(b: ModelBuilder, layer: number, h: string, residual: string, lnPrefix: string): string;
  /** The layer's final (post-LayerNorm) output, the input of the next layer. */
  layerOutput?(b: ModelBuilder, layer: number, x: string): string;
}

export interface GraphOptions {
  config: RobertaConfig;
  task: TaskType;
  numLabels: number;
  /** Shapes of every parameter the graph may use (backbone, head and method tensors), by canonical name. */
  parameterShapes: Map<string, number[]>;
  hooks?: MethodHooks;
  /** Training adds dropout (if > 0) and the loss. */
  training: boolean;
  /** Dropout probability (the keep-masks are graph inputs, drawn by the runtime: see `ModelBuilder.dropout`). */
  dropout: number;
  /**
   * Standalone inputs (exported models): `input_ids` and `attention_mask` (int64) as Hugging Face exports take
   * them, with the position ids and the additive mask computed inside the graph.
   */
  standaloneInputs?: boolean;
  /**
   * The head reads only the <s> row, so the last layer computes its queries, attention output, feed-forward
   * block and method hook for the <s> rows only (keys and values still over every token): the same logits and
   * gradients for about 1/12 less work on roberta-base. Off where a graph reads the last layer's other rows
   * (the routing report's gates).
   */
  headRowsOnly?: boolean;
  /**
   * `--quantize int8`: the frozen backbone linears run as int8 `DynamicQuantizeMatMul` with their weights as
   * prepacked initializers (models/quantize.ts). Absent: every linear is a float32 Gemm on a parameter input.
   */
  int8?: Int8Options;
  /**
   * Training graphs: the input-gradient Gemm of each frozen float32 linear in this map (dX = dY·W) reads an
   * initializer twin of the weight, which ONNX Runtime prepacks for MLAS in the session's own memory, so that the
   * GEMM no longer packs W on every run; the forward Gemms keep reading the parameter input (runtime/sessionBuild.ts).
   */
  prepacked?: TensorMap;
  /**
   * An owned backbone's frozen float32 linears in this map are initializers that ONNX Runtime reads from the
   * backbone's file and prepacks, instead of parameter inputs; their input gradients read the same initializer
   * (runtime/sessionBuild.ts).
   */
  fromFile?: Map<string, FileData>;
}

/** The initializers of one quantised matrix. */
type Int8Tensors = { weight: string; scale: string };

/** Gives modules access to the graph and to parameters (registered as inputs on first use). */
export class ModelBuilder {
  readonly g = new Graph();
  private dropoutCount = 0;
  /** Weights (canonical names) this graph reads as int8 initializers instead of float32 inputs. */
  readonly int8Weights: string[] = [];
  /** Float32 weights whose input gradient this graph computes from a prepacked twin (`prepacked`). */
  readonly prepackedWeights: string[] = [];
  constructor(readonly opts: GraphOptions) {}

  param(name: string): string {
    if (this.g.values.has(name)) return name;
    const shape = this.opts.parameterShapes.get(name);
    if (!shape) throw new Error(`model graph: no shape known for parameter ${name}`);
    return this.g.input(name, 'float32', shape);
  }

  /** y = x·Wᵀ + b for a PyTorch-layout weight W [out, in]. */
  linear(x: string, prefix: string, alpha?: number): string {
    const tag = prefix.split('.').slice(-2).join('_');
    if (this.runsInt8(prefix)) return this.int8Linear(x, prefix, alpha ?? 1, true, tag);
    return this.g.gemm(x, this.weight(prefix), this.param(`${prefix}.bias`), { transB: true, alpha }, tag);
  }

  /** y = α·x·Wᵀ without the bias (the query projection adds its own scaled bias). */
  projection(x: string, prefix: string, alpha: number, tag: string): string {
    if (this.runsInt8(prefix)) return this.int8Linear(x, prefix, alpha, false, tag);
    return this.g.gemm(x, this.weight(prefix), undefined, { transB: true, alpha }, tag);
  }

  /**
   * A float32 linear's weight: an initializer read from the backbone's file where `fromFile` holds it, else an
   * input, with a prepacked twin for its input gradient where `prepacked` holds it.
   */
  private weight(prefix: string): string {
    const { g } = this;
    const name = `${prefix}.weight`;
    const file = this.opts.fromFile?.get(name);
    if (file) {
      if (g.values.has(name)) return name;
      const shape = this.opts.parameterShapes.get(name);
      if (!shape) throw new Error(`model graph: no shape known for parameter ${name}`);
      return g.fileInitializer(name, 'float32', shape, file);
    }
    const input = this.param(name);
    const w = this.opts.prepacked?.get(name);
    if (w && !g.inputGradientOperand.has(input)) {
      let twin: string | undefined;
      g.inputGradientOperand.set(input, () => {
        if (twin === undefined) {
          twin = g.initializer(`${name}.for_input_gradient`, 'float32', w.shape, w.data);
          this.prepackedWeights.push(name);
        }
        return twin;
      });
    }
    return input;
  }

  private runsInt8(prefix: string): boolean {
    return this.opts.int8 !== undefined && isInt8Linear(prefix);
  }

  /**
   * The int8 form of a frozen linear: α·x·Wᵀ (+ b) as DynamicQuantizeMatMul on W's int8 copy (α folded into the
   * scales), and, on demand of the gradient rule, the transposed int8 copy for dX (models/quantize.ts).
   */
  private int8Linear(x: string, prefix: string, alpha: number, withBias: boolean, tag: string): string {
    const { g } = this;
    const name = `${prefix}.weight`;
    const copy = int8CopyOf(name, this.opts.int8!);
    const forward = this.int8Initializers(name, scaledBy(copy.forward, alpha));
    let transposed: Int8Tensors | undefined;
    g.transposedInt8.set(forward.weight, () => (transposed ??= this.int8Initializers(`${name}_t`, scaledBy(copy.inputGradient(), alpha))));
    this.int8Weights.push(name);
    const bias = withBias ? this.param(`${prefix}.bias`) : undefined;
    return g.dynamicQuantizeMatMul(x, forward.weight, forward.scale, bias, tag);
  }

  /** A quantised matrix as initializers: the int8 weights and their per-column scales (models/quantize.ts). */
  private int8Initializers(name: string, q: QuantizedMatrix): Int8Tensors {
    const { g } = this;
    const weight = g.initializer(`${name}.int8`, 'int8', [q.rows, q.cols], q.data);
    return { weight, scale: g.initializer(`${name}.int8_scale`, 'float32', [q.cols], q.scale) };
  }

  layerNorm(x: string, prefix: string): string {
    return this.g.layerNorm(x, this.param(`${prefix}.weight`), this.param(`${prefix}.bias`), this.opts.config.layerNormEps, 'ln');
  }

  /**
   * Inverted dropout with its scaled keep-mask as a graph input (`dropout_mask.<k>`, float32, x's shape, each
   * element 0 or 1/(1−p)): y = x ⊙ mask, and the gradient is one multiply too. The runtime feeds the masks from a
   * seeded Bernoulli pool (runtime/dropoutMasks.ts) — ONNX Runtime's Dropout kernel draws each element from a
   * Mersenne twister and cost 6 % of a training step; the earlier bool mask with `Where(mask, x/(1−p), 0)` cost
   * two passes forward and two backward, four times the multiply. x·fl(1/(1−p)) is the product Where's branch
   * computed, so the values are unchanged.
   */
  dropout(x: string): string {
    if (!this.dropsOut()) return x;
    const { g } = this;
    const mask = this.keepMask(x);
    const y = g.mul(x, mask);
    g.recompute.set(y, () => g.mul(x, mask));
    return y;
  }

  /**
   * Attention probabilities: softmax over the last axis, then dropout. Their gradient is one chain rule
   * (derivatives.ts `SoftmaxDropout`: three passes instead of five), which reads the dropped-out probabilities y, as
   * the context MatMul's rule does. y is recomputed for each (p, which the chain reads too, and the mask are kept
   * anyway): two passes over [B, H, T, T] per layer in the backward pass instead of holding y from the forward pass
   * to the backward, 4.7 MB per layer at 768 tokens, which paid for the training micro-batches' 768 tokens
   * (data/microBatches.ts).
   */
  softmaxDropout(scores: string, prefix: string): string {
    const { g } = this;
    const p = g.softmax(scores, -1, prefix);
    if (!this.dropsOut()) return p;
    const mask = this.keepMask(p);
    const y = g.mul(p, mask);
    g.recompute.set(y, () => g.mul(p, mask));
    g.chains.set(y, { rule: 'SoftmaxDropout', input: scores, inner: [p], reads: { p, y } });
    return y;
  }

  private dropsOut(): boolean {
    return this.opts.training === true && this.opts.dropout > 0;
  }

  private keepMask(x: string): string {
    return this.g.input(`${DROPOUT_MASK_PREFIX}${this.dropoutCount++}`, 'float32', this.g.shape(x));
  }
}

/** Prefix of the dropout keep-mask inputs of training graphs. */
export const DROPOUT_MASK_PREFIX = 'dropout_mask.';

/** Names of the batch inputs of every graph. */
export const BATCH_INPUTS = {
  inputIds: 'input_ids', // int64 [B, T]
  positionIds: 'position_ids', // int64 [B, T]
  attentionBias: 'attention_bias', // float [B, 1, 1, T]: 0 for tokens, a large negative number for padding
  /** Training only. Classification: one-hot labels divided by B, [B, L]. Regression: targets [B, 1]. Multi-label: multi-hot [B, L]. */
  targets: 'targets',
  /** Training only, regression: 1/B per row; multi-label: 1/(B·L); [B, 1] (a weight so the loss is a plain sum). */
  rowWeights: 'row_weights',
} as const;

export interface BuiltModel {
  b: ModelBuilder;
  /** [B, L] logits. */
  logits: string;
  /** Scalar mean loss (training). */
  loss?: string;
  /** Last hidden state [N, d] ([B, d], the <s> rows, with `headRowsOnly`). */
  hidden: string;
}

/** Large negative bias for padded keys (as Hugging Face's finfo.min: exp underflows to exactly 0). */
export const MASK_NEGATIVE = -3.4028234663852886e38;

export function buildRoberta(opts: GraphOptions): BuiltModel {
  const b = new ModelBuilder(opts);
  const { g } = b;
  const c = opts.config;
  const d = c.hiddenSize, H = c.numHeads, dh = d / H;

  const ids = g.input(BATCH_INPUTS.inputIds, 'int64', ['B', 'T']);
  let pos: string, bias: string;
  if (opts.standaloneInputs) {
    // position = pad + cumsum(mask) for tokens, pad for padding (RobertaEmbeddings); bias = (1 − mask)·(−∞-ish).
    const mask = g.input('attention_mask', 'int64', ['B', 'T']);
    const cum = g.node('CumSum', [mask, g.constI(1)], [{ type: 'int64', shape: ['B', 'T'] }])[0];
    pos = g.add(g.mul(cum, mask), g.constI(c.padTokenId));
    const maskF = g.cast(mask, 'float32');
    bias = g.unsqueeze(g.unsqueeze(g.mul(g.sub(g.constF(1), maskF), g.constF(MASK_NEGATIVE)), [1]), [1]);
  } else {
    pos = g.input(BATCH_INPUTS.positionIds, 'int64', ['B', 'T']);
    bias = g.input(BATCH_INPUTS.attentionBias, 'float32', ['B', 1, 1, 'T']);
  }

  // Runtime shape tensors: [B, T, H, dh] for splitting heads, [B, T, d] for the head's <s> token.
  const bt = g.shapeOf(ids);
  // Runtime sizes of the symbolic dimensions, so gradient rules can build shapes without reading activations.
  const symB = g.slice(bt, [0], [1], [0], [1]);
  const symT = g.slice(bt, [1], [2], [0], [1]);
  g.defineSymbol('B', symB);
  g.defineSymbol('T', symT);
  g.defineSymbol('N', g.mul(symB, symT));
  const shapeBTHd = g.concat([bt, g.constI([H, dh])], 0, [4]);
  const shapeBTd = g.concat([bt, g.constI([d])], 0, [3]);

  // Embeddings: word + position + token type 0, LayerNorm, dropout; flattened to [N, d].
  const idsFlat = g.reshapeTo(ids, [-1], ['N']);
  const posFlat = g.reshapeTo(pos, [-1], ['N']);
  const word = g.gather(b.param('roberta.embeddings.word_embeddings.weight'), idsFlat, 0, 'word_emb');
  const position = g.gather(b.param('roberta.embeddings.position_embeddings.weight'), posFlat, 0, 'pos_emb');
  const tokenType = g.gather(b.param('roberta.embeddings.token_type_embeddings.weight'), g.constI(0), 0, 'type_emb');
  let x = g.add(g.add(word, position), tokenType, 'emb');
  x = b.dropout(b.layerNorm(x, 'roberta.embeddings.LayerNorm'));

  // The <s> row of each sequence, [B, d], from hidden states [N, d].
  const firstRows = (t: string) => g.reshapeTo(g.slice(g.reshape(t, shapeBTd, ['B', 'T', d]), [0], [1], [1], ['B', 1, d]), [-1, d], ['B', d]);
  const shapeB1Hd = opts.headRowsOnly ? g.concat([symB, g.constI([1, H, dh])], 0, [4]) : '';

  const scale = 1 / Math.sqrt(dh);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `roberta.encoder.layer.${i}`;
    // Rows this layer computes its outputs for: every token, or only <s> in the last layer when the head reads
    // only <s> (its keys and values still come from every token).
    const onlyFirst = opts.headRowsOnly === true && i === c.numLayers - 1;
    const xq = onlyFirst ? firstRows(x) : x;
    // Self-attention. The 1/√dh scale is folded into the query projection (Gemm's alpha scales xWᵀ only, so the
    // bias is scaled separately by a Mul): one pass over [N, d] instead of one over [B, H, T, T].
    const qRaw = b.projection(xq, `${p}.attention.self.query`, scale, 'q');
    const q = g.add(qRaw, g.mul(b.param(`${p}.attention.self.query.bias`), g.constF(scale)));
    const k = b.linear(x, `${p}.attention.self.key`);
    const v = b.linear(x, `${p}.attention.self.value`);
    const heads = (t: string, perm: number[]): string => {
      const r = g.reshape(t, shapeBTHd, ['B', 'T', H, dh]);
      return g.transpose(r, perm);
    };
    const qh = onlyFirst ? g.transpose(g.reshape(q, shapeB1Hd, ['B', 1, H, dh]), [0, 2, 1, 3]) : heads(q, [0, 2, 1, 3]); // [B, H, T or 1, dh]
    const kh = heads(k, [0, 2, 3, 1]); // [B, H, dh, T]
    const vh = heads(v, [0, 2, 1, 3]); // [B, H, T, dh]
    const scores = g.add(g.matmul(qh, kh, 'scores'), bias);
    const probs = b.softmaxDropout(scores, 'attn_probs');
    const ctx = g.matmul(probs, vh, 'context'); // [B, H, T or 1, dh]
    const rows = onlyFirst ? 'B' : 'N';
    const ctxFlat = g.reshapeTo(g.transpose(ctx, [0, 2, 1, 3]), [-1, d], [rows, d]);
    const attnOut = b.dropout(b.linear(ctxFlat, `${p}.attention.output.dense`));
    const ln1 = `${p}.attention.output.LayerNorm`;
    const h1 = opts.hooks?.attentionBlock ? opts.hooks.attentionBlock(b, i, attnOut, xq, ln1) : b.layerNorm(g.add(attnOut, xq), ln1);

    // Feed-forward.
    const inter = g.gelu(b.linear(h1, `${p}.intermediate.dense`), 'gelu');
    const ffn = b.dropout(b.linear(inter, `${p}.output.dense`));
    const ln2 = `${p}.output.LayerNorm`;
    x = opts.hooks?.ffnBlock ? opts.hooks.ffnBlock(b, i, ffn, h1, ln2) : b.layerNorm(g.add(ffn, h1), ln2);
    if (opts.hooks?.layerOutput) x = opts.hooks.layerOutput(b, i, x);
  }

  // RobertaClassificationHead on <s>: dropout, dense, tanh, dropout, out_proj.
  const first = opts.headRowsOnly ? x : firstRows(x);
  const dense = g.tanh(b.linear(b.dropout(first), 'classifier.dense'));
  const logits = g.identity(b.linear(b.dropout(dense), 'classifier.out_proj'), 'logits');
  const built: BuiltModel = { b, hidden: x, logits };

  if (opts.training) {
    const L = opts.numLabels;
    if (opts.task === 'classification') {
      // loss = −Σ_b Σ_l t[b,l]·log softmax(logits)[b,l] with t = one-hot / B: the mean cross-entropy.
      const t = g.input(BATCH_INPUTS.targets, 'float32', ['B', L]);
      built.loss = g.neg(g.reduceSum(g.mul(g.logSoftmax(logits), t), [0, 1], false));
    } else if (opts.task === 'multilabel') {
      // Binary cross-entropy with logits: −[t·log σ(z) + (1−t)·log(1−σ(z))] = softplus(z) − t·z, with weights
      // w = 1/(B·L): the mean over every (row, label), as PyTorch's BCEWithLogitsLoss.
      const t = g.input(BATCH_INPUTS.targets, 'float32', ['B', L]);
      const w = g.input(BATCH_INPUTS.rowWeights, 'float32', ['B', 1]);
      const softplus = g.node('Softplus', [logits], [{ type: 'float32', shape: g.shape(logits) }])[0];
      built.loss = g.reduceSum(g.mul(g.sub(softplus, g.mul(logits, t)), w), [0, 1], false);
    } else {
      // loss = Σ_b w[b]·(logit[b] − y[b])² with w = 1/B: the mean squared error.
      const t = g.input(BATCH_INPUTS.targets, 'float32', ['B', 1]);
      const w = g.input(BATCH_INPUTS.rowWeights, 'float32', ['B', 1]);
      const diff = g.sub(logits, t);
      built.loss = g.reduceSum(g.mul(g.mul(diff, diff), w), [0, 1], false);
    }
  }
  return built;
}

/** Shapes of the classification head's tensors. */
export function headShapes(config: RobertaConfig, numLabels: number): Map<string, number[]> {
  const d = config.hiddenSize;
  return new Map<string, number[]>([
    ['classifier.dense.weight', [d, d]],
    ['classifier.dense.bias', [d]],
    ['classifier.out_proj.weight', [numLabels, d]],
    ['classifier.out_proj.bias', [numLabels]],
  ]);
}

/** Names of the backbone's LayerNorm tensors (trained by default, as in the authors' code). */
export function layerNormNames(config: RobertaConfig): string[] {
  const names = ['roberta.embeddings.LayerNorm.weight', 'roberta.embeddings.LayerNorm.bias'];
  for (let i = 0; i < config.numLayers; i++) {
    for (const ln of ['attention.output.LayerNorm', 'output.LayerNorm']) {
      names.push(`roberta.encoder.layer.${i}.${ln}.weight`, `roberta.encoder.layer.${i}.${ln}.bias`);
    }
  }
  return names;
}
