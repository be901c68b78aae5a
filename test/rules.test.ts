/**
 * Every gradient rule of `derivatives.ts`, one at a time, against central finite differences — run through ONNX
 * Runtime, no PyTorch (`npm run test:rules`).
 *
 * A case is a one-node graph (broadcasting wherever the op allows it). For a random cotangent w of the node's
 * outputs, the rule's vector-Jacobian product ∂(Σ w ⊙ y)/∂x is compared, for every element of every float
 * input, with (s(x + ε) − s(x − ε)) / 2ε, where s = Σ w ⊙ y is summed in float64 from ORT's float32 outputs.
 * The relative error of each input's gradient must stay under TOLERANCE (float32 central differences land
 * around 1e-5…1e-4 here), so a rule whose output is off by 1 % fails.
 *
 * An op whose own forward pass has no useful derivative (DynamicQuantizeMatMul: int8 rounding) is checked against a
 * float32 `reference` on the same inputs (the linear it stands for), with a tolerance its case states.
 *
 * Each case runs twice: as it is, and with every forward value of the node registered in `g.recompute`, which
 * checks that the backward pass (not the rule) rematerialises: no node the rule adds may read a registered value.
 *
 * Adding a rule to DERIVATIVES without a case here fails the first test: add one entry to CASES.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { CHAIN_DERIVATIVES, DERIVATIVES } from '../src/engine/autodiff/derivatives';
import { buildBackward, differentiateNode } from '../src/engine/autodiff/backward';
import { Graph, Node } from '../src/engine/onnx/graph';
import { toModelBytes } from '../src/engine/onnx/serialize';
import { createRng } from '../src/engine/util/random';
import { int8WeightLevels, QuantizedMatrix, quantizeForInputGradient, quantizeForward } from '../src/engine/models/quantize';

interface RuleCase {
  /** What this case exercises beyond the plain op (broadcast axes, attributes). */
  name: string;
  /** The float32 inputs the gradient is checked for, by name and shape. */
  inputs: Record<string, number[]>;
  /** Builds the node under test from those inputs (constants are fine; exactly one node). */
  build: (g: Graph, x: Record<string, string>) => void;
  /** Draws an input value from a uniform u in [0, 1) (default: uniform in [−1, 1]); keep kinks and poles away. */
  draw?: (u: number, input: string) => number;
  /** Outputs that get a cotangent (default: every float32 output). */
  outputs?: number[];
  /** Step of the central differences (default 1e-2). */
  eps?: number;
  /**
   * A float32 stand-in on the same inputs whose central differences the rule is checked against, for an op whose
   * own forward pass has no useful derivative (int8: rounding); builds exactly one node.
   */
  reference?: (g: Graph, x: Record<string, string>) => void;
  /** Relative error allowed (default TOLERANCE); say why where it is larger. */
  tolerance?: number;
}

const TOLERANCE = 1e-3;

/**
 * A frozen int8 linear as the engine builds it on this CPU (models/quantize.ts): W [12, 16] drawn once, quantised
 * per output channel for y = a·Wᵀ + bias (in ±127, or ±63 where the CPU has no VNNI),
 * and its transposed copy registered for the rule. `reference` is the float32 linear on the same W.
 */
const INT8_W = (() => {
  const rng = createRng(0x1a7);
  return Float32Array.from({ length: 12 * 16 }, () => 2 * rng.next() - 1);
})();
function int8Linear(g: Graph, x: Record<string, string>): void {
  const levels = int8WeightLevels();
  const store = (name: string, q: QuantizedMatrix) => ({
    weight: g.initializer(name, 'int8', [q.rows, q.cols], q.data),
    scale: g.initializer(`${name}.scale`, 'float32', [q.cols], q.scale),
  });
  const w = store('w.q', quantizeForward(INT8_W, 12, 16, levels));
  g.transposedInt8.set(w.weight, () => store('w.q_t', quantizeForInputGradient(INT8_W, 12, 16, levels)));
  g.dynamicQuantizeMatMul(x.a, w.weight, w.scale, x.bias);
}

/** Away from zero by at least 0.2: for kinks (Relu) and poles (Div). */
const awayFromZero = (u: number) => (u < 0.5 ? -1 : 1) * (0.2 + 1.6 * Math.abs(u - 0.5));

const CASES: Record<string, RuleCase[]> = {
  Add: [{ name: 'broadcast: leading axis and a kept 1', inputs: { a: [2, 3, 4], b: [3, 1] }, build: (g, x) => void g.add(x.a, x.b) }],
  Sub: [{ name: 'broadcast both ways', inputs: { a: [3, 1], b: [2, 3, 4] }, build: (g, x) => void g.sub(x.a, x.b) }],
  Mul: [{ name: 'broadcast: scalar-like [1] and a matrix', inputs: { a: [2, 3, 4], b: [1, 4] }, build: (g, x) => void g.mul(x.a, x.b) }],
  Div: [
    {
      name: 'broadcast denominator',
      inputs: { a: [2, 3, 4], b: [3, 1] },
      build: (g, x) => void g.div(x.a, x.b),
      draw: awayFromZero,
      eps: 3e-3,
    },
  ],
  Neg: [{ name: 'plain', inputs: { x: [3, 4] }, build: (g, x) => void g.neg(x.x) }],
  Identity: [{ name: 'plain', inputs: { x: [3, 4] }, build: (g, x) => void g.identity(x.x) }],
  Sum: [
    {
      name: 'three inputs, broadcast',
      inputs: { a: [2, 3, 4], b: [4], c: [3, 1] },
      build: (g, x) => void g.node('Sum', [x.a, x.b, x.c], [{ type: 'float32', shape: [2, 3, 4] }]),
    },
  ],
  MatMul: [
    {
      name: 'rank 3 × shared weight (one GEMM for the weight)',
      inputs: { a: [2, 3, 4], b: [4, 5] },
      build: (g, x) => void g.matmul(x.a, x.b),
    },
    { name: 'batch axes broadcast both ways', inputs: { a: [2, 1, 3, 4], b: [3, 4, 2] }, build: (g, x) => void g.matmul(x.a, x.b) },
  ],
  Gemm: [
    {
      name: 'transB, alpha, bias broadcast over rows',
      inputs: { a: [3, 4], b: [5, 4], c: [5] },
      build: (g, x) => void g.gemm(x.a, x.b, x.c, { transB: true, alpha: 0.5 }),
    },
    {
      name: 'transA, bias [1, n]',
      inputs: { a: [4, 3], b: [4, 5], c: [1, 5] },
      build: (g, x) => void g.gemm(x.a, x.b, x.c, { transA: true }),
    },
    {
      name: 'transA and transB, no bias',
      inputs: { a: [4, 3], b: [5, 4] },
      build: (g, x) => void g.gemm(x.a, x.b, undefined, { transA: true, transB: true, alpha: 2 }),
    },
  ],
  // Straight through the int8 rounding, against the float32 linear: the rule's dy·B̃ᵀ rounds W (per input channel,
  // half a step of max|W|/127) and dy (per tensor, half a step of its range/255): 5.5e-3 of the gradient here;
  // 2e-2 leaves room for other draws, and a wrong transpose, scale or zero point is off by O(1).
  DynamicQuantizeMatMul: [
    {
      name: 'frozen int8 weight with per-channel scales and a bias, vs the float32 linear',
      inputs: { a: [6, 16], bias: [12] },
      build: int8Linear,
      reference: (g, x) => void g.gemm(x.a, g.initializer('w', 'float32', [12, 16], INT8_W), x.bias, { transB: true }),
      tolerance: 2e-2,
    },
  ],
  Transpose: [{ name: 'rank 3 permutation', inputs: { x: [2, 3, 4] }, build: (g, x) => void g.transpose(x.x, [2, 0, 1]) }],
  Reshape: [{ name: '[2, 3, 4] → [6, 4]', inputs: { x: [2, 3, 4] }, build: (g, x) => void g.reshapeTo(x.x, [6, 4], [6, 4]) }],
  Unsqueeze: [{ name: 'two new axes', inputs: { x: [3, 4] }, build: (g, x) => void g.unsqueeze(x.x, [0, 2]) }],
  Squeeze: [
    {
      name: 'one axis',
      inputs: { x: [3, 1, 4] },
      build: (g, x) => void g.node('Squeeze', [x.x, g.constI([1])], [{ type: 'float32', shape: [3, 4] }]),
    },
  ],
  Softmax: [
    { name: 'last axis', inputs: { x: [2, 3, 4] }, build: (g, x) => void g.softmax(x.x, -1) },
    { name: 'middle axis', inputs: { x: [2, 3, 4] }, build: (g, x) => void g.softmax(x.x, 1) },
  ],
  LogSoftmax: [{ name: 'last axis', inputs: { x: [3, 5] }, build: (g, x) => void g.logSoftmax(x.x, -1) }],
  Tanh: [{ name: 'plain', inputs: { x: [3, 4] }, build: (g, x) => void g.tanh(x.x) }],
  Relu: [{ name: 'values away from the kink', inputs: { x: [3, 4] }, build: (g, x) => void g.relu(x.x), draw: awayFromZero }],
  Sigmoid: [{ name: 'plain', inputs: { x: [3, 4] }, build: (g, x) => void g.sigmoid(x.x) }],
  Softplus: [
    {
      name: 'both tails',
      inputs: { x: [3, 4] },
      build: (g, x) => void g.node('Softplus', [x.x], [{ type: 'float32', shape: [3, 4] }]),
      draw: (u) => 12 * u - 6,
    },
  ],
  Gather: [
    {
      name: 'embedding lookup with repeated indices',
      inputs: { data: [5, 3] },
      build: (g, x) => void g.gather(x.data, g.constI([1, 3, 1, 0, 4, 1], [2, 3])),
    },
  ],
  Exp: [{ name: 'plain', inputs: { x: [3, 4] }, build: (g, x) => void g.exp(x.x) }],
  Erf: [{ name: 'plain', inputs: { x: [3, 4] }, build: (g, x) => void g.erf(x.x) }],
  Gelu: [
    { name: 'exact form', inputs: { x: [3, 4] }, build: (g, x) => void g.gelu(x.x), draw: (u) => 4 * u - 2 },
    // |x| up to 16: exp(x²/2) overflows float32 past |x| ≈ 13.3, where the rule's a / exp(a²) must give 0, not NaN.
    { name: 'tails, exp(x²/2) overflowing', inputs: { x: [4, 5] }, build: (g, x) => void g.gelu(x.x), draw: (u) => 32 * u - 16 },
  ],
  LayerNormalization: [
    {
      name: 'rows of 6, scale and bias',
      inputs: { x: [2, 3, 6], gamma: [6], beta: [6] },
      build: (g, x) => void g.layerNorm(x.x, x.gamma, x.beta, 1e-5),
      outputs: [0],
    },
  ],
  Where: [
    {
      name: 'broadcast condition and branches',
      inputs: { a: [2, 3, 4], b: [3, 1] },
      build: (g, x) => void g.where(boolConst(g, [1, 4], [1, 0, 0, 1]), x.a, x.b),
    },
  ],
  ReduceSum: [
    { name: 'keepdims', inputs: { x: [2, 3, 4] }, build: (g, x) => void g.reduceSum(x.x, [1], true) },
    { name: 'two axes dropped', inputs: { x: [2, 3, 4] }, build: (g, x) => void g.reduceSum(x.x, [0, -1], false) },
  ],
  ReduceMean: [
    { name: 'keepdims', inputs: { x: [2, 3, 4] }, build: (g, x) => void g.reduceMean(x.x, [-1], true) },
    { name: 'two axes dropped', inputs: { x: [2, 3, 4] }, build: (g, x) => void g.reduceMean(x.x, [0, 2], false) },
  ],
  Slice: [
    { name: 'two axes, offset start', inputs: { x: [3, 5, 4] }, build: (g, x) => void g.slice(x.x, [1, 2], [3, 5], [0, 1], [2, 3, 4]) },
  ],
};

function boolConst(g: Graph, shape: number[], values: number[]): string {
  const name = g.fresh('cond');
  const c = { name, type: 'bool' as const, shape, data: Uint8Array.from(values) };
  g.constants.push(c);
  g.values.set(name, c);
  return name;
}

test('every gradient rule has a finite-difference case, and every case a rule', () => {
  const missing = Object.keys(DERIVATIVES).filter((op) => !CASES[op]?.length);
  assert.deepEqual(missing, [], `rules without a case in test/rules.test.ts: ${missing.join(', ')}`);
  const stale = Object.keys(CASES).filter((op) => !(op in DERIVATIVES));
  assert.deepEqual(stale, [], `cases without a rule: ${stale.join(', ')}`);
});

const size = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

for (const [op, cases] of Object.entries(CASES)) {
  for (const c of cases) {
    test(`${op} (${c.name}): gradient = central differences, also with rematerialised forward values`, async () => {
      const rng = createRng(0x5eed ^ op.length ^ c.name.length);
      const feeds = new Map<string, Float32Array>();
      for (const [name, shape] of Object.entries(c.inputs)) {
        feeds.set(
          name,
          Float32Array.from({ length: size(shape) }, () => (c.draw ? c.draw(rng.next(), name) : 2 * rng.next() - 1)),
        );
      }
      const built = buildCase(op, c, false);
      const cot = built.cotangents.map((o) => Float32Array.from({ length: size(o.shape) }, () => 2 * rng.next() - 1));

      const forward = await ort.InferenceSession.create(built.forwardBytes, SESSION);
      const objective = async (inputs: Map<string, Float32Array>): Promise<number> => {
        const out = await forward.run(toFeeds(c, inputs));
        let s = 0;
        built.cotangents.forEach((o, k) => {
          const y = out[o.forward].data as Float32Array;
          for (let j = 0; j < y.length; j++) s += cot[k][j] * y[j];
        });
        return s;
      };
      const eps = c.eps ?? 1e-2;
      const numeric = new Map<string, Float64Array>();
      for (const [name, x] of feeds) {
        const fd = new Float64Array(x.length);
        for (let j = 0; j < x.length; j++) {
          const plus = new Float32Array(x),
            minus = new Float32Array(x);
          plus[j] = x[j] + eps;
          minus[j] = x[j] - eps;
          const inputs = new Map(feeds);
          inputs.set(name, plus);
          const sp = await objective(inputs);
          inputs.set(name, minus);
          fd[j] = (sp - (await objective(inputs))) / (plus[j] - minus[j]);
        }
        numeric.set(name, fd);
      }
      await forward.release();

      for (const remat of [false, true]) {
        const variant = remat ? buildCase(op, c, true) : built;
        const session = await ort.InferenceSession.create(variant.backwardBytes, SESSION);
        const inputs = toFeeds(c, feeds);
        variant.cotangents.forEach((o, k) => (inputs[o.dy] = new ort.Tensor('float32', cot[k], o.shape)));
        const out = await session.run(inputs);
        for (const [name, shape] of Object.entries(c.inputs)) {
          const grad = out[`grad.${name}`];
          const where = `${op} (${c.name})${remat ? ' with recompute' : ''}: ∂/∂${name}`;
          assert.deepEqual(Array.from(grad.dims), shape, `${where} has the input's shape`);
          const err = relativeError(grad.data as Float32Array, numeric.get(name)!);
          const tolerance = c.tolerance ?? TOLERANCE;
          assert.ok(err < tolerance, `${where}: relative error ${err.toExponential(2)} vs central differences (tolerance ${tolerance})`);
        }
        await session.release();
      }
    });
  }
}

const SESSION: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'disabled' };

function toFeeds(c: RuleCase, values: Map<string, Float32Array>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, shape] of Object.entries(c.inputs)) feeds[name] = new ort.Tensor('float32', values.get(name)!, shape);
  return feeds;
}

/** ‖a − b‖ / ‖b‖ (b the finite differences; a zero b compares absolutely). */
function relativeError(a: Float32Array, b: Float64Array): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-6);
}

interface BuiltCase {
  forwardBytes: Uint8Array;
  backwardBytes: Uint8Array;
  /** `forward`: the output of the forward graph (the reference's, where there is one) the cotangent weighs. */
  cotangents: { name: string; forward: string; dy: string; shape: number[] }[];
}

/**
 * The case's one-node graph, serialised twice: the forward graph (outputs y) and the gradient graph (the node,
 * the rule's nodes, outputs `grad.<input>`). With `remat`, every forward value of the node is registered in
 * `g.recompute`, and no node the rule emits may read one of them directly.
 */
function buildCase(op: string, c: RuleCase, remat: boolean): BuiltCase {
  const g = new Graph();
  const x: Record<string, string> = {};
  for (const [name, shape] of Object.entries(c.inputs)) x[name] = g.input(name, 'float32', shape);
  c.build(g, x);
  assert.equal(g.nodes.length, 1, `${op} case "${c.name}" builds exactly one node`);
  const node: Node = g.nodes[0];
  assert.equal(node.op, op, `${op} case "${c.name}" builds a ${op} node`);

  const outIdx = c.outputs ?? node.outputs.map((o, k) => (g.info(o).type === 'float32' ? k : -1)).filter((k) => k >= 0);
  let forwardBytes: Uint8Array;
  let forwardNames = outIdx.map((k) => node.outputs[k]);
  if (c.reference) {
    const rg = new Graph();
    const rx: Record<string, string> = {};
    for (const [name, shape] of Object.entries(c.inputs)) rx[name] = rg.input(name, 'float32', shape);
    c.reference(rg, rx);
    assert.equal(rg.nodes.length, 1, `${op} case "${c.name}": its reference builds exactly one node`);
    forwardNames = outIdx.map((k) => rg.nodes[0].outputs[k]);
    for (const o of forwardNames) rg.output(o);
    forwardBytes = toModelBytes(rg);
  } else {
    for (const o of forwardNames) g.output(o);
    forwardBytes = toModelBytes(g);
    g.outputs.length = 0;
  }
  const cotangents = outIdx.map((k, j) => ({
    name: node.outputs[k],
    forward: forwardNames[j],
    dy: `dy.${k}`,
    shape: g.shape(node.outputs[k]) as number[],
  }));

  const recomputeNodes = new Set<Node>();
  if (remat) {
    const register = (value: string, make: () => string) =>
      g.recompute.set(value, () => {
        const before = g.nodes.length;
        const v = make();
        g.nodes.slice(before).forEach((n) => recomputeNodes.add(n));
        return v;
      });
    for (const name of Object.keys(c.inputs)) register(name, () => g.identity(name, 'recomputed'));
    node.outputs.forEach((o, k) =>
      register(
        o,
        () =>
          g.node(
            node.op,
            node.inputs,
            node.outputs.map((v) => ({ prefix: 'recomputed', ...g.info(v), name: undefined })),
            node.attrs,
          )[k],
      ),
    );
  }

  const dy = node.outputs.map(() => undefined as string | undefined);
  for (const o of cotangents) dy[node.outputs.indexOf(o.name)] = g.input(o.dy, 'float32', o.shape);
  const before = g.nodes.length;
  const grads = differentiateNode(g, node, dy, (i) => node.inputs[i] in c.inputs);
  if (remat) {
    for (const n of g.nodes.slice(before)) {
      if (recomputeNodes.has(n)) continue;
      const held = n.inputs.filter((v) => g.recompute.has(v));
      assert.deepEqual(
        held,
        [],
        `${op} rule: its ${n.op} node reads ${held.join(', ')} from the forward pass instead of the recomputed copy`,
      );
    }
  }
  node.inputs.forEach((input, i) => {
    if (!(input in c.inputs)) return;
    assert.ok(grads[i] !== undefined, `${op} rule returns a gradient for input ${i}`);
    g.node('Identity', [grads[i]], [{ name: `grad.${input}`, type: 'float32', shape: g.shape(input) }]);
    g.output(`grad.${input}`);
  });
  return { forwardBytes, backwardBytes: toModelBytes(g), cotangents };
}

/**
 * Chain rules (`CHAIN_DERIVATIVES`): each against its nodes' own rules composed, on the same graph, built with and
 * without the chain registered — the per-op rules are checked against central differences above.
 */
interface ChainCase {
  inputs: Record<string, number[]>;
  /** Builds the chain, registers it in `g.chains` when `asChain`, and returns its output. */
  build: (g: Graph, x: Record<string, string>, asChain: boolean) => string;
}

const CHAIN_CASES: Record<keyof typeof CHAIN_DERIVATIVES, ChainCase> = {
  SoftmaxDropout: {
    inputs: { s: [2, 3, 5] },
    build: (g, x, asChain) => {
      const rng = createRng(0xd20);
      const keep = Float32Array.from({ length: 30 }, () => (rng.next() < 0.3 ? 0 : 1 / 0.7));
      const mask = g.initializer('mask', 'float32', [2, 3, 5], keep);
      const p = g.softmax(x.s, -1);
      const y = g.mul(p, mask);
      if (asChain) g.chains.set(y, { rule: 'SoftmaxDropout', input: x.s, inner: [p], reads: { p, y } });
      return y;
    },
  },
};

test('every chain rule has a case, and equals its nodes’ rules composed', async () => {
  assert.deepEqual(Object.keys(CHAIN_CASES).sort(), Object.keys(CHAIN_DERIVATIVES).sort());
  for (const [rule, c] of Object.entries(CHAIN_CASES)) {
    const rng = createRng(0xc4a1);
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, shape] of Object.entries(c.inputs))
      feeds[name] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: size(shape) }, () => 4 * rng.next() - 2),
        shape,
      );
    const grads: Float32Array[][] = [];
    const nodeCounts: number[] = [];
    for (const asChain of [false, true]) {
      const g = new Graph();
      const x: Record<string, string> = {};
      for (const [name, shape] of Object.entries(c.inputs)) x[name] = g.input(name, 'float32', shape);
      const y = c.build(g, x, asChain);
      const wr = createRng(0x3e1);
      const w = g.initializer(
        'w',
        'float32',
        g.shape(y) as number[],
        Float32Array.from({ length: size(g.shape(y) as number[]) }, () => 2 * wr.next() - 1),
      );
      const loss = g.reduceSum(
        g.mul(y, w),
        g.shape(y).map((_, i) => i),
        false,
      );
      const before = g.nodes.length;
      const names = Object.keys(c.inputs);
      buildBackward(g, loss, names).forEach((d, i) => {
        g.node('Identity', [d], [{ name: `grad.${names[i]}`, type: 'float32', shape: g.shape(names[i]) }]);
        g.output(`grad.${names[i]}`);
      });
      nodeCounts.push(g.nodes.length - before);
      const session = await ort.InferenceSession.create(toModelBytes(g), SESSION);
      const out = await session.run(feeds);
      grads.push(names.map((n) => out[`grad.${n}`].data as Float32Array));
      await session.release();
    }
    grads[0].forEach((composed, i) => {
      const err = relativeError(grads[1][i], Float64Array.from(composed));
      assert.ok(err < 1e-6, `${rule}: relative error ${err.toExponential(2)} against the composed rules`);
    });
    assert.ok(nodeCounts[1] < nodeCounts[0], `${rule}: ${nodeCounts[1]} backward nodes, not fewer than the ${nodeCounts[0]} composed`);
  }
});

test('a chain whose inner value is read outside it is refused', () => {
  const g = new Graph();
  const s = g.input('s', 'float32', [2, 3]);
  const p = g.softmax(s, -1);
  const y = g.mul(p, g.constF(2));
  g.chains.set(y, { rule: 'SoftmaxDropout', input: s, inner: [p], reads: { p, y } });
  const loss = g.reduceSum(g.add(y, p), [0, 1], false);
  assert.throws(() => buildBackward(g, loss, [s]), /inside the chain .* is read outside it \(2 readers\)/);
});
