/**
 * onnx/foldScales.ts: a multiplication by a scalar constant that only a Gemm reads becomes that Gemm's alpha, with
 * the same outputs; one read elsewhere, or one that broadcasts, stays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Graph } from '../src/engine/onnx/graph';
import { foldScalarMulsIntoGemms } from '../src/engine/onnx/foldScales';
import { toModelBytes } from '../src/engine/onnx/serialize';
import { createRng } from '../src/engine/util/random';

const rng = createRng(0xf01d);
const draw = (n: number) => Float32Array.from({ length: n }, () => 2 * rng.next() - 1);
const A = draw(12),
  B = draw(20),
  C = draw(5);

/** y = Gemm(0.5·a, b, c) with alpha 3 and transB, and, with `alsoMul`, the product 0.5·a as a second output. */
function build(alsoMul: boolean): { g: Graph; outputs: string[] } {
  const g = new Graph();
  const a = g.input('a', 'float32', [3, 4]);
  const scaled = g.mul(a, g.constF(0.5));
  const y = g.gemm(scaled, g.initializer('b', 'float32', [5, 4], B), g.initializer('c', 'float32', [5], C), { transB: true, alpha: 3 });
  const outputs = alsoMul ? [y, g.identity(scaled)] : [y];
  return { g, outputs };
}

async function run(g: Graph, outputs: string[]): Promise<Float32Array[]> {
  for (const o of outputs) g.output(o);
  const session = await ort.InferenceSession.create(toModelBytes(g), { graphOptimizationLevel: 'disabled' });
  const out = await session.run({ a: new ort.Tensor('float32', A, [3, 4]) });
  await session.release();
  return outputs.map((o) => out[o].data as Float32Array);
}

test('a scalar Mul read only by a Gemm becomes its alpha, with the same output', async () => {
  const before = build(false);
  const [expected] = await run(before.g, before.outputs);
  const after = build(false);
  assert.equal(foldScalarMulsIntoGemms(after.g), 1);
  const gemm = after.g.nodes.find((n) => n.op === 'Gemm')!;
  assert.deepEqual(gemm.attrs.alpha, { float: 1.5 });
  assert.equal(gemm.inputs[0], 'a');
  assert.ok(!after.g.nodes.some((n) => n.op === 'Mul'));
  const [got] = await run(after.g, after.outputs);
  got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `element ${i}: ${v} vs ${expected[i]}`));
});

test('a Mul read elsewhere too, one before `from`, or a broadcasting one is left alone', () => {
  const shared = build(true);
  assert.equal(foldScalarMulsIntoGemms(shared.g), 0);
  const early = build(false);
  assert.equal(foldScalarMulsIntoGemms(early.g, { from: 1 }), 0, 'the Mul is node 0, outside the region');
  const outside = build(false);
  assert.equal(foldScalarMulsIntoGemms(outside.g, { alsoRead: [outside.g.nodes[0].outputs[0]] }), 0);

  const g = new Graph();
  const s = g.input('s', 'float32', [1]);
  const widened = g.mul(s, g.constF([2], [1, 1]));
  g.gemm(widened, g.initializer('b', 'float32', [1, 3], draw(3)), undefined);
  assert.equal(foldScalarMulsIntoGemms(g), 0);
});

test('the folded scalar constant goes when nothing else reads it, and stays when something does', () => {
  const alone = build(false);
  const scalar = alone.g.nodes[0].inputs[1];
  foldScalarMulsIntoGemms(alone.g);
  assert.ok(!alone.g.constants.some((c) => c.name === scalar), 'the unread 0.5 is removed');
  assert.notEqual(alone.g.constF(0.5), scalar, 'and a new 0.5 is a new constant, not the removed one');

  const shared = build(false);
  const half = shared.g.nodes[0].inputs[1];
  shared.g.add(shared.g.nodes[0].inputs[0], half);
  foldScalarMulsIntoGemms(shared.g);
  assert.ok(
    shared.g.constants.some((c) => c.name === half),
    'the 0.5 an Add still reads stays',
  );
});
