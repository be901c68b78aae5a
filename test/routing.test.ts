import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parentRouting } from '../src/engine/analysis/routing';
import { Example } from '../src/engine/data/jsonl';
import { MEMORY_FORMAT_VERSION, saveMemory } from '../src/engine/memory/memoryFile';
import { methodSpec } from '../src/engine/methods';
import { loadBackbone } from '../src/engine/models/backbone';
import { loadTokenizer } from '../src/engine/tokenizers/robertaTokenizer';
import { train, TrainConfig } from '../src/engine/training/trainer';
import { SpartanError } from '../src/engine/types';

const ROOT = path.join(__dirname, '..');
const TEXTS = [
  'a wonderful, moving film',
  'dull and far too long',
  'I laughed all the way through',
  'a mess',
  'fine, I guess',
  'the best thing this year',
  'nothing works here',
  'sweet',
];
const LABELS = ['pos', 'neg', 'pos', 'neg', 'meh', 'pos', 'neg', 'pos'];

test('routing: per-label top-K shares sum to K, gates to 1, labels as in the file; routes CLI', { timeout: 60_000 }, async () => {
  const backbone = await loadBackbone('synthetic:tiny');
  const tokenizer = loadTokenizer(backbone.tokenizerDir);
  // K < Np so the top-K masking is exercised (with K = Np every parent is always selected).
  const method = methodSpec('spartan', { geometry: { parents: 6, children: 2, topK: 2, temperature: 1.6 } });
  const rows: Example[] = TEXTS.map((text, i) => ({ text, label: LABELS[i], line: i + 1 }));
  const task = { task: 'classification' as const, labels: ['meh', 'neg', 'pos'], labelCounts: {}, pair: false };
  const cfg: TrainConfig = {
    method,
    epochs: 1,
    batchSize: 4,
    maxLength: 32,
    optimizer: 'adamw',
    lr: 1e-2,
    weightDecay: 0,
    warmupRatio: 0,
    clipNorm: 1,
    dropout: 0,
    seed: 3,
    shuffle: true,
    bucket: false,
    threads: 1,
    patience: 0,
  };
  const trained = await train({ backbone, tokenizer, task, train: rows, trainFile: 'mem' }, cfg);

  const base = {
    backbone,
    tokenizer,
    method,
    task: 'classification' as const,
    memoryLabels: task.labels,
    tensors: trained.tensors,
    rows,
    file: 'mem.jsonl',
    maxLength: 32,
    batchSize: 3,
    threads: 1,
  };
  const layer0 = await parentRouting({ ...base, layer: 0 });
  const layer1 = await parentRouting({ ...base, layer: 1 });
  for (const report of [layer0, layer1]) {
    assert.deepEqual(report.labels, ['meh', 'neg', 'pos']);
    assert.equal(report.parents, 6);
    assert.equal(report.topK, 2);
    report.labels.forEach((label, k) => {
      const expectedTokens = rows
        .filter((r) => r.label === label)
        .reduce((n, r) => n + tokenizer.encode(r.text, undefined, 32).ids.length, 0);
      assert.equal(report.tokens[k], expectedTokens, `real tokens of ${label}`);
      const share = report.counts[k].reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(share - 2) < 1e-9, `top-K shares of ${label} sum to ${share}`);
      report.counts[k].forEach((v) => assert.ok(v >= 0 && v <= 1));
      const gate = report.meanGate[k].reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(gate - 1) < 1e-5, `gates of ${label} sum to ${gate}`);
      // A parent's mean gate is only ever non-zero where it was selected.
      report.counts[k].forEach((c, p) => assert.ok(c > 0 || report.meanGate[k][p] === 0));
    });
  }
  // Different layers have different parent keys: the gate tensor really is the requested layer's.
  assert.notDeepEqual(layer0.meanGate, layer1.meanGate);
  await assert.rejects(parentRouting({ ...base, layer: 2 }), SpartanError);
  await assert.rejects(parentRouting({ ...base, method: { ...method, name: 'head' }, layer: 0 }), /SPARTAN memory/);

  // The CLI on a saved memory gives the same report.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-routes-'));
  const memory = path.join(dir, 'm.safetensors');
  const data = path.join(dir, 'd.jsonl');
  fs.writeFileSync(data, rows.map((r) => JSON.stringify({ text: r.text, label: r.label })).join('\n') + '\n');
  saveMemory(
    memory,
    trained.tensors,
    {
      formatVersion: MEMORY_FORMAT_VERSION,
      method: 'spartan',
      backbone: { name: backbone.id, sha256: backbone.weightsSha256 },
      tokenizerHash: backbone.tokenizerHash,
      task: 'classification',
      labels: task.labels,
      hyperparameters: { ...method.geometry, trainLayerNorms: true, maxLength: 32 },
      metrics: {},
      createdAt: new Date().toISOString(),
    },
    'float32',
  );
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'src/cli/main.ts'),
      'routes',
      '--memory',
      memory,
      '--data',
      data,
      '--layer',
      '1',
      '--backbone',
      'synthetic:tiny',
      '--threads',
      '1',
      '--json',
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const cli = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(cli).sort(), ['counts', 'labels', 'layer', 'meanGate', 'parents', 'tokens', 'topK']);
  assert.deepEqual(cli.labels, layer1.labels);
  assert.deepEqual(cli.tokens, layer1.tokens);
  cli.counts.forEach((row: number[], k: number) => row.forEach((v, p) => assert.ok(Math.abs(v - layer1.counts[k][p]) < 1e-9)));
  cli.meanGate.forEach((row: number[], k: number) => row.forEach((v, p) => assert.ok(Math.abs(v - layer1.meanGate[k][p]) < 1e-6)));
});
