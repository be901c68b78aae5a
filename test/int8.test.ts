/**
 * The int8 backbone (`--quantize int8`, engine/models/quantize.ts): the quantiser, what the graphs contain, int8
 * logits and gradients next to float32 ones on a synthetic backbone, training with it, and the flag's way through
 * the CLI into a memory's metadata and back out of classify. Its gradient rule is checked in rules.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadBackbone, repoRoot } from '../src/engine/models/backbone';
import {
  dropInt8SourceWeights,
  INT8_LEVELS,
  int8WeightLevels,
  int8LinearPrefixes,
  quantizeAndDropSources,
  quantizeForInputGradient,
  quantizeForward,
  scaledBy,
} from '../src/engine/models/quantize';
import { compileInference, compileTraining, gradOutputName, OUTPUT_LOGITS, OUTPUT_LOSS } from '../src/engine/runtime/compile';
import { GraphSession } from '../src/engine/runtime/session';
import { Graph } from '../src/engine/onnx/graph';
import { differentiateNode } from '../src/engine/autodiff/backward';
import { toModelBytes } from '../src/engine/onnx/serialize';
import { graphOptions } from '../src/engine/training/trainer';
import { accumulatedStep } from '../src/engine/training/microBatch';
import { AdamW } from '../src/engine/training/optimizer';
import { BenchModel } from '../src/lab/bench/measure';
import { DEFAULT_GEOMETRY } from '../src/engine/methods/spartan';
import { EncodedExample, padBatch } from '../src/engine/data/batching';
import { MethodSpec } from '../src/engine/methods';
import { readSafetensors } from '../src/engine/io/safetensors';
import { createRng } from '../src/engine/util/random';
import { loadTokenizer } from '../src/engine/tokenizers/robertaTokenizer';

const SPARTAN: MethodSpec = { name: 'spartan', geometry: DEFAULT_GEOMETRY, trainLayerNorms: true };

test('quantiser: symmetric per channel, within half a step, in the layouts DynamicQuantizeMatMul takes', () => {
  const rng = createRng(3);
  const [out, inp] = [5, 7];
  const w = Float32Array.from({ length: out * inp }, () => 2 * rng.next() - 1);
  w[2 * inp + 3] = 0; // a zero stays zero
  for (let k = 0; k < inp; k++) w[4 * inp + k] = 0; // an all-zero channel is allowed
  for (const levels of [127, 63]) {
    const f = scaledBy(quantizeForward(w, out, inp, levels), 0.5);
    assert.deepEqual([f.rows, f.cols, f.scale.length], [inp, out, out]);
    const t = quantizeForInputGradient(w, out, inp, levels);
    assert.deepEqual([t.rows, t.cols, t.scale.length], [out, inp, inp]);
    for (let n = 0; n < out; n++) {
      let max = 0;
      for (let k = 0; k < inp; k++) max = Math.max(max, Math.abs(w[n * inp + k]));
      for (let k = 0; k < inp; k++) {
        const q = f.data[k * out + n];
        assert.ok(Math.abs(q) <= levels);
        // f folds alpha = 0.5 into its scales: q·scale/0.5 is the dequantised weight.
        assert.ok(Math.abs((q * f.scale[n]) / 0.5 - w[n * inp + k]) <= max / levels / 2 + 1e-7, `forward [${n}, ${k}]`);
        const qt = t.data[n * inp + k];
        assert.ok(Math.abs(qt) <= levels);
        assert.ok(Math.abs(qt * t.scale[k] - w[n * inp + k]) <= t.scale[k] / 2 + 1e-7, `transposed [${n}, ${k}]`);
      }
      if (max > 0) assert.equal(Math.max(...Array.from({ length: inp }, (_, k) => Math.abs(f.data[k * out + n]))), levels);
    }
    assert.equal(f.data[3 * out + 2], 0);
  }
});

test('kernel: the weight range chosen for this CPU never saturates MLAS u8×s8 (its worst case is exact)', async () => {
  // The worst case of vpmaddubsw's int16 pair sums: every activation at the top of its uint8 range (a = 1 with the
  // range [0, 1] quantises to 255) against weights all at +levels. With levels = 127 on a CPU without VNNI, a pair
  // sums to 64770 and saturates at 32767: about half the true value.
  const [K, N] = [64, 4];
  const levels = int8WeightLevels();
  const g = new Graph();
  const a = g.input('a', 'float32', [2, K]);
  const w = g.initializer('w', 'int8', [K, N], new Int8Array(K * N).fill(levels));
  const scale = g.initializer('w.scale', 'float32', [N], new Float32Array(N).fill(1 / levels));
  g.output(g.dynamicQuantizeMatMul(a, w, scale));
  const session = await ort.InferenceSession.create(toModelBytes(g), { intraOpNumThreads: 1 });
  const input = new Float32Array(2 * K).fill(1);
  input.fill(0, K); // the second row is 0: the range is [0, 1]
  const y = (await session.run({ a: new ort.Tensor('float32', input, [2, K]) }))[g.outputs[0].name].data as Float32Array;
  await session.release();
  // Row 0: Σ_k 1·(levels·1/levels) = K, up to the activation's own rounding (exact here: 1 is the top of the range).
  for (let n = 0; n < N; n++) assert.ok(Math.abs(y[n] - K) < 1e-3, `y[0, ${n}] = ${y[n]}, expected ${K} (saturated?)`);
  for (let n = 0; n < N; n++) assert.equal(y[N + n], 0);
  assert.ok(levels === INT8_LEVELS || levels === 63);
});

test('graphs: float32 ones have no int8 op; int8 ones run the six frozen linears of every layer as prepacked int8', async () => {
  const backbone = await loadBackbone('synthetic:tiny');
  const fp32 = graphOptions(backbone, SPARTAN, 'classification', 2);
  const int8 = graphOptions(backbone, SPARTAN, 'classification', 2, 0, 'int8');
  const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');
  assert.ok(!text(compileInference(fp32).bytes).includes('com.microsoft'), 'float32: no contrib domain');
  const inf = compileInference(int8);
  const count = text(inf.bytes).split('DynamicQuantizeMatMul').length - 1;
  // Each node names its op twice (its name and op_type).
  assert.equal(count, 2 * 6 * backbone.config.numLayers, 'one DynamicQuantizeMatMul per frozen linear');
  const linears = Array.from({ length: backbone.config.numLayers }, (_, i) => int8LinearPrefixes(i)).flat();
  for (const p of linears) {
    assert.ok(!inf.parameterInputs.includes(`${p}.weight`), `${p}.weight is an int8 initializer, not an input`);
    assert.ok(inf.parameterInputs.includes(`${p}.bias`), `${p}.bias stays a float32 input`);
  }
  const model = new BenchModel(backbone, SPARTAN);
  const tr = compileTraining({ ...int8, training: true }, model.names);
  assert.ok(text(tr.bytes).includes('.weight_t.'), 'training: transposed int8 copies for the input gradients');
  // Once the sessions hold their int8 copies, an owner may drop the float32 ones; a later int8 build then says why it fails.
  const weights = new Map(backbone.weights);
  assert.equal(dropInt8SourceWeights(backbone.config, weights), linears.length * 64 * 64 + 2 * backbone.config.numLayers * 64 * 64);
  assert.ok(weights.has('roberta.embeddings.word_embeddings.weight') && !weights.has(`${linears[0]}.weight`));
  assert.throws(() => compileInference({ ...int8, int8: { ...int8.int8!, weights } }), /no weights for the int8 linear/);
  // A method that trains the linears cannot run them frozen in int8.
  const full: MethodSpec = { name: 'full', geometry: DEFAULT_GEOMETRY, trainLayerNorms: true };
  const fullNames = new BenchModel(backbone, full).names;
  assert.throws(
    () => compileTraining({ ...graphOptions(backbone, full, 'classification', 2, 0, 'int8'), training: true }, fullNames),
    /train it in float32/,
  );
});

test('int8 copies made up front, float32 sources dropped: the same graphs, byte for byte, as quantising on the fly', async () => {
  const backbone = await loadBackbone('synthetic:tiny');
  const names = new BenchModel(backbone, SPARTAN).names;
  const onTheFly = graphOptions(backbone, SPARTAN, 'classification', 2, 0.1, 'int8');
  const weights = new Map(backbone.weights);
  const params = new Map(weights);
  const early = graphOptions({ ...backbone, weights }, SPARTAN, 'classification', 2, 0.1, 'int8');
  early.int8!.copies = quantizeAndDropSources(backbone.config, early.int8!.levels, true, weights, params);
  const linear = `${int8LinearPrefixes(0)[0]}.weight`;
  assert.ok(!weights.has(linear) && !params.has(linear), 'the float32 sources are gone from every map');
  assert.equal(early.int8!.copies.size, 6 * backbone.config.numLayers);
  assert.deepEqual(compileInference(early).bytes, compileInference(onTheFly).bytes, 'inference graph');
  const train = (o: typeof early) => compileTraining({ ...o, training: true }, names).bytes;
  assert.deepEqual(train(early), train(onTheFly), 'training graph, with the input-gradient copies');
  // Copies made for inference only cannot serve a training graph once the sources are gone: it says so.
  const inferenceOnly = graphOptions({ ...backbone, weights: new Map(backbone.weights) }, SPARTAN, 'classification', 2, 0.1, 'int8');
  inferenceOnly.int8!.copies = quantizeAndDropSources(backbone.config, inferenceOnly.int8!.levels, false, inferenceOnly.int8!.weights);
  assert.throws(() => train(inferenceOnly), /no input-gradient int8 copy/);
});

/** Rows of a padded batch: <s>, tokens, </s>. */
function rows(n: number, seed: number, label: (b: number) => number): EncodedExample[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, b) => {
    const len = 6 + Math.floor(rng.next() * 10);
    const ids = Array.from({ length: len }, (_, t) => (t === 0 ? 0 : t === len - 1 ? 2 : 4 + Math.floor(rng.next() * 200)));
    return { ids, label: label(b), line: b + 1 };
  });
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));
const diffNorm = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v, i) => s + (v - b[i]) ** 2, 0));

test('int8 logits are close to float32 logits (synthetic tiny backbone, padded batch)', async (t) => {
  const backbone = await loadBackbone('synthetic:tiny');
  const model = new BenchModel(backbone, SPARTAN, 3, 1);
  // A head with larger weights than its N(0, 0.02) start, so the logits spread like a trained head's.
  for (const [name, t] of model.trained)
    if (name.startsWith('classifier.') && name.endsWith('weight')) t.data.forEach((v, i) => (t.data[i] = v * 25));
  const batch = padBatch(
    rows(16, 5, (b) => b % 3),
    backbone.config.padTokenId,
  );
  const logits = async (quantize: 'none' | 'int8') => {
    const s = await GraphSession.create(compileInference(graphOptions(backbone, SPARTAN, 'classification', 3, 0, quantize)), {
      threads: 1,
    });
    const out = (await s.run(model.params, batch, 'classification', 3))[OUTPUT_LOGITS].data as Float32Array;
    await s.release();
    return Float32Array.from(out);
  };
  const [fp32, int8] = [await logits('none'), await logits('int8')];
  const rel = diffNorm(int8, fp32) / norm(fp32);
  t.diagnostic(`‖int8 − fp32‖ / ‖fp32‖ = ${rel.toExponential(2)}, weights in ±${int8WeightLevels()}`);
  assert.ok(rel > 0, 'the int8 path ran (its logits are not the float32 ones)');
  // Each int8 linear rounds its weights (half a step of max|W|/127 per output channel) and its input
  // (half a step of the range/255), about 1 % of its output; the residual stream and the LayerNorms dilute that to
  // ≈ 5e-4 of the logits' norm on this backbone (the diagnostic line). 1e-2 leaves room for other CPUs' rounding and
  // fails a wrong scale, layout or transposition, which is off by O(1).
  assert.ok(rel < 1e-2, `‖int8 − fp32‖ / ‖fp32‖ = ${rel.toExponential(2)}`);
});

test('int8 training: gradients point where float32 ones do, and a few steps reduce the loss like float32', async (t) => {
  // The embedded backbone (pretrained, 4 layers), on a sentiment batch it can learn in a few steps.
  const backbone = await loadBackbone(path.join(repoRoot(), 'models', 'roberta-mini'));
  const tokenizer = loadTokenizer(backbone.tokenizerDir);
  const words = [
    ['awful', 'hated', 'boring', 'terrible', 'dull', 'bad'],
    ['great', 'loved', 'superb', 'wonderful', 'fun', 'good'],
  ];
  const examples: EncodedExample[] = Array.from({ length: 12 }, (_, b) => ({
    ids: Array.from(tokenizer.encode(`a ${words[b % 2][Math.floor(b / 2)]} film, really ${words[b % 2][(b + 3) % 6]}`, undefined, 32).ids),
    label: b % 2,
    line: b + 1,
  }));
  const opts = { padId: backbone.config.padTokenId, task: 'classification' as const, numLabels: 2 };
  const runs: Record<string, number[]> = {};
  const first: Record<string, Map<string, Float32Array>> = {};
  for (const quantize of ['none', 'int8'] as const) {
    const model = new BenchModel(backbone, SPARTAN, 2, 4);
    const session = await model.trainingSession(1, 0, quantize);
    const adam = new AdamW({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, noDecay: () => true });
    runs[quantize] = [];
    for (let step = 0; step < 12; step++) {
      const { loss, grads } = await accumulatedStep(session, model.params, examples, model.names, opts);
      if (step === 0) first[quantize] = new Map([...grads].map(([k, v]) => [k, Float32Array.from(v)]));
      runs[quantize].push(loss);
      adam.step(model.trained, grads, 1e-3);
    }
    await session.release();
  }
  // Cosine of the whole gradient (every trained tensor): the int8 forward and input gradients round, but the
  // direction must stay that of float32's (observed ≈ 0.999 on this backbone; a wrong transposed copy gives ~0).
  let dot = 0,
    a2 = 0,
    b2 = 0;
  for (const [name, g] of first.none) {
    const h = first.int8.get(name)!;
    for (let i = 0; i < g.length; i++) {
      dot += g[i] * h[i];
      a2 += g[i] * g[i];
      b2 += h[i] * h[i];
    }
  }
  const cosine = dot / Math.sqrt(a2 * b2);
  t.diagnostic(
    `gradient cosine ${cosine.toFixed(4)}; losses fp32 ${runs.none.map((v) => v.toFixed(3)).join(' ')}; int8 ${runs.int8.map((v) => v.toFixed(3)).join(' ')}`,
  );
  assert.ok(cosine > 0.98, `gradient cosine int8 vs float32: ${cosine.toFixed(4)}`);
  const [f, q] = [runs.none, runs.int8];
  const drop = f[0] - f[f.length - 1];
  assert.ok(drop > 0.1 * f[0], `float32 learns this batch: ${f.map((v) => v.toFixed(3)).join(' ')}`);
  assert.ok(
    q[0] - q[q.length - 1] > 0.75 * drop,
    `int8 loss drops like float32's: int8 ${q.map((v) => v.toFixed(3)).join(' ')}; fp32 ${f.map((v) => v.toFixed(3)).join(' ')}`,
  );
});

test('the int8 training graph gives loss and gradients for every trained tensor, in float32', async () => {
  const backbone = await loadBackbone('synthetic:tiny');
  const model = new BenchModel(backbone, SPARTAN, 2, 4);
  const s = await GraphSession.create(
    compileTraining({ ...graphOptions(backbone, SPARTAN, 'classification', 2, 0.1, 'int8'), training: true }, model.names),
    {
      threads: 1,
    },
  );
  const out = await s.run(
    model.params,
    padBatch(
      rows(4, 2, (b) => b % 2),
      backbone.config.padTokenId,
    ),
    'classification',
    2,
  );
  await s.release();
  assert.ok(Number.isFinite((out[OUTPUT_LOSS].data as Float32Array)[0]));
  for (const n of model.names) {
    const g = out[gradOutputName(n)];
    assert.equal(g.type, 'float32', n);
    assert.ok(Array.from(g.data as Float32Array).every(Number.isFinite), `${n}: finite`);
  }
  // The embeddings' LayerNorm sits below every int8 linear: its gradient went through all of their input gradients.
  assert.ok(norm(out[gradOutputName('roberta.embeddings.LayerNorm.weight')].data as Float32Array) > 0);
});

const ROOT = repoRoot();
function cli(args: string[]): { status: number; stderr: string; json: any } {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'main.ts'), ...args, '--threads', '1', '--json'],
    {
      encoding: 'utf8',
      cwd: ROOT,
    },
  );
  let json: any;
  try {
    json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    json = undefined;
  }
  return { status: r.status ?? -1, stderr: r.stderr, json };
}

test(
  'CLI: train --quantize int8 records it in the memory; classify and eval use it unless --quantize says otherwise',
  { timeout: 240_000 },
  () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-int8-'));
    try {
      const data = path.join(tmp, 'rows.jsonl');
      fs.writeFileSync(
        data,
        Array.from({ length: 16 }, (_, i) =>
          JSON.stringify({ text: `review ${i}: ${i % 2 ? 'great, loved it' : 'awful, hated it'}`, label: i % 2 ? 'pos' : 'neg' }),
        ).join('\n') + '\n',
      );
      const out = path.join(tmp, 'int8.safetensors');
      const t = cli(['train', '--data', data, '--out', out, '--steps', '2', '--batch-size', '8', '--quantize', 'int8']);
      assert.equal(t.status, 0, t.stderr);
      assert.equal(JSON.parse(readSafetensors(out).metadata.hyperparameters).quantize, 'int8');
      const c = cli(['classify', '--memory', out, '--text', 'loved it']);
      assert.equal(c.status, 0, c.stderr);
      assert.equal(c.json.quantize, 'int8', 'classify defaults to the memory’s precision');
      const c32 = cli(['classify', '--memory', out, '--text', 'loved it', '--quantize', 'none']);
      assert.equal(c32.status, 0, c32.stderr);
      assert.equal(c32.json.quantize, 'none', 'an explicit flag overrides it');
      assert.notDeepEqual(c32.json.probabilities, c.json.probabilities, 'and it computes in float32');
      const e = cli(['eval', '--memory', out, '--data', data, '--quantize', 'int8']);
      assert.equal(e.status, 0, e.stderr);
      const fp32 = path.join(tmp, 'fp32.safetensors');
      assert.equal(cli(['train', '--data', data, '--out', fp32, '--steps', '1', '--batch-size', '8']).status, 0);
      assert.equal(JSON.parse(readSafetensors(fp32).metadata.hyperparameters).quantize, 'none');
      const bad = cli(['train', '--data', data, '--out', path.join(tmp, 'x.safetensors'), '--steps', '1', '--quantize', 'int4']);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /int4/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  },
);

test('int8 input gradient: rows of very different size each keep their accuracy (dY scaled per row)', async () => {
  // dY rows 1, 1e-3 and 1e-6 times as large as the first: quantised per tensor alone, the small rows would be all
  // zero points (100 % error). The rule's da against the float32 product dY·W, row by row.
  const rng = createRng(0x5ca1e);
  const W = Float32Array.from({ length: 12 * 16 }, () => 2 * rng.next() - 1); // [out 12, in 16]
  const levels = int8WeightLevels();
  const g = new Graph();
  const a = g.input('a', 'float32', [3, 16]);
  const store = (name: string, q: ReturnType<typeof quantizeForward>) => ({
    weight: g.initializer(name, 'int8', [q.rows, q.cols], q.data),
    scale: g.initializer(`${name}.scale`, 'float32', [q.cols], q.scale),
  });
  const w = store('w.q', quantizeForward(W, 12, 16, levels));
  g.transposedInt8.set(w.weight, () => store('w.q_t', quantizeForInputGradient(W, 12, 16, levels)));
  g.dynamicQuantizeMatMul(a, w.weight, w.scale);
  const node = g.nodes[0];
  const dy = g.input('dy', 'float32', [3, 12]);
  const da = differentiateNode(g, node, [dy], (i) => i === 0)[0]!;
  g.output(da);
  const session = await ort.InferenceSession.create(toModelBytes(g));
  const rowScale = [1, 1e-3, 1e-6];
  const dyValues = Float32Array.from({ length: 36 }, (_, i) => (2 * rng.next() - 1) * rowScale[Math.floor(i / 12)]);
  const out = await session.run({
    a: new ort.Tensor('float32', new Float32Array(48), [3, 16]),
    dy: new ort.Tensor('float32', dyValues, [3, 12]),
  });
  const got = out[da].data as Float32Array;
  for (let r = 0; r < 3; r++) {
    let num = 0,
      den = 0;
    for (let k = 0; k < 16; k++) {
      let exact = 0;
      for (let n = 0; n < 12; n++) exact += dyValues[r * 12 + n] * W[n * 16 + k];
      num += (got[r * 16 + k] - exact) ** 2;
      den += exact ** 2;
    }
    const err = Math.sqrt(num / den);
    assert.ok(err < 3e-2, `row ${r} (dY × ${rowScale[r]}): relative error ${err.toExponential(2)}`);
  }
  await session.release();
});
