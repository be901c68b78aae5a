/**
 * runtime/sessionBuild.ts: a training graph whose input-gradient Gemms read prepacked twins of the frozen float32
 * linears gives the same loss and gradients as one that reads the inputs; inference graphs are unchanged; a build
 * keeps the float32 linears in float32 and never twins a trained one; large initializers travel as external data;
 * an owned inference build over a backbone directory reads the frozen linears from its model.safetensors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadBackbone } from '../src/engine/models/backbone';
import { compileInference, compileTraining, gradOutputName, OUTPUT_LOSS } from '../src/engine/runtime/compile';
import { GraphSession } from '../src/engine/runtime/session';
import { buildSessions } from '../src/engine/runtime/sessionBuild';
import { graphOptions, layerParams } from '../src/engine/training/trainer';
import { padBatch } from '../src/engine/data/batching';
import { initialTensors, methodSpec, trainableNames } from '../src/engine/methods';
import { createRng } from '../src/engine/util/random';
import { TensorMap } from '../src/engine/types';
import { onnx } from 'onnx-proto';

const initializers = (graph: { bytes: Uint8Array }) => onnx.ModelProto.decode(graph.bytes).graph!.initializer!.map((t) => t.name);

const LINEAR = 'roberta.encoder.layer.0.intermediate.dense.weight';

async function setUp(methodName: 'spartan' | 'full') {
  const backbone = await loadBackbone('synthetic:tiny');
  const method = methodSpec(methodName);
  const names = trainableNames(method, backbone.config, 3, backbone.weights.keys());
  const rng = createRng(3);
  const fresh = initialTensors(method, backbone.config, 3, () => rng.normal());
  const trained: TensorMap = new Map();
  for (const n of names) {
    const src = fresh.get(n) ?? backbone.weights.get(n)!;
    trained.set(n, { shape: [...src.shape], data: Float32Array.from(src.data) });
  }
  const params = layerParams(backbone, trained);
  const opts = graphOptions(backbone, method, 'classification', 3, 0);
  const batch = padBatch(
    [9, 5, 12].map((n, b) => ({
      ids: Array.from({ length: n }, (_, t) => (t === 0 ? 0 : t === n - 1 ? 2 : 4 + ((t * 5 + b) % 50))),
      label: b,
      line: b + 1,
    })),
    backbone.config.padTokenId,
  );
  return { backbone, names, params, opts, batch };
}

const maxRelative = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let diff = 0,
    scale = 1e-30;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
};

test('prepacked frozen linears: the same logits, loss and gradients as linears read as inputs', async () => {
  const { names, params, opts, batch } = await setUp('spartan');
  const frozen: TensorMap = new Map(
    [...params].filter(([n]) => /\.(query|key|value|dense)\.weight$/.test(n) && n.startsWith('roberta.encoder')),
  );
  const run = async (graph: ReturnType<typeof compileInference>) => {
    const s = await GraphSession.create(graph, { threads: 1 });
    const out = await s.run(params, batch, 'classification', 3);
    await s.release();
    return out;
  };
  const plainInf = compileInference(opts);
  const withMap = compileInference({ ...opts, prepacked: frozen });
  assert.deepEqual(withMap.bytes, plainInf.bytes, 'inference graphs have no input gradient to twin');
  assert.ok(plainInf.parameterInputs.includes(LINEAR));
  const tr = { ...opts, training: true };
  const graph = compileTraining({ ...tr, prepacked: frozen }, names);
  assert.ok(initializers(graph).includes(`${LINEAR}.for_input_gradient`), 'the twin is an initializer');
  assert.ok(graph.parameterInputs.includes(LINEAR), 'the forward Gemm still reads the input');
  const t0 = await run(compileTraining(tr, names)),
    t1 = await run(graph);
  assert.ok(maxRelative(t0[OUTPUT_LOSS].data as Float32Array, t1[OUTPUT_LOSS].data as Float32Array) <= 1e-6, 'loss');
  for (const n of names) {
    const r = maxRelative(t1[gradOutputName(n)].data as Float32Array, t0[gradOutputName(n)].data as Float32Array);
    assert.ok(r <= 1e-5, `${n}: relative difference ${r}`);
  }
  assert.throws(() => compileTraining({ ...tr, prepacked: new Map([[LINEAR, params.get(LINEAR)!]]) }, [...names, LINEAR]), /is trained/);
});

test('buildSessions: float32 linears stay in the maps; a trained linear gets no twin and keeps its gradient', async () => {
  const full = await setUp('full');
  assert.ok(full.names.includes(LINEAR), 'full fine-tuning trains the linears');
  const sessions = await buildSessions({
    config: full.backbone.config,
    quantize: 'none',
    params: full.params,
    sources: [full.backbone.weights],
    trainable: full.names,
    ownsBackbone: true,
    threads: 1,
    graphs: {
      inference: { compile: (frozen) => compileInference({ ...full.opts, ...frozen }) },
      training: { compile: (frozen) => compileTraining({ ...full.opts, ...frozen, training: true }, full.names), trainingSeed: 1 },
    },
  });
  assert.ok(full.params.has(LINEAR), 'a training build keeps the float32 linears');
  const out = await sessions.training!.run(full.params, full.batch, 'classification', 3);
  assert.ok(out[gradOutputName(LINEAR)], 'the trained linear still has its gradient');
  for (const s of Object.values(sessions)) await s.release();
});

test('serialize: initializers of 64 KiB and more travel as in-memory external data, with the same results', async () => {
  const { Graph } = await import('../src/engine/onnx/graph');
  const { toModelBytes, toModelWithExternalData } = await import('../src/engine/onnx/serialize');
  const ort = await import('onnxruntime-node');
  const rng = createRng(5);
  const w = new Float32Array(256 * 128);
  rng.fillNormal(w);
  const g = new Graph();
  const x = g.input('x', 'float32', [4, 256]);
  g.output(g.gemm(x, g.initializer('w', 'float32', [256, 128], w), g.initializer('b', 'float32', [128], new Float32Array(128).fill(0.5))));
  const external = toModelWithExternalData(g);
  assert.deepEqual(
    external.externalData.map((e) => [e.path, e.data.byteLength]),
    [['w', w.byteLength]],
    'w only: the bias is small',
  );
  assert.ok(external.bytes.length < 4096, `the graph bytes leave w out (${external.bytes.length} bytes)`);
  const xs = new Float32Array(4 * 256);
  rng.fillNormal(xs);
  const run = async (bytes: Uint8Array, externalData?: { path: string; data: Uint8Array }[]) => {
    const s = await ort.InferenceSession.create(bytes, externalData ? { externalData } : {});
    const out = await s.run({ x: new ort.Tensor('float32', xs, [4, 256]) });
    await s.release();
    return Object.values(out)[0].data as Float32Array;
  };
  assert.deepEqual(await run(external.bytes, external.externalData), await run(toModelBytes(g)));
});

/** synthetic:tiny written as a model directory and loaded back, as a user's backbone is (`Backbone.files`). */
async function backboneDir(): Promise<{ dir: string; cleanup: () => void }> {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { saveBackboneDir } = await import('../src/engine/models/backbone');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-filebacked-'));
  saveBackboneDir(await loadBackbone('synthetic:tiny'), dir);
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('file-backed frozen linears: an owned inference build reads them from model.safetensors, with the same logits', async () => {
  const { dir, cleanup } = await backboneDir();
  try {
    const method = methodSpec('spartan');
    const load = async () => {
      const backbone = await loadBackbone(dir);
      const rng = createRng(3);
      const fresh = initialTensors(method, backbone.config, 3, () => rng.normal());
      const trained: TensorMap = new Map();
      for (const n of trainableNames(method, backbone.config, 3, backbone.weights.keys()))
        trained.set(n, fresh.get(n) ?? backbone.weights.get(n)!);
      return { backbone, params: layerParams(backbone, trained), opts: graphOptions(backbone, method, 'classification', 3, 0) };
    };
    const { batch } = await setUp('spartan');
    const owned = await load();
    assert.equal(
      owned.backbone.files?.get(LINEAR)?.length,
      owned.backbone.weights.get(LINEAR)!.data.byteLength,
      'the loader knows where each tensor lies',
    );
    const build = (m: Awaited<ReturnType<typeof load>>, ownsBackbone: boolean) =>
      buildSessions({
        config: m.backbone.config,
        quantize: 'none',
        params: m.params,
        sources: [m.backbone.weights],
        backbone: m.backbone,
        trainable: [],
        ownsBackbone,
        threads: 1,
        graphs: { inference: { compile: (frozen) => compileInference({ ...m.opts, ...frozen }) } },
      });
    const fromFile = (await build(owned, true)).inference!;
    assert.ok(!owned.params.has(LINEAR) && !owned.backbone.weights.has(LINEAR), 'the engine dropped its float32 copies');
    assert.ok(!fromFile.graph.parameterInputs.includes(LINEAR), 'the Gemm reads an initializer');
    assert.ok(owned.params.has('roberta.embeddings.word_embeddings.weight'), 'only the linears go');
    const shared = await load();
    const fromInputs = (await build(shared, false)).inference!;
    assert.ok(shared.params.has(LINEAR) && fromInputs.graph.parameterInputs.includes(LINEAR), 'a shared backbone keeps its inputs');
    const a = (await fromFile.run(owned.params, batch, 'classification', 3)).logits_out.data as Float32Array;
    const b = (await fromInputs.run(shared.params, batch, 'classification', 3)).logits_out.data as Float32Array;
    assert.ok(maxRelative(a, b) <= 1e-6, `logits differ by ${maxRelative(a, b)}`);
    await fromFile.release();
    await fromInputs.release();
  } finally {
    cleanup();
  }
});

test('file-backed frozen linears: not for trained linears; a training session reads them too; a rewritten file is refused', async () => {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const { dir, cleanup } = await backboneDir();
  try {
    const backbone = await loadBackbone(dir);
    const opts = graphOptions(backbone, methodSpec('full'), 'classification', 3, 0);
    const spec = { compile: (frozen: object) => compileInference({ ...opts, ...frozen }) };
    const base = {
      config: backbone.config,
      quantize: 'none' as const,
      sources: [backbone.weights],
      backbone,
      ownsBackbone: true,
      threads: 1,
    };
    // A trained linear (a full fine-tune's memory layered over the backbone) is not the backbone's own tensor.
    const params = layerParams(
      backbone,
      new Map([[LINEAR, { ...backbone.weights.get(LINEAR)!, data: Float32Array.from(backbone.weights.get(LINEAR)!.data) }]]),
    );
    const s1 = (await buildSessions({ ...base, params, trainable: [], graphs: { inference: spec } })).inference!;
    assert.ok(s1.graph.parameterInputs.includes(LINEAR), 'the layered linear stays an input');
    assert.ok(!s1.graph.parameterInputs.includes(LINEAR.replace('layer.0', 'layer.1')), 'the others come from the file');
    await s1.release();
    // SPARTAN trains no linear: its training session reads them from the file too (forward and input-gradient
    // Gemms), with the same loss and gradients as a shared backbone's session (inputs and prepacked twins).
    const { batch } = await setUp('spartan');
    const trainingBuild = async (ownsBackbone: boolean) => {
      const bb = await loadBackbone(dir);
      const sOpts = graphOptions(bb, methodSpec('spartan'), 'classification', 3, 0);
      const sNames = trainableNames(methodSpec('spartan'), bb.config, 3, bb.weights.keys());
      const rng = createRng(4);
      const fresh = initialTensors(methodSpec('spartan'), bb.config, 3, () => rng.normal());
      const params = layerParams(bb, new Map(sNames.map((n) => [n, fresh.get(n) ?? bb.weights.get(n)!])));
      const built = await buildSessions({
        ...base,
        ownsBackbone,
        sources: [bb.weights],
        backbone: bb,
        params,
        trainable: sNames,
        graphs: { training: { compile: (frozen) => compileTraining({ ...sOpts, ...frozen, training: true }, sNames), trainingSeed: 1 } },
      });
      const session = built.training!;
      const out = await session.run(params, batch, 'classification', 3);
      return { session, params, out, sNames };
    };
    const owned = await trainingBuild(true);
    const shared = await trainingBuild(false);
    assert.ok(!owned.params.has(LINEAR) && !owned.session.graph.parameterInputs.includes(LINEAR), 'owned: read from the file');
    assert.ok(shared.params.has(LINEAR) && shared.session.graph.parameterInputs.includes(LINEAR), 'shared: an input');
    assert.ok(maxRelative(owned.out[OUTPUT_LOSS].data as Float32Array, shared.out[OUTPUT_LOSS].data as Float32Array) <= 1e-6, 'loss');
    for (const n of owned.sNames) {
      const r = maxRelative(owned.out[gradOutputName(n)].data as Float32Array, shared.out[gradOutputName(n)].data as Float32Array);
      assert.ok(r <= 1e-5, `${n}: relative difference ${r}`);
    }
    const s2 = { owned: owned.session, shared: shared.session };
    for (const s of Object.values(s2)) await s.release();
    const third = await loadBackbone(dir);
    const file = path.join(dir, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    fs.rmSync(file);
    fs.writeFileSync(file, bytes); // the same bytes, but another file than the one loaded
    await assert.rejects(
      buildSessions({
        ...base,
        sources: [third.weights],
        backbone: third,
        params: layerParams(third, new Map()),
        trainable: [],
        graphs: { inference: spec },
      }),
      /model\.safetensors changed after it was loaded/,
    );
  } finally {
    cleanup();
  }
});

test('serialize: a file-backed initializer is external data at its offset in its file; one folder; never embedded', async () => {
  const { Graph } = await import('../src/engine/onnx/graph');
  const { toModelBytes, toModelWithExternalData } = await import('../src/engine/onnx/serialize');
  const stamp = { size: 1 << 20, mtimeMs: 1, ino: 2 };
  const g = new Graph();
  const x = g.input('x', 'float32', [2, 4]);
  g.output(
    g.gemm(x, g.fileInitializer('w', 'float32', [4, 3], { path: '/m/a/model.safetensors', offset: 108, length: 48, stamp }), undefined),
  );
  const { bytes, externalData, externalFiles } = toModelWithExternalData(g);
  assert.equal(externalData.length, 0);
  assert.deepEqual(externalFiles?.folder, '/m/a');
  const w = onnx.ModelProto.decode(bytes).graph!.initializer!.find((t) => t.name === 'w')!;
  assert.deepEqual(
    w.externalData!.map((e) => [e.key, e.value]),
    [
      ['location', 'model.safetensors'],
      ['offset', '108'],
      ['length', '48'],
    ],
  );
  assert.throws(() => toModelBytes(g), /lies in \/m\/a\/model\.safetensors/);
  assert.throws(
    () => g.fileInitializer('v', 'float32', [4, 4], { path: '/m/a/model.safetensors', offset: 0, length: 48, stamp }),
    /needs 64 bytes/,
  );
  g.fileInitializer('u', 'float32', [4, 3], { path: '/m/b/model.safetensors', offset: 0, length: 48, stamp });
  g.output('u');
  assert.throws(() => toModelWithExternalData(g), /outside \/m\/a/);
});

test('a training graph run forward only (the dev set on the training session) gives the inference logits, no gradients', async () => {
  const { names, params, opts, batch } = await setUp('spartan');
  const inference = await GraphSession.create(compileInference(opts), { threads: 1 });
  const training = await GraphSession.create(compileTraining({ ...opts, dropout: 0.1, training: true }, names), { threads: 1 }, 7);
  assert.equal(training.graph.gradientSwitch, 'compute_gradients');
  assert.ok(training.graph.maskInputs.length > 0, 'a graph with dropout masks');
  const want = (await inference.run(params, batch, 'classification', 3)).logits_out.data as Float32Array;
  const evaluated = await training.run(params, batch, 'classification', 3, undefined, { forwardOnly: true });
  assert.deepEqual(Object.keys(evaluated), ['logits_out'], 'only the logits are fetched');
  const r = maxRelative(evaluated.logits_out.data as Float32Array, want);
  assert.ok(r <= 1e-6, `forward-only logits differ from inference by ${r}`);
  // The same session still trains: dropout on (other logits), every gradient there and non-zero.
  const trained = await training.run(params, batch, 'classification', 3);
  assert.ok(maxRelative(trained.logits_out.data as Float32Array, want) > 1e-4, 'training runs draw dropout masks');
  for (const n of names) {
    const g = trained[gradOutputName(n)].data as Float32Array;
    assert.equal(g.length, params.get(n)!.data.length, n);
    assert.ok(
      g.some((v) => v !== 0),
      `${n}: a gradient`,
    );
  }
  await inference.release();
  await training.release();
});
