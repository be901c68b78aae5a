/** Dropout keep-masks: Bernoulli(1 − p) pool windows, seeded; training graphs take them as inputs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DropoutMaskPool } from '../src/engine/runtime/dropoutMasks';
import { loadBackbone } from '../src/engine/models/backbone';
import { compileTraining, gradOutputName, OUTPUT_LOSS } from '../src/engine/runtime/compile';
import { GraphSession } from '../src/engine/runtime/session';
import { graphOptions } from '../src/engine/training/trainer';
import { BenchModel, syntheticBatch } from '../src/lab/bench/measure';
import { methodSpec } from '../src/engine/methods';

test('mask pool: keep rate 1 − p, kept elements scaled by 1/(1 − p), requested length, same seed same masks', () => {
  const a = new DropoutMaskPool(0.1, 7),
    b = new DropoutMaskPool(0.1, 7),
    c = new DropoutMaskPool(0.1, 8);
  const m = a.take(1_000_000);
  assert.equal(m.length, 1_000_000);
  const scale = Math.fround(1 / 0.9);
  assert.ok(
    m.every((v) => v === 0 || v === scale),
    'every element is 0 or fl(1/(1 − p))',
  );
  const kept = m.reduce((s, v) => s + (v > 0 ? 1 : 0), 0) / m.length;
  assert.ok(Math.abs(kept - 0.9) < 0.003, `keep rate ${kept}`);
  assert.deepEqual(b.take(1_000_000), m);
  assert.notDeepEqual(c.take(1_000_000).subarray(0, 1000), m.subarray(0, 1000));
  assert.equal(a.take(5_000_000).length, 5_000_000, 'the pool grows for large masks');
});

test('training graph with dropout: masks are inputs, the loss changes between steps, p = 0 has none', async () => {
  const backbone = await loadBackbone('synthetic:tiny');
  const model = new BenchModel(backbone, methodSpec('spartan'));
  const opts = { ...graphOptions(backbone, model.method, 'classification', 2, 0.3), training: true };
  const graph = compileTraining(opts, model.names);
  assert.ok(graph.maskInputs.length >= 3 * backbone.config.numLayers, `${graph.maskInputs.length} masks`);
  assert.equal(compileTraining({ ...opts, dropout: 0 }, model.names).maskInputs.length, 0);
  const session = await GraphSession.create(graph, { threads: 1 }, 1);
  const batch = syntheticBatch(backbone.config, 4, 12, 2);
  const losses = new Set<number>();
  for (let i = 0; i < 3; i++) losses.add((await session.run(model.params, batch, 'classification', 2))[OUTPUT_LOSS].data[0] as number);
  assert.equal(losses.size, 3, 'different masks on every step');
  await session.release();
});

test('training graph with dropout: gradients = central differences of the loss under the same keep-masks', async () => {
  // The attention probabilities' chain rule (derivatives.ts SoftmaxDropout) and the scalars folded into the
  // input-gradient Gemms (onnx/foldScales.ts) change the backward graph only where dropout is on: checked here
  // end to end. A fresh session with the same seed draws the same masks for its first run.
  const backbone = await loadBackbone('synthetic:tiny');
  // Sharper attention than the random tiny model's near-uniform one (query and key weights × 8), so that the
  // gradient through the attention scores is a visible part of every checked gradient.
  for (const [name, t] of backbone.weights) if (/attention\.self\.(query|key)\.weight$/.test(name)) t.data.set(t.data.map((w) => 8 * w));
  const model = new BenchModel(backbone, methodSpec('spartan'));
  const graph = compileTraining({ ...graphOptions(backbone, model.method, 'classification', 2, 0.3), training: true }, model.names);
  const batch = syntheticBatch(backbone.config, 3, 10, 2);
  const run = async () => {
    const session = await GraphSession.create(graph, { threads: 1 }, 11);
    const out = await session.run(model.params, batch, 'classification', 2);
    await session.release();
    return out;
  };
  const base = await run();
  // Layer 0's and the embeddings' tensors, whose gradients pass through every layer's attention; not the parent
  // scores' weights, whose top-K choice makes the loss piecewise (a step of ε may change the routing).
  const checked = [
    ...model.names.filter((n) => (n.includes('layer.0.') || n.includes('embeddings.LayerNorm')) && !n.includes('experts')),
    model.names.at(-1)!,
  ];
  // Per element, the two largest of each tensor's gradient, where at least 1e-3: the loss's float32 resolution
  // puts central differences about 1e-5 off (ulp 6e-8 / 2ε). A directional derivative would hide an error
  // orthogonal to its direction.
  let elements = 0;
  for (const name of checked) {
    const t = model.params.get(name)!;
    const grad = base[gradOutputName(name)].data as Float32Array;
    const largest = [...grad.keys()].sort((i, j) => Math.abs(grad[j]) - Math.abs(grad[i])).slice(0, 2);
    for (const i of largest.filter((k) => Math.abs(grad[k]) >= 1e-3)) {
      elements++;
      const eps = 3e-3;
      const original = t.data[i];
      const lossAt = async (x: number) => {
        t.data[i] = x;
        return (await run())[OUTPUT_LOSS].data[0] as number;
      };
      const numeric = ((await lossAt(original + eps)) - (await lossAt(original - eps))) / (2 * eps);
      t.data[i] = original;
      const err = Math.abs(numeric - grad[i]) / Math.abs(grad[i]);
      assert.ok(err < 5e-3, `${name}[${i}]: gradient ${grad[i].toExponential(3)}, central differences ${numeric.toExponential(3)}`);
    }
  }
  assert.ok(elements >= 10, `only ${elements} elements with a gradient of at least 1e-3`);
});
