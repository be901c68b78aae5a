/**
 * Micro-batches: the engine cuts a batch into runs of at most N padded tokens; the summed gradients equal the
 * full batch's gradient and a row's logits do not depend on the micro-batch it ran in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  INFERENCE_MICRO_BATCH_TOKENS,
  INT8_TRAINING_MICRO_BATCH_TOKENS,
  MICRO_BATCH_TOKENS,
  splitMicroBatches,
} from '../src/engine/data/microBatches';
import { accumulatedStep } from '../src/engine/training/microBatch';
import { loadBackbone } from '../src/engine/models/backbone';
import { compileInference, compileTraining } from '../src/engine/runtime/compile';
import { GraphSession } from '../src/engine/runtime/session';
import { predictLogits } from '../src/engine/runtime/predict';
import { graphOptions } from '../src/engine/training/trainer';
import { BenchModel } from '../src/lab/bench/measure';
import { methodSpec } from '../src/engine/methods';
import { EncodedExample } from '../src/engine/data/batching';
import { createRng } from '../src/engine/util/random';

const row = (n: number, label = 0, line = 1): EncodedExample => ({
  ids: Array.from({ length: n }, (_, t) => (t === 0 ? 0 : t === n - 1 ? 2 : 5 + t)),
  label,
  line,
});

test('splitMicroBatches: longest first, at most maxTokens padded tokens each (at least one row), every row once', () => {
  const rows = [row(5, 0, 1), row(9, 0, 2), row(3, 0, 3), row(9, 0, 4), row(4, 0, 5), row(20, 0, 6)];
  const parts = splitMicroBatches(rows, 18);
  assert.deepEqual(
    parts.map((p) => p.map((e) => e.line)),
    [[6], [2, 4], [1, 5, 3]],
  );
  for (const p of parts) assert.ok(p.length === 1 || p.length * Math.max(...p.map((e) => e.ids.length)) <= 18);
  assert.deepEqual(splitMicroBatches(rows, 0), [rows], '0 turns micro-batching off');
  assert.deepEqual(splitMicroBatches([], 16), []);
});

/** Rows of mixed lengths, so micro-batches are padded differently from the full batch. */
function mixedRows(n: number, vocab: number, seed: number): EncodedExample[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, b) => {
    const len = 4 + Math.floor(rng.next() * 12);
    const ids = Array.from({ length: len }, () => 3 + Math.floor(rng.next() * (vocab - 3)));
    ids[0] = 0;
    ids[len - 1] = 2;
    return { ids, label: b % 3, line: b + 1 };
  });
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0,
    scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

test('accumulated micro-batch gradients equal the full batch gradient (loss, every trained tensor, Σ g²)', async () => {
  const backbone = await loadBackbone('synthetic:tiny');
  const model = new BenchModel(backbone, methodSpec('spartan'), 3, 5);
  const opts = { ...graphOptions(backbone, model.method, 'classification', 3, 0), training: true };
  const session = await GraphSession.create(compileTraining(opts, model.names), { threads: 1 });
  const rows = mixedRows(11, backbone.config.vocabSize, 9);
  const step = (maxTokens: number) =>
    accumulatedStep(session, model.params, rows, model.names, {
      padId: backbone.config.padTokenId,
      task: 'classification',
      numLabels: 3,
      maxTokens,
    });
  const full = await step(0);
  const micro = await step(30);
  assert.equal(full.microBatches, 1);
  assert.ok(micro.microBatches >= 4, `${micro.microBatches} micro-batches`);
  assert.ok(Math.abs(micro.loss - full.loss) <= 1e-6 * Math.abs(full.loss), `loss ${micro.loss} vs ${full.loss}`);
  for (const n of model.names) {
    const d = maxRelDiff(micro.grads.get(n)!, full.grads.get(n)!);
    assert.ok(d <= 1e-5, `${n}: max relative difference ${d}`);
  }
  // Σ g² for clipping: the graph's own (one run) and the one summed as micro-batches are added both equal the
  // squares of the returned gradients.
  for (const r of [full, micro]) {
    let sq = 0;
    for (const g of r.grads.values()) for (const v of g) sq += v * v;
    assert.ok(sq > 0 && Math.abs(r.gradSquares - sq) <= 1e-5 * sq, `gradSquares ${r.gradSquares} vs Σ g² ${sq} (${r.microBatches} runs)`);
  }
  // The check can fail: half the batch is not the batch.
  const half = await accumulatedStep(session, model.params, rows.slice(0, 6), model.names, {
    padId: backbone.config.padTokenId,
    task: 'classification',
    numLabels: 3,
    maxTokens: 0,
  });
  assert.ok(maxRelDiff(half.grads.get(model.names[0])!, full.grads.get(model.names[0])!) > 1e-3);
  await session.release();
});

test('predictLogits: the same logits for every row with and without micro-batches', async () => {
  const backbone = await loadBackbone('synthetic:tiny');
  const model = new BenchModel(backbone, methodSpec('spartan'), 3, 5);
  const session = await GraphSession.create(compileInference(graphOptions(backbone, model.method, 'classification', 3)), { threads: 1 });
  const rows = mixedRows(13, backbone.config.vocabSize, 4);
  const run = (maxTokens: number) =>
    predictLogits(session, model.params, rows, {
      batchSize: 13,
      padId: backbone.config.padTokenId,
      task: 'classification',
      numLabels: 3,
      maxTokens,
    });
  const whole = await run(0),
    micro = await run(24);
  for (let i = 0; i < rows.length; i++)
    assert.ok(maxRelDiff(micro[i], whole[i]) <= 1e-5, `row ${i}: ${micro[i].join()} vs ${whole[i].join()}`);
  await session.release();
});

test('predictLogits: an inference session runs micro-batches of INFERENCE_MICRO_BATCH_TOKENS, a training session of MICRO_BATCH_TOKENS', async () => {
  // A stand-in session that records the padded size of each run and returns zero logits.
  const recorder = (gradientSwitch: string | undefined, int8 = false) => {
    const runs: number[] = [];
    const session = {
      graph: { gradientSwitch, int8 },
      run: async (_p: unknown, batch: { batch: number; seqLen: number }) => {
        runs.push(batch.batch * batch.seqLen);
        return { logits_out: { data: new Float32Array(batch.batch * 2) } };
      },
    } as unknown as GraphSession;
    return { runs, session };
  };
  const rows = Array.from({ length: 32 }, (_, i) => row(128, 0, i + 1));
  const opts = { batchSize: 32, padId: 1, task: 'classification' as const, numLabels: 2 };
  // Rows of 128 tokens: each run takes as many whole rows as fit, the last one what is left.
  const expectRuns = (runs: number[], maxTokens: number) => {
    const full = Math.floor(maxTokens / 128) * 128;
    assert.equal(runs.length, Math.ceil((32 * 128) / full), `runs of at most ${maxTokens} tokens: ${runs}`);
    assert.ok(runs.slice(0, -1).every((n) => n === full) && runs.at(-1)! <= full, `runs of at most ${maxTokens} tokens: ${runs}`);
  };
  const inference = recorder(undefined);
  await predictLogits(inference.session, new Map(), rows, opts);
  expectRuns(inference.runs, INFERENCE_MICRO_BATCH_TOKENS);
  const training = recorder('compute_gradients');
  await predictLogits(training.session, new Map(), rows, opts);
  expectRuns(training.runs, MICRO_BATCH_TOKENS);
  // An int8 training session evaluates at its own training size, as it trains (training/microBatch.ts).
  const int8Training = recorder('compute_gradients', true);
  await predictLogits(int8Training.session, new Map(), rows, opts);
  expectRuns(int8Training.runs, INT8_TRAINING_MICRO_BATCH_TOKENS);
  assert.notEqual(INFERENCE_MICRO_BATCH_TOKENS, MICRO_BATCH_TOKENS, 'the two sizes differ, so the test tells them apart');
});
