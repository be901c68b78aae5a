/**
 * Issue 11's commands end to end on the embedded backbone (models/roberta-mini): eval's confusion, per-label
 * scores and calibration; audit finding planted label flips, and cancelled by SIGTERM; rank on unlabelled rows;
 * a multi-label round trip (train, eval, classify, export); the model card; bad multi-label input at its line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { repoRoot } from '../src/engine/models/backbone';
import { loadTokenizer } from '../src/engine/tokenizers/robertaTokenizer';
import { createRng } from '../src/engine/util/random';
import type { AuditResult, ClassificationEval, MultiLabelEval, RankResult } from '../src/protocol/results';

const ROOT = repoRoot();
const CLI = path.join(ROOT, 'bin', 'spartan.js');
const skip = fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) ? false : 'run `npm run build` first';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-trust-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): { status: number; stdout: string; stderr: string; json?: any } {
  const r = spawnSync(process.execPath, [CLI, ...args, ...(args[0] === 'card' ? [] : ['--threads', '2'])], { encoding: 'utf8' });
  let json: any;
  try {
    json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    json = undefined;
  }
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}

function write(name: string, rows: object[]): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return p;
}

const POS = ['good', 'great', 'excellent', 'wonderful'];
const NEG = ['bad', 'awful', 'terrible', 'horrible'];
/** An easy sentiment task: the label is the word's side; `seed` picks the words. */
function sentiment(n: number, seed: number): { text: string; label: string }[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const words = i % 2 ? POS : NEG;
    const w = words[Math.floor(rng.next() * words.length)];
    return { text: `${w} ${w} ${w}`, label: i % 2 ? 'pos' : 'neg' };
  });
}

/**
 * The same words with 20 % of the labels flipped and a row number: the head alone, trained hard on it, fits the
 * noise and is over-confident on other rows of the same kind, which is what temperature scaling corrects.
 */
function noisy(n: number, seed: number): { text: string; label: string }[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const words = i % 2 ? POS : NEG;
    const w = words[Math.floor(rng.next() * words.length)];
    const flip = rng.next() < 0.2;
    return { text: `${w} ${words[Math.floor(rng.next() * words.length)]} item ${i}`, label: (i % 2 === 1) !== flip ? 'pos' : 'neg' };
  });
}

test(
  'eval: confusion sums to the rows, trace / rows = accuracy; calibration lowers ECE on a held-out file',
  { skip, timeout: 120_000 },
  () => {
    const trainRows = noisy(48, 1);
    const train = write('s.train.jsonl', trainRows);
    const dev = write('s.dev.jsonl', noisy(64, 2));
    const held = write('s.held.jsonl', noisy(64, 3));
    const memory = path.join(tmp, 's.safetensors');
    const t = run([
      'train',
      '--data',
      train,
      '--dev',
      dev,
      '--out',
      memory,
      '--method',
      'head',
      '--epochs',
      '8',
      '--lr',
      '0.1',
      '--dropout',
      '0',
      '--patience',
      '0',
      '--batch-size',
      '8',
      '--seed',
      '4',
      '--json',
    ]);
    assert.equal(t.status, 0, t.stderr);
    assert.equal(t.json.calibration.fitted, true);
    assert.ok(t.json.calibration.temperature > 0);

    const e = run(['eval', '--memory', memory, '--data', held, '--json']);
    assert.equal(e.status, 0, e.stderr);
    const r = e.json as ClassificationEval;
    assert.equal(r.task, 'classification');
    const total = r.confusion.matrix.flat().reduce((a, b) => a + b, 0);
    assert.equal(total, r.rows);
    const trace = r.confusion.matrix.reduce((s, row, i) => s + row[i], 0);
    assert.ok(Math.abs(trace / total - r.accuracy) < 1e-12, `trace/rows ${trace / total} vs accuracy ${r.accuracy}`);
    assert.deepEqual(r.confusion.labels, ['neg', 'pos']);
    assert.equal(r.confusion.lines!.flat(2).length, r.rows, 'every row is listed in one cell');
    assert.equal(r.per_label.neg.support + r.per_label.pos.support, r.rows);
    assert.equal(r.reliability.length, 15);
    console.log(
      `# held-out ece ${r.ece.toFixed(4)} (uncalibrated ${r.ece_uncalibrated.toFixed(4)}), T ${r.temperature.toFixed(3)}, accuracy ${r.accuracy}`,
    );
    assert.ok(r.ece < 0.5 * r.ece_uncalibrated, `calibrated ece ${r.ece} should be well below the uncalibrated ${r.ece_uncalibrated}`);

    // The human output prints both tables.
    const h = run(['eval', '--memory', memory, '--data', held]);
    assert.equal(h.status, 0, h.stderr);
    assert.match(h.stdout, /label\s+precision\s+recall\s+f1\s+support/);
    assert.match(h.stdout, /confusion \(rows: true label, columns: predicted\)/);

    // The model card: beside the memory, with the data's hash and the command.
    const c = run(['card', '--memory', memory, '--json']);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.json.card, path.join(tmp, 's.md'));
    const card = fs.readFileSync(c.json.card, 'utf8');
    const sha = spawnSync('sha256sum', [train], { encoding: 'utf8' }).stdout.split(' ')[0];
    assert.ok(card.includes(sha), 'the card names the training file by its sha256');
    assert.match(card, new RegExp(`\\| neg \\| ${trainRows.filter((r) => r.label === 'neg').length} \\|`));
    assert.match(card, /spartan train --data \S+s\.train\.jsonl --dev/);
    assert.match(card, new RegExp(`T = ${t.json.calibration.temperature.toFixed(4)}`));

    // rank: rows without labels are accepted, ordered by margin ascending.
    const unlabelled = write(
      's.unlabelled.jsonl',
      sentiment(12, 4).map((r) => ({ text: r.text })),
    );
    const k = run(['rank', '--memory', memory, '--data', unlabelled, '--json']);
    assert.equal(k.status, 0, k.stderr);
    const ranked = k.json as RankResult;
    assert.equal(ranked.rows.length, 12);
    for (let i = 1; i < ranked.rows.length; i++) assert.ok(ranked.rows[i - 1].margin <= ranked.rows[i].margin, 'margin ascending');
    for (const row of ranked.rows) {
      assert.ok(row.entropy >= 0 && row.entropy <= Math.log(2) + 1e-9);
      assert.ok(['neg', 'pos'].includes(row.predicted as string));
    }
  },
);

test('audit ranks planted label flips first (k-fold, out of fold)', { skip, timeout: 120_000 }, () => {
  const rows = sentiment(80, 3);
  const rng = createRng(9);
  const flipped = new Set<number>();
  while (flipped.size < 8) flipped.add(Math.floor(rng.next() * rows.length));
  for (const i of flipped) rows[i].label = rows[i].label === 'pos' ? 'neg' : 'pos';
  const data = write('noisy.jsonl', rows);
  const a = run([
    'audit',
    '--data',
    data,
    '--folds',
    '4',
    '--method',
    'head',
    '--lr',
    '0.01',
    '--epochs',
    '20',
    '--dropout',
    '0',
    '--json',
  ]);
  assert.equal(a.status, 0, a.stderr);
  const r = a.json as AuditResult;
  assert.equal(r.rows.length, rows.length);
  const top = r.rows.slice(0, flipped.size);
  const hits = top.filter((x) => flipped.has(x.line - 1)).length;
  console.log(`# audit: ${hits} of the top ${flipped.size} rows are planted flips; ${r.issues} flagged`);
  assert.ok(hits >= 6, `only ${hits} of the top ${flipped.size} are flipped rows: ${top.map((x) => x.line)}`);
  for (let i = 1; i < r.rows.length; i++) assert.ok(r.rows[i - 1].p_label <= r.rows[i].p_label);
  for (const x of top) assert.equal(x.label, rows[x.line - 1].label);
  // Progress: fold events and step events that say their fold.
  const events = a.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    events.filter((e) => e.event === 'fold').map((e) => e.fold),
    [1, 2, 3, 4],
  );
  assert.ok(events.some((e) => e.event === 'step' && e.fold === 4));
});

test('audit stops on SIGTERM with a one-line message', { skip, timeout: 60_000 }, async () => {
  const data = write('cancel.jsonl', sentiment(64, 5));
  const child = spawn(process.execPath, [CLI, 'audit', '--data', data, '--epochs', '50', '--json', '--threads', '2']);
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const status = await new Promise<number | null>((resolve) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes('"event":"step"') && !child.killed) child.kill('SIGTERM');
    });
    child.on('exit', (code) => resolve(code));
  });
  assert.equal(status, 1, stderr);
  assert.match(JSON.parse(stdout.trim()).error, /audit interrupted/);
});

test('multi-label: train, eval (micro/macro F1, subset accuracy), classify and export agree', { skip, timeout: 120_000 }, async () => {
  const tags = ['money', 'sport', 'tech'];
  const words: Record<string, string> = { money: 'bank price', sport: 'football goal', tech: 'computer code' };
  const rowsOf = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, j) => {
      const i = from + j;
      const label = tags.filter((_, b) => (i >> b) & 1);
      return { text: `${label.map((t) => words[t]).join(' ') || 'nothing at all'} number ${i}`, label };
    });
  const train = write('ml.train.jsonl', rowsOf(0, 48));
  const dev = write('ml.dev.jsonl', rowsOf(48, 64));
  const memory = path.join(tmp, 'ml.safetensors');
  const t = run(['train', '--data', train, '--dev', dev, '--out', memory, '--epochs', '2', '--batch-size', '8', '--json']);
  assert.equal(t.status, 0, t.stderr);
  assert.equal(t.json.task, 'multilabel');
  assert.deepEqual(Object.keys(t.json.calibration.thresholds), tags);

  const e = run(['eval', '--memory', memory, '--data', dev, '--json']);
  assert.equal(e.status, 0, e.stderr);
  const r = e.json as MultiLabelEval;
  for (const k of ['micro_f1', 'macro_f1', 'subset_accuracy', 'ece', 'ece_uncalibrated'] as const) assert.ok(r[k] >= 0 && r[k] <= 1, k);
  assert.deepEqual(Object.keys(r.per_label), tags);
  const macro = tags.reduce((s, l) => s + r.per_label[l].f1, 0) / tags.length;
  assert.ok(Math.abs(macro - r.macro_f1) < 1e-12);

  const c = run(['classify', '--memory', memory, '--text', 'football goal number 2', '--json']);
  assert.equal(c.status, 0, c.stderr);
  assert.ok(Array.isArray(c.json.labels));
  assert.deepEqual(Object.keys(c.json.probabilities), tags);
  for (const l of c.json.labels) assert.ok(c.json.probabilities[l] >= r.thresholds[l]);

  // The exported model's probabilities are σ(logits / T), the ones classify reports.
  const onnx = path.join(tmp, 'ml.onnx');
  const x = run(['export', '--memory', memory, '--onnx', onnx, '--json']);
  assert.equal(x.status, 0, x.stderr);
  const ids = loadTokenizer(path.join(ROOT, 'models', 'roberta-mini')).encode('football goal number 2', undefined, 128).ids;
  const session = await ort.InferenceSession.create(onnx);
  const out = await session.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
  });
  await session.release();
  const probs = out.probabilities.data as Float32Array;
  tags.forEach((l, k) =>
    assert.ok(Math.abs(probs[k] - c.json.probabilities[l]) < 1e-5, `${l}: exported ${probs[k]} vs classify ${c.json.probabilities[l]}`),
  );

  // A single-label row in the multi-label file (and a multi-label dev row against a single-label memory) is
  // reported at its line, not a crash.
  const mixed = path.join(tmp, 'ml.mixed.jsonl');
  fs.writeFileSync(mixed, fs.readFileSync(train, 'utf8') + JSON.stringify({ text: 'a stray row', label: 'sport' }) + '\n');
  const bad = run(['train', '--data', mixed, '--out', path.join(tmp, 'never.safetensors'), '--steps', '1']);
  assert.equal(bad.status, 1);
  assert.match(
    bad.stderr,
    new RegExp(
      `${mixed.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:49: label "sport" is a single label, but 48 other rows have a list of labels`,
    ),
  );
  assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/, 'no stack trace');
  const single = path.join(tmp, 's.safetensors');
  if (fs.existsSync(single)) {
    const wrongKind = run(['eval', '--memory', single, '--data', dev]);
    assert.equal(wrongKind.status, 1);
    assert.match(wrongKind.stderr, /ml\.dev\.jsonl:1: label \[\] is a list \(multi-label\), but the training file has one label per row/);
  }
});
