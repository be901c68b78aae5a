/** Dropout keep-masks: Bernoulli(1 − p) pool windows, seeded; training graphs take them as inputs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DropoutMaskPool } from '../src/engine/runtime/dropoutMasks';
import { loadBackbone } from '../src/engine/models/backbone';
import { compileTraining, OUTPUT_LOSS } from '../src/engine/runtime/compile';
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
