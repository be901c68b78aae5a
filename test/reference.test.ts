/**
 * The engine against the PyTorch reference (python/spartan_torch, float64): logits and the gradient
 * of every trained tensor, for single-text, pair and regression batches with padding, on a random small RoBERTa
 * and on the real roberta-mini checkpoint.
 *
 * Gradients are read from outside, through the CLI contract: `train --init M0 --optimizer sgd --lr 1 --steps 1
 * --no-shuffle --dropout 0 --dtype float32` with one batch holding the whole file saves M0 − ∇(mean loss).
 * Relative error of a tensor = max|engine − torch| / max|torch|; the bound is 1e-4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackbone, saveBackboneDir, repoRoot } from '../src/engine/models/backbone';
import { loadTokenizer } from '../src/engine/tokenizers/robertaTokenizer';
import { readSafetensors } from '../src/engine/io/safetensors';
import { TaskModel } from '../src/engine/pipeline/taskModel';
import { readJsonl } from '../src/engine/data/jsonl';
import { encodeExamples, padBatch } from '../src/engine/data/batching';
import { compileInference } from '../src/engine/runtime/compile';
import { GraphSession } from '../src/engine/runtime/session';
import { graphOptions, layerParams } from '../src/engine/training/trainer';
import { methodFromMetadata } from '../src/engine/pipeline/taskModel';
import { OUTPUT_LOGITS, compileTraining, gradOutputName } from '../src/engine/runtime/compile';

const ROOT = repoRoot();
const CLI = path.join(ROOT, 'bin', 'spartan.js');
/** The oracle: `python3 -m spartan_torch grads …` with python/ on PYTHONPATH. */
const TORCH_ENV = { ...process.env, PYTHONPATH: path.join(ROOT, 'python') };
const PYTHON = '/usr/bin/python3';
const TOLERANCE = 1e-4;

const torchAvailable = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const cliBuilt = fs.existsSync(path.join(ROOT, 'dist', 'cli.js'));

const TEXTS = [
  'A gripping, beautifully shot film.',
  'Dull.',
  'The plot wanders, the acting is wooden, and nothing in the last hour earns its running time.',
  "It isn't great, but it's fun enough.",
  'Surprisingly touching!',
  'An utter mess from start to finish, with a few good jokes.',
];
const PAIRS = [
  'The film is good.',
  'A bad movie',
  'Nothing happens for two hours, then something small happens.',
  'fun',
  'It moved me to tears.',
  'Messy.',
];

type Kind = 'single' | 'pair' | 'regression' | 'multilabel';

/** Multi-label rows: every label, none, and mixes, so both BCE terms meet positive and negative targets. */
const LABEL_SETS = [['neg'], ['pos', 'mixed'], [], ['neg', 'pos', 'mixed'], ['mixed'], ['neg', 'pos']];

function writeJsonl(file: string, kind: Kind): void {
  const labels = ['neg', 'pos', 'mixed'];
  const rows = TEXTS.map((text, i) => {
    const row: Record<string, unknown> = {
      text,
      label: kind === 'regression' ? 0.7 * i - 1.3 : kind === 'multilabel' ? LABEL_SETS[i] : labels[i % 3],
    };
    if (kind === 'pair') row.text_pair = PAIRS[i];
    return JSON.stringify(row);
  });
  fs.writeFileSync(file, rows.join('\n') + '\n');
}

function cli(args: string[]): void {
  execFileSync(process.execPath, [CLI, ...args, '--threads', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0,
    scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

type Method = 'spartan' | 'pfeiffer' | 'houlsby' | 'head' | 'full';

/** Worst relative error (logits or a gradient) per method in the current test, printed at its end. */
const worst = new Map<string, { err: number; what: string }>();
function record(method: Method, err: number, what: string): void {
  if (err >= (worst.get(method)?.err ?? -1)) worst.set(method, { err, what });
}
function reportWorst(backbone: string): void {
  for (const [m, e] of worst) console.log(`# reference (${backbone}): ${m}: worst relative error ${e.err.toExponential(2)} (${e.what})`);
  worst.clear();
}

/** The tensors a memory file of each method must hold (beyond the head), as a sanity check of what was compared. */
function expectTensors(method: Method, names: Set<string>): void {
  const has = (n: string) => names.has(n);
  const adapter = (block: string) => `roberta.encoder.layer.0.${block}.adapter.down.weight`;
  assert.ok(has('classifier.out_proj.weight'), 'the head is trained');
  assert.equal(has('roberta.encoder.layer.0.spartan_experts.weight'), method === 'spartan', 'SPARTAN tensors iff spartan');
  assert.equal(has(adapter('output')), method === 'pfeiffer' || method === 'houlsby', 'feed-forward adapter iff pfeiffer/houlsby');
  assert.equal(has(adapter('attention.output')), method === 'houlsby', 'attention adapter iff houlsby');
  assert.equal(has('roberta.embeddings.word_embeddings.weight'), method === 'full', 'embeddings trained iff full');
  assert.equal(
    has('roberta.embeddings.LayerNorm.weight'),
    method === 'spartan' || method === 'full',
    'LayerNorms trained for spartan and full',
  );
  if (method === 'head') assert.equal(names.size, 4, 'head-only trains the 4 head tensors');
}

/**
 * The scale a tensor's gradient error is measured against: max|torch gradient|, except for the key bias, whose
 * exact gradient is zero (softmax is shift-invariant: q·(k + b) adds q·b to every score of a row), so that
 * torch's is float64 round-off (~1e-21) and the engine's float32 round-off (~1e-13); a ratio of two round-offs
 * says nothing. There the scale is the same layer's key-weight gradient, and torch's must be zero at that scale.
 */
function errorScale(name: string, ref: Map<string, { data: Float32Array }>): number {
  const own = maxAbs(ref.get(`grad.${name}`)!.data);
  if (!name.endsWith('.attention.self.key.bias')) return own;
  const sibling = maxAbs(ref.get(`grad.${name.replace(/bias$/, 'weight')}`)!.data);
  assert.ok(sibling > 0 && own < 1e-12 * sibling, `${name}: the reference gradient (${own}) is zero against the key weight's (${sibling})`);
  return sibling;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

async function checkAgainstTorch(backboneDir: string, kind: Kind, geometry: string[], method: Method = 'spartan'): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-ref-'));
  try {
    const data = path.join(dir, 'data.jsonl');
    writeJsonl(data, kind);
    const m0 = path.join(dir, 'm0.safetensors');
    const m1 = path.join(dir, 'm1.safetensors');
    cli([
      'train',
      '--backbone',
      backboneDir,
      '--data',
      data,
      '--out',
      m0,
      '--steps',
      '0',
      '--dtype',
      'float32',
      '--seed',
      '7',
      '--method',
      method,
      ...geometry,
    ]);
    cli([
      'train',
      '--backbone',
      backboneDir,
      '--data',
      data,
      '--out',
      m1,
      '--init',
      m0,
      '--optimizer',
      'sgd',
      '--lr',
      '1',
      '--steps',
      '1',
      '--no-shuffle',
      '--dropout',
      '0',
      '--dtype',
      'float32',
      '--batch-size',
      '64',
    ]);

    // The batch exactly as the engine pads it, for the reference.
    const backbone = await loadBackbone(backboneDir);
    const tokenizer = loadTokenizer(backbone.tokenizerDir);
    const model = await TaskModel.load({ backbone, memory: m0, threads: 2 });
    assert.equal(model.metadata.method, method);
    const rows = readJsonl(data).rows;
    const { examples } = encodeExamples(rows, tokenizer, model.metadata.task, model.metadata.labels, 128, data);
    const batch = padBatch(examples, tokenizer.padId);
    assert.ok(
      batch.attentionMask.some((m) => m === 0),
      'the batch has padding',
    );
    const batchFile = path.join(dir, 'batch.json');
    const B = batch.batch,
      T = batch.seqLen;
    const rowsOf = <X>(a: ArrayLike<X>, f: (x: X) => number) =>
      Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => f(a[b * T + t])));
    fs.writeFileSync(
      batchFile,
      JSON.stringify({
        input_ids: rowsOf(batch.inputIds, Number),
        attention_mask: rowsOf(batch.attentionMask, Number),
        position_ids: rowsOf(batch.positionIds, Number),
        labels: batch.labelSets
          ? batch.labelSets.map((set) => model.metadata.labels.map((_, k) => (set.includes(k) ? 1 : 0)))
          : Array.from(batch.labels),
        task: model.metadata.task,
      }),
    );
    const h = model.metadata.hyperparameters as Record<string, number>;
    const refOut = path.join(dir, 'ref.safetensors');
    const refRun = execFileSync(
      PYTHON,
      [
        '-m',
        'spartan_torch',
        'grads',
        '--backbone',
        backboneDir,
        '--memory',
        m0,
        '--batch',
        batchFile,
        '--out',
        refOut,
        '--method',
        method,
        '--parents',
        String(h.parents),
        '--children',
        String(h.children),
        '--top-k',
        String(h.topK),
        '--temperature',
        String(h.temperature),
        '--threads',
        '2',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: TORCH_ENV },
    );
    const ref = readSafetensors(refOut).tensors;
    // The reference trained exactly the memory file's tensors under the same method.
    const refSummary = JSON.parse(refRun.trim().split('\n').pop()!) as { method: string; trainable: string[] };
    assert.equal(refSummary.method, method);

    // Logits: the engine's inference graph on the same padded batch.
    const session = await GraphSession.create(
      compileInference(graphOptions(backbone, methodFromMetadata(model.metadata), model.metadata.task, model.numLabels)),
      { threads: 2 },
    );
    const logits = (await session.run(layerParams(backbone, model.tensors), batch, model.metadata.task, model.numLabels))[OUTPUT_LOGITS]
      .data as Float32Array;
    await session.release();
    await model.close();
    const logitErr = relativeError(logits, ref.get('logits')!.data);
    assert.ok(logitErr < TOLERANCE, `${method}: logits relative error ${logitErr}`);

    // Gradients straight from the training graph (float32): within 1e-4 of the reference, every tensor.
    const spec = methodFromMetadata(model.metadata);
    const names = [...model.tensors.keys()];
    assert.deepEqual([...refSummary.trainable].sort(), [...names].sort(), "the reference trains the memory file's tensors");
    expectTensors(method, new Set(names));
    const training = await GraphSession.create(
      compileTraining({ ...graphOptions(backbone, spec, model.metadata.task, model.numLabels), training: true }, names),
      { threads: 2 },
    );
    const out = await training.run(layerParams(backbone, model.tensors), batch, model.metadata.task, model.numLabels);
    await training.release();
    // The training graph's own logits too (a training graph with dropout 0 is the inference graph).
    const trainLogitErr = relativeError(out[OUTPUT_LOGITS].data as Float32Array, ref.get('logits')!.data);
    assert.ok(trainLogitErr < TOLERANCE, `${method}: training-graph logits relative error ${trainLogitErr}`);
    record(method, logitErr, `${kind} logits`);
    const failures: string[] = [];
    for (const name of names) {
      const expected = ref.get(`grad.${name}`);
      assert.ok(expected, `the reference has a gradient for ${name}`);
      const got = out[gradOutputName(name)].data as Float32Array;
      let diff = 0;
      for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - expected.data[i]));
      const err = diff / errorScale(name, ref);
      record(method, err, `${kind} ${name}`);
      if (!(err < TOLERANCE))
        failures.push(`${name}: gradient relative error ${err} (max|engine| ${maxAbs(got)}, max|torch| ${maxAbs(expected.data)})`);
    }
    assert.deepEqual(failures, [], `${method} ${kind}: ${failures.length} tensor(s) disagree`);

    // The same through the CLI contract: M1 = M0 − ∇ up to float32 rounding of the subtraction, which costs
    // up to one ulp of |M0| per element (it matters where a gradient is far smaller than its weights).
    const before = readSafetensors(m0).tensors;
    const after = readSafetensors(m1).tensors;
    let checked = 0;
    for (const [name, t0] of before) {
      const t1 = after.get(name)!;
      const expected = ref.get(`grad.${name}`)!.data;
      const scale = errorScale(name, ref);
      let weights = 0;
      for (let i = 0; i < expected.length; i++) weights = Math.max(weights, Math.abs(t0.data[i]));
      const bound = TOLERANCE * scale + 2 * Math.pow(2, -23) * weights;
      for (let i = 0; i < expected.length; i++) {
        const g = t0.data[i] - t1.data[i];
        if (Math.abs(g - expected[i]) > bound)
          assert.fail(`${method} ${kind}: ${name}[${i}]: M0 − M1 = ${g}, reference gradient ${expected[i]} (bound ${bound})`);
      }
      checked++;
    }
    assert.equal(checked, names.length, 'M1 holds the same tensors as M0');
    assert.ok(checked >= 4, `checked ${checked} tensors`);
    expectTensors(method, new Set(before.keys()));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const skip = !torchAvailable
  ? 'PyTorch (Debian python3-torch) is not installed: run scripts/install-torch.sh'
  : !cliBuilt
    ? 'run `npm run build` first'
    : false;

test(
  'engine = PyTorch reference on a random small RoBERTa (single, pair, regression, multi-label)',
  { skip, timeout: 600_000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-tiny-'));
    try {
      const tiny = await loadBackbone('synthetic:tiny@3');
      saveBackboneDir(tiny, dir, 'float32');
      // A geometry where top-K < Np matters and a second one with K = Np.
      await checkAgainstTorch(dir, 'single', ['--parents', '6', '--children', '2', '--top-k', '3', '--temperature', '0.7']);
      await checkAgainstTorch(dir, 'pair', ['--parents', '4', '--children', '3', '--top-k', '4']);
      await checkAgainstTorch(dir, 'regression', []);
      await checkAgainstTorch(dir, 'multilabel', ['--parents', '6', '--children', '2', '--top-k', '3']);
      reportWorst('synthetic:tiny@3');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('engine = PyTorch reference on roberta-mini (single, pair, regression, multi-label)', { skip, timeout: 600_000 }, async () => {
  const mini = path.join(ROOT, 'models', 'roberta-mini');
  await checkAgainstTorch(mini, 'single', []);
  await checkAgainstTorch(mini, 'pair', []);
  await checkAgainstTorch(mini, 'regression', []);
  await checkAgainstTorch(mini, 'multilabel', []);
  reportWorst('roberta-mini');
});

test(
  'engine = PyTorch reference for the baselines on a random small RoBERTa (pfeiffer, houlsby, head, full)',
  { skip, timeout: 600_000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-tiny-'));
    try {
      const tiny = await loadBackbone('synthetic:tiny@3');
      saveBackboneDir(tiny, dir, 'float32');
      await checkAgainstTorch(dir, 'single', [], 'pfeiffer');
      await checkAgainstTorch(dir, 'pair', [], 'houlsby');
      await checkAgainstTorch(dir, 'regression', [], 'pfeiffer');
      await checkAgainstTorch(dir, 'regression', [], 'houlsby');
      await checkAgainstTorch(dir, 'single', [], 'head');
      await checkAgainstTorch(dir, 'single', [], 'full');
      reportWorst('synthetic:tiny@3');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
