/**
 * The PyTorch trainer (python/spartan_torch) against itself across ranks and against the engine:
 * - `spartan encode` writes the engine's token ids;
 * - a fresh Python memory starts from the engine's initial tensors (same seed), with the same metadata;
 * - a two-rank gloo run (ranks launched with the env:// variables, as torchrun would) gives the memory of a
 *   one-rank run with the same global batch and seed (dropout 0), max relative difference ≤ 1e-5 per tensor;
 * - the engine opens that memory and its logits equal PyTorch's within 1e-4; `eval` agrees with `spartan eval`;
 * - bad input gets the same file:line messages as `spartan train`; `train --help` documents every flag.
 * Skipped (with a message) where /usr/bin/python3 has no torch, or without a build (`npm run build`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackbone, repoRoot, saveBackboneDir } from '../src/engine/models/backbone';
import { loadTokenizer } from '../src/engine/tokenizers/robertaTokenizer';
import { readSafetensors } from '../src/engine/io/safetensors';
import { TaskModel, methodFromMetadata } from '../src/engine/pipeline/taskModel';
import { readJsonl } from '../src/engine/data/jsonl';
import { encodeExamples } from '../src/engine/data/batching';
import { compileInference } from '../src/engine/runtime/compile';
import { GraphSession } from '../src/engine/runtime/session';
import { predictLogits } from '../src/engine/runtime/predict';
import { graphOptions, layerParams } from '../src/engine/training/trainer';
import { formatTrainedBy, readMemoryInfo } from '../src/extension/memoryFiles';

const ROOT = repoRoot();
const CLI = path.join(ROOT, 'dist', 'cli.js');
const PYTHON = '/usr/bin/python3';
const PY_ENV = { ...process.env, PYTHONPATH: path.join(ROOT, 'python') };

const torchProbe = spawnSync(PYTHON, ['-c', 'import torch, torch.distributed as d; assert d.is_available()'], { encoding: 'utf8' });
const skip =
  torchProbe.status !== 0
    ? `${PYTHON} has no torch with torch.distributed (Debian python3-torch: run scripts/install-torch.sh)`
    : !fs.existsSync(CLI)
      ? 'run `npm run build` first (the trainer tokenizes through dist/cli.js)'
      : false;
if (skip) console.log(`# ddp: skipped: ${skip}`);

const TEXTS = [
  'A gripping, beautifully shot film.',
  'Dull.',
  'The plot wanders, the acting is wooden, and nothing earns its running time.',
  "It isn't great, but it's fun enough.",
  'Surprisingly touching!',
  'An utter mess from start to finish, with a few good jokes.',
  'I laughed, I cried, I left early.',
  'Two hours I will never get back.',
  'The best thing the director has made in years.',
  'Fine.',
  'A small, quiet triumph of a movie that trusts its audience.',
  'Loud, long, and somehow still boring.',
  'Charming.',
];
const LABELS = ['neg', 'pos', 'mixed'];

function writeRows(file: string, rows: Record<string, unknown>[]): void {
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

function classificationRows(pair = false): Record<string, unknown>[] {
  return TEXTS.map((text, i) => ({ text, ...(pair ? { text_pair: TEXTS[(i + 5) % TEXTS.length] } : {}), label: LABELS[i % 3] }));
}

function spartan(args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function torchTrain(args: string[]): string {
  return execFileSync(PYTHON, ['-m', 'spartan_torch', 'train', '--threads', '1', ...args], {
    encoding: 'utf8',
    env: PY_ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** `world` ranks on this machine, started with the env:// variables as torchrun sets them (Debian's torchrun 1.13 fails on Python 3.11). */
async function torchTrainRanks(world: number, args: string[]): Promise<void> {
  const port = await freePort();
  const children: ReturnType<typeof spawn>[] = [];
  const runs = Array.from(
    { length: world },
    (_, rank) =>
      new Promise<{ rank: number; code: number | null; stderr: string }>((resolve) => {
        const child = spawn(PYTHON, ['-m', 'spartan_torch', 'train', '--threads', '1', ...args], {
          env: {
            ...PY_ENV,
            MASTER_ADDR: '127.0.0.1',
            MASTER_PORT: String(port),
            RANK: String(rank),
            WORLD_SIZE: String(world),
            LOCAL_RANK: String(rank),
            LOCAL_WORLD_SIZE: String(world),
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d) => (stderr += d));
        children.push(child);
        child.on('close', (code) => {
          // A rank that fails leaves the others waiting in a collective: stop them rather than hang the suite.
          if (code !== 0) for (const c of children) if (c !== child && c.exitCode === null) c.kill('SIGTERM');
          resolve({ rank, code, stderr });
        });
      }),
  );
  const results = await Promise.all(runs);
  for (const r of results) assert.equal(r.code, 0, `rank ${r.rank} of ${world} failed:\n${r.stderr}`);
}

/** Max relative difference per tensor (max|a − b| / max|b|), the worst tensor named. */
function worstRelative(a: string, b: string): { err: number; name: string; count: number } {
  const ta = readSafetensors(a).tensors,
    tb = readSafetensors(b).tensors;
  assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort(), 'the same tensors');
  let worst = { err: 0, name: '', count: ta.size };
  for (const [name, t] of ta) {
    const u = tb.get(name)!;
    assert.deepEqual(t.shape, u.shape, name);
    let diff = 0,
      scale = 0;
    for (let i = 0; i < t.data.length; i++) {
      diff = Math.max(diff, Math.abs(t.data[i] - u.data[i]));
      scale = Math.max(scale, Math.abs(u.data[i]));
    }
    const err = scale === 0 ? diff : diff / scale;
    if (err >= worst.err) worst = { err, name, count: ta.size };
  }
  return worst;
}

async function tinyBackbone(dir: string): Promise<string> {
  const out = path.join(dir, 'tiny');
  saveBackboneDir(await loadBackbone('synthetic:tiny@5'), out, 'float32');
  return out;
}

function withTmp(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-ddp-'));
    try {
      await fn(dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  "spartan encode writes the engine tokenizer's ids (single and pair, with truncation), and the trainer reads them",
  { skip },
  withTmp(async (dir) => {
    for (const pair of [false, true]) {
      const data = path.join(dir, `rows${pair}.jsonl`);
      writeRows(data, classificationRows(pair));
      const enc = path.join(dir, `enc${pair}.jsonl`);
      spartan(['encode', '--data', data, '--out', enc, '--max-length', '12']);
      const [header, ...rows] = fs
        .readFileSync(enc, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const tokenizer = loadTokenizer(path.join(ROOT, 'models', 'roberta-mini'));
      const { examples, truncated } = encodeExamples(readJsonl(data).rows, tokenizer, 'classification', ['mixed', 'neg', 'pos'], 12, data);
      assert.ok(truncated > 0, 'some rows are truncated at 12 tokens');
      assert.equal(header.truncated, truncated);
      assert.equal(header.pad_id, tokenizer.padId);
      assert.deepEqual(header.task.labels, ['mixed', 'neg', 'pos']);
      assert.equal(header.task.pair, pair);
      assert.deepEqual(
        rows.map((r) => r.ids),
        examples.map((e) => Array.from(e.ids)),
        'identical ids',
      );
      assert.deepEqual(
        rows.map((r) => r.line),
        examples.map((e) => e.line),
      );
    }
    // The trainer takes the encoded file itself (no CLI needed: a bogus one proves it is not run).
    const out = path.join(dir, 'from-encoded.safetensors');
    torchTrain(['--data', path.join(dir, 'encfalse.jsonl'), '--out', out, '--steps', '1', '--spartan-cli', '/nonexistent/cli.js']);
    assert.equal(readMemoryInfo(out).metadata.method, 'spartan');
    assert.equal(readMemoryInfo(out).hyperparameters.maxLength, 12, 'max length from the encoded file');
  }),
);

test(
  "a fresh PyTorch memory starts from the engine's initial tensors and carries the engine's metadata",
  { skip, timeout: 300_000 },
  withTmp(async (dir) => {
    const backbone = await tinyBackbone(dir);
    const data = path.join(dir, 'train.jsonl');
    writeRows(data, classificationRows());
    for (const method of ['spartan', 'houlsby']) {
      const common = [
        '--backbone',
        backbone,
        '--data',
        data,
        '--steps',
        '0',
        '--seed',
        '11',
        '--dtype',
        'float32',
        '--method',
        method,
        '--parents',
        '5',
        '--top-k',
        '2',
      ];
      const eng = path.join(dir, `engine-${method}.safetensors`),
        py = path.join(dir, `torch-${method}.safetensors`);
      spartan(['train', ...common, '--out', eng]);
      torchTrain([...common, '--out', py]);
      const w = worstRelative(py, eng);
      assert.ok(w.err <= 1e-6, `${method}: initial ${w.name} differs by ${w.err}`);
      const me = readMemoryInfo(eng),
        mp = readMemoryInfo(py);
      for (const key of ['format_version', 'method', 'backbone_name', 'backbone_sha256', 'tokenizer_hash', 'task', 'labels']) {
        assert.equal(mp.metadata[key], me.metadata[key], `metadata ${key}`);
      }
      assert.deepEqual(mp.hyperparameters, me.hyperparameters, 'hyperparameters');
      const { seconds: _s1, ...metricsE } = JSON.parse(me.metadata.metrics);
      const { seconds: _s2, ...metricsP } = JSON.parse(mp.metadata.metrics);
      assert.deepEqual(metricsP, metricsE, 'metrics keys and values (but the time)');
      assert.equal(mp.trainedBy?.trainer, 'spartan_torch');
    }

    // One SGD step of lr 1 on one batch from the engine's initial memory: both trainers save M0 − ∇(mean loss).
    let worst = 0;
    for (const method of ['spartan', 'houlsby']) {
      const m0 = path.join(dir, `engine-${method}.safetensors`);
      const step = [
        '--backbone',
        backbone,
        '--data',
        data,
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
      ];
      const e1 = path.join(dir, `engine-step-${method}.safetensors`),
        p1 = path.join(dir, `torch-step-${method}.safetensors`);
      spartan(['train', ...step, '--out', e1]);
      torchTrain([...step, '--out', p1]);
      const t0 = readSafetensors(m0).tensors,
        te = readSafetensors(e1).tensors,
        tp = readSafetensors(p1).tensors;
      assert.ok(t0.size >= 10, `${method}: ${t0.size} tensors`);
      for (const [name, w0] of t0) {
        let diff = 0,
          scale = 0,
          weights = 0;
        for (let i = 0; i < w0.data.length; i++) {
          const ge = w0.data[i] - te.get(name)!.data[i],
            gp = w0.data[i] - tp.get(name)!.data[i];
          diff = Math.max(diff, Math.abs(ge - gp));
          scale = Math.max(scale, Math.abs(ge));
          weights = Math.max(weights, Math.abs(w0.data[i]));
        }
        // float32 rounding of the subtraction costs up to an ulp of the weights (as in test/reference.test.ts).
        const err = Math.max(0, diff - 2 * Math.pow(2, -23) * weights) / scale;
        worst = Math.max(worst, err);
        assert.ok(err <= 1e-4, `one SGD step: ${method} ${name}: gradients differ by ${err}`);
      }
    }
    console.log(
      `# ddp: one SGD step from the same memory (spartan, houlsby), engine vs PyTorch trainer: worst gradient relative difference ${worst.toExponential(2)}`,
    );

    // --dev-share holds out the same rows in both (the engine's stratified seeded split), and both score them alike.
    const share = [
      '--backbone',
      backbone,
      '--data',
      data,
      '--steps',
      '0',
      '--seed',
      '9',
      '--dev-share',
      '0.3',
      '--parents',
      '5',
      '--top-k',
      '2',
    ];
    const es = path.join(dir, 'engine-share.safetensors'),
      ps = path.join(dir, 'torch-share.safetensors');
    spartan(['train', ...share, '--out', es]);
    torchTrain([...share, '--out', ps]);
    const me = JSON.parse(readMemoryInfo(es).metadata.metrics),
      mp = JSON.parse(readMemoryInfo(ps).metadata.metrics);
    assert.equal(mp.devRows, 4);
    assert.equal(mp.trainRows, me.trainRows);
    assert.equal(mp.devRows, me.devRows);
    for (const k of ['accuracy', 'f1', 'mcc']) assert.ok(Math.abs(mp[k] - me[k]) < 1e-9, `held-out ${k}: engine ${me[k]}, torch ${mp[k]}`);
  }),
);

test(
  'two gloo ranks give the one-rank memory (same global batch and seed); the engine reads it and agrees on the logits',
  { skip, timeout: 600_000 },
  withTmp(async (dir) => {
    const backbone = await tinyBackbone(dir);
    const data = path.join(dir, 'train.jsonl'),
      dev = path.join(dir, 'dev.jsonl');
    writeRows(data, classificationRows(true));
    writeRows(dev, classificationRows(true).slice(0, 7));
    // 13 rows in batches of 4, bucketed and shuffled: the last global batch holds one row, so rank 1 has none of it.
    const common = [
      '--backbone',
      backbone,
      '--data',
      data,
      '--dev',
      dev,
      '--epochs',
      '2',
      '--batch-size',
      '4',
      '--dropout',
      '0',
      '--dtype',
      'float32',
      '--seed',
      '3',
      '--parents',
      '6',
      '--top-k',
      '3',
      '--lr',
      '0.01',
    ];
    const cases: [string, string[]][] = [
      // AdamW normalises each gradient entry (m / √v), so float32 summation-order noise in near-zero gradients is
      // amplified to ~1e-4; in float64 the ranks' sums agree to round-off.
      ['adamw float64', ['--compute-dtype', 'float64']],
      ['sgd float32', ['--optimizer', 'sgd', '--lr', '0.5']],
    ];
    let memory = '';
    for (const [label, extra] of cases) {
      const one = path.join(dir, `one-${label.replace(/ /g, '-')}.safetensors`);
      const two = one.replace('one-', 'two-');
      torchTrain([...common, ...extra, '--out', one]);
      await torchTrainRanks(2, [...common, ...extra, '--out', two]);
      const w = worstRelative(two, one);
      console.log(`# ddp: ${label}: 2 ranks vs 1: worst relative difference ${w.err.toExponential(2)} (${w.name}, ${w.count} tensors)`);
      assert.ok(w.err <= 1e-5, `${label}: ${w.name} differs by ${w.err}`);
      assert.ok(w.count >= 10, 'memory, LayerNorms and head compared');
      const info = readMemoryInfo(two);
      assert.equal(info.trainedBy?.worldSize, 2);
      assert.equal(info.trainedBy?.trainer, 'spartan_torch');
      assert.match(formatTrainedBy(info.trainedBy), /^spartan_torch · 2 ranks on /);
      assert.equal(Number(JSON.parse(info.metadata.metrics).trainRows), TEXTS.length);
      memory = two;
    }

    // The engine opens the two-rank memory with no conversion; its logits equal PyTorch's (float32, both).
    const evalOut = JSON.parse(
      execFileSync(
        PYTHON,
        [
          '-m',
          'spartan_torch',
          'eval',
          '--backbone',
          backbone,
          '--memory',
          memory,
          '--data',
          dev,
          '--predictions',
          '--json',
          '--threads',
          '1',
        ],
        { encoding: 'utf8', env: PY_ENV },
      ),
    );
    const loaded = await loadBackbone(backbone);
    const model = await TaskModel.load({ backbone: loaded, memory, threads: 1 });
    const tokenizer = loadTokenizer(loaded.tokenizerDir);
    const { examples } = encodeExamples(readJsonl(dev).rows, tokenizer, model.metadata.task, model.metadata.labels, model.maxLength, dev);
    const session = await GraphSession.create(
      compileInference(graphOptions(loaded, methodFromMetadata(model.metadata), model.metadata.task, model.numLabels)),
      { threads: 1 },
    );
    const logits = await predictLogits(session, layerParams(loaded, model.tensors), examples, {
      batchSize: 3,
      padId: tokenizer.padId,
      task: model.metadata.task,
      numLabels: model.numLabels,
    });
    await session.release();
    await model.close();
    let diff = 0,
      scale = 0;
    evalOut.predictions.forEach((p: { line: number; logits: number[] }, i: number) => {
      assert.equal(p.line, examples[i].line);
      p.logits.forEach((v, k) => {
        diff = Math.max(diff, Math.abs(v - logits[i][k]));
        scale = Math.max(scale, Math.abs(v));
      });
    });
    console.log(`# ddp: engine vs PyTorch logits on the two-rank memory: relative difference ${(diff / scale).toExponential(2)}`);
    assert.ok(diff / scale <= 1e-4, `logits differ by ${diff / scale}`);
    const engineEval = JSON.parse(spartan(['eval', '--backbone', backbone, '--memory', memory, '--data', dev, '--json']));
    for (const k of ['accuracy', 'f1', 'mcc'])
      assert.ok(Math.abs(engineEval[k] - evalOut[k]) < 1e-12, `eval ${k}: engine ${engineEval[k]}, torch ${evalOut[k]}`);
    assert.equal(evalOut.rows, 7);
  }),
);

/** The problem lines of a failed run (stderr without the program's prefix). */
function failure(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  assert.equal(r.status, 1, `exit 1 for a user error:\n${r.stderr}`);
  return r.stderr.trim().replace(/^(spartan|spartan_torch): /, '');
}

test(
  'bad input gets the same file:line messages as spartan train',
  { skip, timeout: 300_000 },
  withTmp(async (dir) => {
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(
      bad,
      [
        JSON.stringify({ text: 'fine', label: 'pos' }),
        '{"text": "broken',
        JSON.stringify({ text: '', label: 'neg' }),
        JSON.stringify({ text: 'no label' }),
        JSON.stringify({ text: 'ok', label: 'neg' }),
        JSON.stringify({ text: 'num', label: 3 }),
      ].join('\n') + '\n',
    );
    const good = path.join(dir, 'good.jsonl');
    writeRows(good, classificationRows());
    const devBad = path.join(dir, 'dev.jsonl');
    writeRows(devBad, [
      { text: 'a', label: 'neg' },
      { text: 'b', label: 'unheard-of' },
      { text: 'c', label: 7 },
      { text: 'd', label: 'pos' },
    ]);
    const one = path.join(dir, 'one.jsonl');
    writeRows(one, [
      { text: 'a', label: 'x' },
      { text: 'b', label: 'x' },
    ]);
    const cases = [
      ['--data', bad],
      ['--data', good, '--dev', devBad],
      ['--data', one],
      ['--data', path.join(dir, 'missing.jsonl')],
    ];
    for (const c of cases) {
      const out = path.join(dir, 'm.safetensors');
      const engine = failure(process.execPath, [CLI, 'train', ...c, '--out', out]);
      const torch = failure(PYTHON, ['-m', 'spartan_torch', 'train', ...c, '--out', out], PY_ENV);
      assert.equal(torch, engine, `same message for ${c.join(' ')}`);
      assert.ok(!fs.existsSync(out), 'no memory written');
    }
    assert.match(
      failure(PYTHON, ['-m', 'spartan_torch', 'train', '--data', bad, '--out', path.join(dir, 'm.safetensors')], PY_ENV),
      /bad\.jsonl:2(:\d+)?: invalid JSON/,
    );
    // An encoded file with a damaged row names its own line.
    const enc = path.join(dir, 'enc.jsonl');
    spartan(['encode', '--data', good, '--out', enc]);
    const lines = fs.readFileSync(enc, 'utf8').split('\n');
    lines[3] = JSON.stringify({ line: 3, ids: 'oops', label: 'neg' });
    fs.writeFileSync(enc, lines.join('\n'));
    assert.equal(
      failure(PYTHON, ['-m', 'spartan_torch', 'train', '--data', enc, '--out', path.join(dir, 'm.safetensors')], PY_ENV),
      `${enc}:4: "ids" must be a non-empty list of token ids`,
    );
    // An earlier memory survives a failed run.
    const keep = path.join(dir, 'keep.safetensors');
    fs.writeFileSync(keep, 'earlier');
    failure(PYTHON, ['-m', 'spartan_torch', 'train', '--data', bad, '--out', keep], PY_ENV);
    assert.equal(fs.readFileSync(keep, 'utf8'), 'earlier');
  }),
);

test('python3 -m spartan_torch train --help documents every flag of spartan train', { skip }, () => {
  const flags = (help: string) => new Set([...help.matchAll(/(?:^|[\s,[|])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]));
  const engine = flags(spartan(['train', '--help']));
  const torchHelp = execFileSync(PYTHON, ['-m', 'spartan_torch', 'train', '--help'], { encoding: 'utf8', env: PY_ENV });
  const torch = flags(torchHelp);
  const missing = [...engine].filter((f) => f !== '--help' && !torch.has(f));
  assert.deepEqual(missing, [], 'flags of spartan train missing from the PyTorch trainer');
  assert.ok(engine.size >= 25, `read ${engine.size} engine flags`);
  for (const f of ['--device', '--backend', '--compute-dtype', '--spartan-cli']) assert.ok(torch.has(f), f);
  const evalHelp = execFileSync(PYTHON, ['-m', 'spartan_torch', 'eval', '--help'], { encoding: 'utf8', env: PY_ENV });
  for (const f of flags(spartan(['eval', '--help']))) assert.ok(f === '--help' || evalHelp.includes(f), `eval ${f}`);
});
