/**
 * Every gradient rule, one entry per ONNX op, in one table — the role PyTorch's `derivatives.yaml` plays.
 *
 * A rule receives the forward node, the gradient of each of its outputs (`dy[k]`, undefined when that output has
 * none) and `wants(i)`, whether input i needs a gradient; it emits ONNX nodes into the graph and returns the
 * gradient of each input it was asked for. Rules only reference the forward values they need, so that ONNX
 * Runtime's memory planner can free the rest early: e.g. a frozen weight's matmul never keeps its input alive.
 *
 * Notation in the comments: y = output, dy = ∂L/∂y, ⊙ elementwise product, unb(·, x) sums a broadcast gradient
 * back to x's shape.
 */
import { Chain, Graph, Node, broadcastAxes, floatAttr } from '../onnx/graph';

export interface RuleContext {
  g: Graph;
  /** The forward node: its attributes, and its value names for build-time shapes (`unbroadcast`, `g.shape`). */
  node: Node;
  dy: (string | undefined)[];
  wants: (inputIndex: number) => boolean;
  /**
   * Input i's forward value, for a rule that reads it at run time. The backward pass hands out a recomputed copy
   * when the graph builder registered one in `g.recompute` (dropout outputs), so no rule keeps such a value alive.
   */
  x: (inputIndex: number) => string;
  /** Output k's forward value, for a rule that reads it at run time (recomputed like `x`). */
  y: (outputIndex: number) => string;
}

export type GradRule = (ctx: RuleContext) => (string | undefined)[];

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

export const DERIVATIVES: Record<string, GradRule> = {
  // y = a + b:  da = unb(dy, a), db = unb(dy, b)
  Add: ({ g, node, dy, wants }) => [
    wants(0) ? unbroadcast(g, dy[0]!, node.inputs[0]) : undefined,
    wants(1) ? unbroadcast(g, dy[0]!, node.inputs[1]) : undefined,
  ],

  // y = a − b:  da = unb(dy, a), db = −unb(dy, b)
  Sub: ({ g, node, dy, wants }) => [
    wants(0) ? unbroadcast(g, dy[0]!, node.inputs[0]) : undefined,
    wants(1) ? g.neg(unbroadcast(g, dy[0]!, node.inputs[1])) : undefined,
  ],

  // y = a ⊙ b:  da = unb(dy ⊙ b, a), db = unb(dy ⊙ a, b)
  Mul: ({ g, node, dy, wants, x }) => {
    const [a, b] = node.inputs;
    return [wants(0) ? unbroadcast(g, g.mul(dy[0]!, x(1)), a) : undefined, wants(1) ? unbroadcast(g, g.mul(dy[0]!, x(0)), b) : undefined];
  },

  // y = a / b:  da = unb(dy / b, a), db = unb(−dy ⊙ y / b, b)
  Div: ({ g, node, dy, wants, x, y }) => {
    const [a, b] = node.inputs;
    return [
      wants(0) ? unbroadcast(g, g.div(dy[0]!, x(1)), a) : undefined,
      wants(1) ? unbroadcast(g, g.neg(g.div(g.mul(dy[0]!, y(0)), x(1))), b) : undefined,
    ];
  },

  // y = −x:  dx = −dy
  Neg: ({ g, dy }) => [g.neg(dy[0]!)],

  // y = x:  dx = dy
  Identity: ({ dy }) => [dy[0]],

  // y = x₁ + … + xₙ (broadcast):  dxᵢ = unb(dy, xᵢ)
  Sum: ({ g, node, dy, wants }) => node.inputs.map((x, i) => (wants(i) ? unbroadcast(g, dy[0]!, x) : undefined)),

  // y = a·b (batched over leading axes):  da = dy·bᵀ, db = aᵀ·dy (summed over batch axes b lacks)
  MatMul: ({ g, node, dy, wants, x }) => {
    const ra = g.shape(node.inputs[0]).length,
      rb = g.shape(node.inputs[1]).length;
    const out: (string | undefined)[] = [undefined, undefined];
    if (wants(0)) out[0] = unbroadcast(g, g.matmul(dy[0]!, swapLast(g, x(1))), node.inputs[0]);
    if (wants(1)) {
      const a = x(0);
      if (rb === 2 && ra > 2) {
        // b is a weight shared by every row: flatten the batch axes into one GEMM.
        const k = g.shape(a)[ra - 1],
          n = g.shape(node.inputs[1])[1];
        const a2 = g.reshapeTo(a, [-1, k as number], ['M', k]);
        const d2 = g.reshapeTo(dy[0]!, [-1, n as number], ['M', n]);
        out[1] = g.gemm(a2, d2, undefined, { transA: true });
      } else {
        out[1] = unbroadcast(g, g.matmul(swapLast(g, a), dy[0]!), node.inputs[1]);
      }
    }
    return out;
  },

  // y = α·op(a)·op(b) + c, op = transpose when the flag is set:
  //   da = α·dy·op(b)ᵀ (or α·op(b)·dyᵀ when transA), db = α·op(a)ᵀ·dy (or α·dyᵀ·op(a) when transB), dc = unb(dy, c)
  Gemm: ({ g, node, dy, wants, x }) => {
    const c = node.inputs[2];
    const transA = node.attrs.transA === 1,
      transB = node.attrs.transB === 1;
    const alpha = floatAttr(node, 'alpha', 1);
    const d = dy[0]!;
    // A frozen weight may have a prepacked twin for this product (graph.inputGradientOperand): the same values.
    const b = () => g.inputGradientOperand.get(node.inputs[1])?.() ?? x(1);
    return [
      wants(0)
        ? transA
          ? g.gemm(b(), d, undefined, { transA: transB, transB: true, alpha })
          : g.gemm(d, b(), undefined, { transB: !transB, alpha })
        : undefined,
      wants(1)
        ? transB
          ? g.gemm(d, x(0), undefined, { transA: true, transB: transA, alpha })
          : g.gemm(x(0), d, undefined, { transA: !transA, alpha })
        : undefined,
      c !== undefined && wants(2) ? unbroadcast(g, d, c) : undefined,
    ];
  },

  // y = a·B̃ (+ bias), B̃ a frozen int8 weight with per-column scales (com.microsoft, models/quantize.ts; inputs
  // 1–3 are the weight, its scales and the empty zero point):
  //   da = dy·B̃ᵀ, run int8 too: DynamicQuantizeMatMul(dy, the weight's transposed int8 copy), straight through the
  //   run-time rounding of a (which has no useful derivative); dbias = unb(dy, bias). Reads neither a nor y, so a
  //   is freed after the forward pass. The weight and its scales are initializers, never trained: no gradient.
  //   The op quantises dy per tensor, and a gradient's rows (tokens) differ in size by orders of magnitude, so dy is
  //   first divided by each row's largest |value| s and the product multiplied back by s: da = (dy/s · B̃ᵀ) ⊙ s.
  //   On a trained roberta-mini memory this cut the int8 gradients' error against float32 in the lowest layers
  //   from 3–4 % to about 1 % (the forward pass's own rounding leaves 1–2 % everywhere), for 3–10 % of an int8 step.
  DynamicQuantizeMatMul: ({ g, node, dy, wants }) => {
    const [, weight, , , bias] = node.inputs;
    if (wants(1) || wants(2) || wants(3)) throw new Error(`autodiff: ${weight} is a frozen int8 weight; it has no gradient`);
    let da: string | undefined;
    if (wants(0)) {
      const transposed = g.transposedInt8.get(weight);
      if (!transposed) throw new Error(`autodiff: no transposed int8 copy of ${weight} is registered (graph.transposedInt8)`);
      const t = transposed();
      const d = dy[0]!;
      // max(|row max|, |row min|) reads dy twice and writes nothing, where Abs would write a copy; 1e-30: a zero row.
      const s = g.max([g.abs(g.reduceMax(d, [-1], true)), g.abs(g.reduceMin(d, [-1], true)), g.constF(1e-30)]);
      da = g.mul(g.dynamicQuantizeMatMul(g.mul(d, g.reciprocal(s)), t.weight, t.scale), s);
    }
    return [da, undefined, undefined, undefined, bias && wants(4) ? unbroadcast(g, dy[0]!, bias) : undefined];
  },

  // y = transpose(x, perm):  dx = transpose(dy, perm⁻¹)
  Transpose: ({ g, node, dy }) => {
    const perm = node.attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [g.transpose(dy[0]!, inv)];
  },

  // Shape-only ops: dx = reshape(dy, shape(x))
  Reshape: ({ g, node, dy }) => [reshapeLike(g, dy[0]!, node.inputs[0])],
  Unsqueeze: ({ g, node, dy }) => [reshapeLike(g, dy[0]!, node.inputs[0])],
  Squeeze: ({ g, node, dy }) => [reshapeLike(g, dy[0]!, node.inputs[0])],

  // y = softmax(x) along axis:  dx = y ⊙ (dy − Σ_axis(dy ⊙ y))
  Softmax: ({ g, node, dy, y }) => {
    const axis = node.attrs.axis as number;
    const dot = g.reduceSum(g.mul(dy[0]!, y(0)), [axis], true);
    return [g.mul(y(0), g.sub(dy[0]!, dot))];
  },

  // y = log softmax(x) along axis:  dx = dy − exp(y) ⊙ Σ_axis dy
  LogSoftmax: ({ g, node, dy, y }) => {
    const axis = node.attrs.axis as number;
    return [g.sub(dy[0]!, g.mul(g.exp(y(0)), g.reduceSum(dy[0]!, [axis], true)))];
  },

  // y = tanh(x):  dx = dy ⊙ (1 − y²)
  Tanh: ({ g, dy, y }) => {
    const t = y(0);
    return [g.mul(dy[0]!, g.sub(g.constF(1), g.mul(t, t)))];
  },

  // y = max(x, 0):  dx = dy ⊙ [x > 0]
  Relu: ({ g, dy, x }) => [g.where(g.greater(x(0), g.constF(0)), dy[0]!, g.constF(0))],

  // y = σ(x):  dx = dy ⊙ y ⊙ (1 − y)
  Sigmoid: ({ g, dy, y }) => {
    const s = y(0);
    return [g.mul(dy[0]!, g.mul(s, g.sub(g.constF(1), s)))];
  },

  // y = softplus(x) = log(1 + exp(x)):  dx = dy ⊙ σ(x)
  Softplus: ({ g, dy, x }) => [g.mul(dy[0]!, g.sigmoid(x(0)))],

  // y = data[indices] along axis 0 (embedding lookup):  d data = scatter-add of dy at the indices into zeros
  Gather: ({ g, node, dy, wants, x }) => {
    const data = node.inputs[0];
    if (!wants(0)) return [undefined, undefined];
    if ((node.attrs.axis ?? 0) !== 0) throw new Error('Gather: only axis 0 is differentiable here');
    const zeros = g.node('ConstantOfShape', [g.shapeTensor(data)], [{ type: 'float32', shape: g.shape(data) }], {
      value: { tensorFloat: 0 },
    })[0];
    const idx = g.unsqueeze(x(1), [-1]);
    return [g.node('ScatterND', [zeros, idx, dy[0]!], [{ type: 'float32', shape: g.shape(data) }], { reduction: 'add' })[0], undefined];
  },

  // y = exp(x):  dx = dy ⊙ y
  Exp: ({ g, dy, y }) => [g.mul(dy[0]!, y(0))],

  // y = erf(x):  dx = dy ⊙ 2/√π · exp(−x²)
  Erf: ({ g, dy, x }) => {
    const v = x(0);
    return [g.mul(dy[0]!, g.mul(g.constF(TWO_OVER_SQRT_PI), g.exp(g.neg(g.mul(v, v)))))];
  },

  // y = x·Φ(x) (exact GELU):  dx = dy ⊙ (Φ(x) + x·φ(x)),  Φ(x) = ½(1 + erf(x/√2)), φ(x) = exp(−x²/2)/√(2π).
  //   With a = x/√2: x·φ(x) = a·exp(−a²)/√π, so dx = ½·dy ⊙ (1 + erf(a) + 2/√π · a / exp(a²)). Ten passes over
  //   the FFN's widest tensor instead of eleven (this rule is a training step's largest elementwise cost), nine where
  //   onnx/foldScales.ts folds the ½ into the input-gradient Gemm; a / exp(a²) needs no negation, and exp(a²)
  //   overflows to ∞ only where the term is 0 in float32 anyway.
  Gelu: ({ g, node, dy, x }) => {
    if (node.attrs.approximate !== undefined && node.attrs.approximate !== 'none')
      throw new Error('Gelu: only the exact form is differentiable here');
    const a = g.mul(x(0), g.constF(Math.SQRT1_2));
    const density = g.mul(g.div(a, g.exp(g.mul(a, a))), g.constF(TWO_OVER_SQRT_PI));
    // Two Adds, not one three-input Sum: ORT's Sum broadcasts the scalar in a slower generic loop.
    const twice = g.add(g.add(g.erf(a), g.constF(1)), density);
    return [g.mul(g.mul(dy[0]!, twice), g.constF(0.5))];
  },

  // y = x̂ ⊙ γ + β over the last axis, x̂ = (x − μ)·r, r = 1/√(σ² + ε) (μ, r are the node's 2nd and 3rd outputs):
  //   dγ = Σ_rows dy ⊙ x̂,  dβ = Σ_rows dy,  dx = r ⊙ (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) with g = dy ⊙ γ
  LayerNormalization: ({ g, node, dy, wants, x, y }) => {
    if (dy[1] !== undefined || dy[2] !== undefined)
      throw new Error('LayerNormalization: only the normalised output is differentiable here');
    const [, gamma, beta] = node.inputs;
    const invStd = y(2);
    const d = dy[0]!;
    const xhat = g.mul(g.sub(x(0), y(1)), invStd);
    const out: (string | undefined)[] = [undefined, undefined, undefined];
    if (wants(0)) {
      const gy = g.mul(d, x(1));
      const m1 = g.reduceMean(gy, [-1], true);
      const m2 = g.reduceMean(g.mul(gy, xhat), [-1], true);
      out[0] = g.mul(invStd, g.sub(g.sub(gy, m1), g.mul(xhat, m2)));
    }
    if (wants(1)) out[1] = unbroadcast(g, g.mul(d, xhat), gamma);
    if (wants(2)) out[2] = unbroadcast(g, d, beta);
    return out;
  },

  // y = cond ? a : b:  da = unb(cond ? dy : 0, a), db = unb(cond ? 0 : dy, b)
  Where: ({ g, node, dy, wants, x }) => {
    const [, a, b] = node.inputs;
    const zero = g.constF(0);
    return [
      undefined,
      wants(1) ? unbroadcast(g, g.where(x(0), dy[0]!, zero), a) : undefined,
      wants(2) ? unbroadcast(g, g.where(x(0), zero, dy[0]!), b) : undefined,
    ];
  },

  // y = Σ_axes x:  dx = expand(dy with the reduced axes restored, shape(x))
  ReduceSum: ({ g, node, dy }) => {
    const x = node.inputs[0];
    const axes = constInts(g, node.inputs[1]);
    const d = node.attrs.keepdims === 0 ? g.unsqueeze(dy[0]!, axes) : dy[0]!;
    return [g.expand(d, g.shapeTensor(x), g.shape(x))];
  },

  // y = mean_axes x:  dx = expand(dy with the reduced axes restored, shape(x)) / Π reduced dims
  ReduceMean: ({ g, node, dy }) => {
    const x = node.inputs[0];
    const axes = constInts(g, node.inputs[1]);
    const rank = g.shape(x).length;
    const d = node.attrs.keepdims === 0 ? g.unsqueeze(dy[0]!, axes) : dy[0]!;
    const shapeX = g.shapeTensor(x);
    const dims = g.gather(shapeX, g.constI(axes.map((a) => (a < 0 ? a + rank : a))));
    const count = g.cast(g.node('ReduceProd', [dims], [{ type: 'int64', shape: [] }], { keepdims: 0 })[0], 'float32');
    return [g.div(g.expand(d, shapeX, g.shape(x)), count)];
  },

  // y = x[starts:ends] on some axes (steps 1, non-negative starts):  dx = pad(dy) with zeros back to x's shape
  Slice: ({ g, node, dy }) => {
    const [x, startsName, , axesName] = node.inputs;
    const starts = constInts(g, startsName);
    const axes = constInts(g, axesName);
    const rank = g.shape(x).length;
    const begin = new Array<number>(rank).fill(0);
    axes.forEach((a, i) => (begin[a < 0 ? a + rank : a] = starts[i]));
    const end = g.sub(g.sub(g.shapeTensor(x), g.constI(begin)), g.shapeTensor(dy[0]!));
    const pads = g.concat([g.constI(begin), end], 0, [2 * rank]);
    return [g.pad(dy[0]!, pads, g.shape(x))];
  },
};

/**
 * A chain's rule: the gradient of the chain's input from `dy`, the gradient of its output, reading the forward
 * values the graph builder recorded in `chain.reads`.
 */
export type ChainRule = (g: Graph, dy: string, reads: Chain['reads']) => string;

/**
 * Rules for short forward chains (`Graph.chains`), where the composed gradient takes fewer passes than the nodes'
 * own rules applied one by one. Each one's result equals that composition but for rounding (test/rules.test.ts).
 */
export const CHAIN_DERIVATIVES: Record<Chain['rule'], ChainRule> = {
  // p = softmax(s) over the last axis, then y = p ⊙ m, m a dropout keep-mask (0 or 1/(1−prob)):
  //   one rule at a time: dp = dy ⊙ m, ds = p ⊙ (dp − Σ(dp ⊙ p)), with y recomputed for the MatMul that reads it:
  //   five passes over the attention probabilities [B, H, T, T]. Since p ⊙ dp = p ⊙ m ⊙ dy = y ⊙ dy:
  //   t = y ⊙ dy, ds = t − p ⊙ Σ t: three passes, with y kept from the forward pass (reads: p, y).
  SoftmaxDropout: (g, dy, { p, y }) => {
    const t = g.mul(y, dy);
    return g.sub(t, g.mul(p, g.reduceSum(t, [-1], true)));
  },
};

/** Ops whose outputs carry no gradient (indices, shapes, comparisons). */
export const NON_DIFFERENTIABLE = new Set([
  'Shape',
  'TopK',
  'GreaterOrEqual',
  'Greater',
  'Less',
  'Equal',
  'Cast',
  'ArgMax',
  'ConstantOfShape',
]);

/** Sums a gradient that was broadcast from `x`'s shape back to that shape. */
export function unbroadcast(g: Graph, grad: string, x: string): string {
  const { leading, kept } = broadcastAxes(g.shape(x), g.shape(grad));
  let r = grad;
  if (kept.length) r = g.reduceSum(r, kept, true);
  if (leading.length) r = g.reduceSum(r, leading, false);
  return r;
}

function reshapeLike(g: Graph, grad: string, x: string): string {
  return g.reshape(grad, g.shapeTensor(x), g.shape(x));
}

function swapLast(g: Graph, x: string): string {
  const r = g.shape(x).length;
  const perm = Array.from({ length: r }, (_, i) => i);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return g.transpose(x, perm);
}

function constInts(g: Graph, name: string): number[] {
  const c = g.constants.find((k) => k.name === name);
  if (!c || c.type !== 'int64') throw new Error(`autodiff: ${name} must be an int64 constant`);
  return Array.from(c.data as BigInt64Array, Number);
}
