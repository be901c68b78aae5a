/**
 * runtime/sessionBuild.ts: a training graph whose input-gradient Gemms read prepacked twins of the frozen float32
 * linears gives the same loss and gradients as one that reads the inputs; inference graphs are unchanged; a build
 * keeps the float32 linears in float32 and never twins a trained one; large initializers travel as external data.
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
