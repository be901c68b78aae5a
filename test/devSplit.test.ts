/**
 * The dev share is one function (`engine/data/devSplit.ts`) for the CLI's `--dev-share` and the extension's
 * `spartan.training.devShare`: the split is stratified per label, and both paths hold out the same rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { splitRows } from '../src/engine/data/devSplit';
import { splitRows as extensionSplit, writeRows } from '../src/extension/datasets';
import { parseJsonlText } from '../src/engine/data/jsonl';
import { repoRoot } from '../src/engine/models/backbone';
import { createRng } from '../src/engine/util/random';

const ROOT = repoRoot();
const CLI = path.join(ROOT, 'bin', 'spartan.js');
const skip = fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) ? false : 'run `npm run build` first';

test('the extension holds out its dev rows with the engine function', () => {
  assert.equal(extensionSplit, splitRows);
});

test('stratified: each label keeps its share in dev and at least one training row; file order; seeded', () => {
  const labels = ['a', 'a', 'a', 'a', 'a', 'a', 'a', 'b', 'b', 'c'];
  const rows = Array.from({ length: 200 }, (_, i) => ({ line: i + 1, label: labels[i % labels.length] }));
  const s = splitRows(rows, 0.2, 42, false);
  for (const l of ['a', 'b', 'c']) {
    const all = rows.filter((r) => r.label === l).length;
    assert.equal(s.dev.filter((r) => r.label === l).length, Math.round(all * 0.2), `label ${l}`);
    assert.ok(s.train.some((r) => r.label === l));
  }
  assert.deepEqual(
    [...s.train, ...s.dev].map((r) => r.line).sort((p, q) => p - q),
    rows.map((r) => r.line),
  );
  assert.deepEqual(
    s.dev.map((r) => r.line),
    [...s.dev.map((r) => r.line)].sort((p, q) => p - q),
  );
  assert.deepEqual(splitRows(rows, 0.2, 42, false), s);
  assert.notDeepEqual(splitRows(rows, 0.2, 43, false).dev, s.dev);
  // A label with one row stays in training; multi-label rows group by label set.
  const rare = splitRows([...rows, { line: 201, label: 'd' }], 0.5, 1, false);
  assert.ok(rare.train.some((r) => r.label === 'd'));
  // (one group of 3 holds out round(1.5) = 2; groups of 1 and 2 would hold out 0 + 1)
  const multi = splitRows(
    [
      { line: 1, label: ['x', 'y'] },
      { line: 2, label: ['y', 'x'] },
      { line: 3, label: ['y', 'x'] },
    ],
    0.5,
    3,
    false,
  );
  assert.equal(multi.dev.length, 2);
});

test('CLI --dev-share and the extension hold out the same rows (same dev metrics)', { skip, timeout: 180_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-split-'));
  try {
    // Regression with random targets: the dev Pearson correlation is a fingerprint of which rows were held out.
    const rng = createRng(11);
    const text =
      Array.from({ length: 40 }, (_, i) =>
        JSON.stringify({ text: `row ${i} ${['alpha', 'beta', 'gamma'][i % 3]} ${i * 7}`, label: Math.round(rng.next() * 1000) / 100 }),
      ).join('\n') + '\n';
    const data = path.join(tmp, 'data.jsonl');
    fs.writeFileSync(data, text);
    const out = path.join(tmp, 'm.safetensors');
    const common = ['--backbone', 'synthetic:tiny', '--threads', '1', '--json'];
    const t = spawnSync(
      process.execPath,
      [
        CLI,
        'train',
        '--data',
        data,
        '--out',
        out,
        '--dev-share',
        '0.25',
        '--seed',
        '5',
        '--steps',
        '2',
        '--batch-size',
        '8',
        '--dtype',
        'float32',
        ...common,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(t.status, 0, t.stderr);
    const trained = JSON.parse(t.stdout.trim().split('\n').pop()!);

    // The extension's path: parse the buffer, split with its settings, write the dev rows for the CLI.
    const { rows } = parseJsonlText(text, data);
    const split = extensionSplit(rows, 0.25, 5, true);
    const dev = writeRows(text, split.dev, tmp, 'dev.jsonl');
    const e = spawnSync(process.execPath, [CLI, 'eval', '--memory', out, '--data', dev, ...common], { encoding: 'utf8' });
    assert.equal(e.status, 0, e.stderr);
    const evaluated = JSON.parse(e.stdout.trim().split('\n').pop()!);
    assert.equal(evaluated.rows, split.dev.length);
    for (const k of ['pearson', 'spearman']) {
      assert.ok(Number.isFinite(trained.metrics[k]), `train reports ${k}`);
      assert.ok(Math.abs(trained.metrics[k] - evaluated[k]) < 1e-5, `${k}: CLI dev ${trained.metrics[k]} vs extension dev ${evaluated[k]}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
