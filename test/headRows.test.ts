/**
 * The last layer computed for the <s> rows only (the head reads only <s>; keys and values still over every
 * token): the same logits, loss and gradients as the full last layer, with and without padding and dropout off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadBackbone } from '../src/engine/models/backbone';
import { compileInference, compileTraining, gradOutputName, OUTPUT_LOGITS, OUTPUT_LOSS } from '../src/engine/runtime/compile';
import { GraphSession } from '../src/engine/runtime/session';
import { graphOptions } from '../src/engine/training/trainer';
import { BenchModel } from '../src/lab/bench/measure';
import { padBatch } from '../src/engine/data/batching';
import { methodSpec } from '../src/engine/methods';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
  let diff = 0,
    scale = 1e-30;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  assert.ok(diff / scale <= 1e-5, `${what}: max relative difference ${diff / scale}`);
};

for (const method of [methodSpec('spartan'), methodSpec('houlsby', { trainLayerNorms: true })]) {
  test(`${method.name}: <s>-only last layer = full last layer (logits, loss, every gradient)`, async () => {
    const backbone = await loadBackbone('synthetic:tiny');
    const model = new BenchModel(backbone, method, 3, 2);
    const lengths = [9, 5, 12, 7];
    const batch = padBatch(
      lengths.map((n, b) => ({
        ids: Array.from({ length: n }, (_, t) => (t === 0 ? 0 : t === n - 1 ? 2 : 4 + ((t * 7 + b) % 50))),
        label: b % 3,
        line: b + 1,
      })),
      backbone.config.padTokenId,
    );
    const inf = graphOptions(backbone, method, 'classification', 3);
    const tr = { ...inf, training: true };
    const run = async (graph: ReturnType<typeof compileInference>) => {
      const s = await GraphSession.create(graph, { threads: 1 });
      const out = await s.run(model.params, batch, 'classification', 3);
      await s.release();
      return out;
    };
    assert.notEqual(
      compileInference(inf).bytes.length,
      compileInference({ ...inf, headRowsOnly: false }).bytes.length,
      'two different graphs',
    );
    const [fast, full] = [await run(compileInference(inf)), await run(compileInference({ ...inf, headRowsOnly: false }))];
    close(fast[OUTPUT_LOGITS].data as Float32Array, full[OUTPUT_LOGITS].data as Float32Array, 'inference logits');
    const [tFast, tFull] = [
      await run(compileTraining(tr, model.names)),
      await run(compileTraining({ ...tr, headRowsOnly: false }, model.names)),
    ];
    close(tFast[OUTPUT_LOSS].data as Float32Array, tFull[OUTPUT_LOSS].data as Float32Array, 'loss');
    for (const n of model.names) close(tFast[gradOutputName(n)].data as Float32Array, tFull[gradOutputName(n)].data as Float32Array, n);
  });
}
