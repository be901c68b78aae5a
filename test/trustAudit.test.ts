/**
 * The audit's scores, fold repetitions and inner dev share; audit refusing a multi-label file with a clear
 * message; the editor's JSONL problems for unlabelled rows; and the data-set builders of the trust measurements
 * (planted flips, corpus sections from PROVENANCE.md's byte counts, Debian descriptions by section from apt's lists,
 * multi-label rows and their baselines).
 * Model runs use synthetic:tiny, seconds each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import {
  auditLabels,
  methodSpec,
  inferTask,
  jsonlEditorProblems,
  loadBackbone,
  loadTokenizer,
  outOfFoldProbabilities,
  rankSuspects,
  suspectScore,
  parseJsonlText,
  SpartanError,
} from '../src/engine';
import type { Example, TrainConfig } from '../src/engine';
import { corpusParagraphs, corpusRows, debianRows, multiLabelBaselines, multiLabelRows, plantFlips } from '../src/lab/trust/sets';

test('audit scores: self-confidence, normalized margin, threshold-adjusted margin; rows ordered by the chosen one', () => {
  const t = [0.5, 0.2, 0.3];
  const p = [0.3, 0.45, 0.25];
  assert.equal(suspectScore(p, 0, t, 'self-confidence'), 0.3);
  assert.ok(Math.abs(suspectScore(p, 0, t, 'normalized-margin') - (0.3 - 0.45)) < 1e-12);
  // (0.3 − 0.5) − max(0.45 − 0.2, 0.25 − 0.3) = −0.2 − 0.25
  assert.ok(Math.abs(suspectScore(p, 0, t, 'adjusted-margin') - -0.45) < 1e-12);

  // Row 1 has the lower p(label) (0.35 < 0.4), row 2 the lower margin (0.4 − 0.6 < 0.35 − 0.33): the orders differ.
  const probs = [
    [0.35, 0.33, 0.32],
    [0.4, 0.6, 0],
    [0.9, 0.05, 0.05],
  ];
  const given = [0, 0, 0];
  const lines = [1, 2, 3];
  const labels = ['a', 'b', 'c'];
  const bySelf = rankSuspects(probs, given, labels, lines, 'self-confidence').rows;
  const byMargin = rankSuspects(probs, given, labels, lines, 'normalized-margin').rows;
  assert.deepEqual(
    bySelf.map((r) => r.line),
    [1, 2, 3],
  );
  assert.deepEqual(
    byMargin.map((r) => r.line),
    [2, 1, 3],
  );
  assert.ok(Math.abs(byMargin[0].score - -0.2) < 1e-12);
  assert.equal(rankSuspects(probs, given, labels, lines).rows[0].score, 0.35, 'self-confidence by default');
  for (const rows of [bySelf, byMargin]) for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].score <= rows[i].score);
});

test('audit refuses a multi-label file with a message that says so (and names the file)', async () => {
  const rows: Example[] = [
    { text: 'a b', label: ['x'], line: 1 },
    { text: 'c d', label: ['x', 'y'], line: 2 },
    { text: 'e f', label: [], line: 3 },
  ];
  await assert.rejects(
    auditLabels({
      backbone: undefined as never,
      tokenizer: undefined as never,
      task: inferTask(rows, 'topics.jsonl'),
      rows,
      file: 'topics.jsonl',
      folds: 2,
      config: {} as TrainConfig,
    }),
    (e: unknown) => e instanceof SpartanError && /^topics\.jsonl: audit does not support multi-label files/.test(e.message),
  );
});

test(
  'out-of-fold probabilities: folds × repeats memories, an inner dev share fits a temperature per fold',
  { timeout: 120_000 },
  async () => {
    const backbone = await loadBackbone('synthetic:tiny');
    const tokenizer = loadTokenizer(backbone.tokenizerDir);
    const words = { pos: ['good', 'great', 'fine', 'nice'], neg: ['bad', 'awful', 'poor', 'sad'] };
    const rows: Example[] = Array.from({ length: 40 }, (_, i) => {
      const label = i % 2 ? 'pos' : 'neg';
      const w = words[label];
      return { text: `${w[i % 4]} ${w[(i + 1) % 4]} movie`, label, line: i + 1 };
    });
    const task = inferTask(rows, 'toy.jsonl');
    const config: TrainConfig = {
      method: methodSpec('head'),
      epochs: 4,
      batchSize: 8,
      maxLength: 16,
      optimizer: 'adamw',
      lr: 0.01,
      weightDecay: 0,
      warmupRatio: 0,
      clipNorm: 1,
      dropout: 0,
      seed: 1,
      shuffle: true,
      bucket: false,
      threads: 1,
      patience: 2,
    };
    const folds: number[] = [];
    const oof = await outOfFoldProbabilities({
      backbone,
      tokenizer,
      task,
      rows,
      file: 'toy.jsonl',
      folds: 2,
      repeats: 2,
      devShare: 0.25,
      minDevRows: 1,
      config,
      onEvent: (e) => {
        if (e.event === 'fold') {
          folds.push(e.fold);
          // 20 rows outside the fold, a quarter of them (5) held out as inner dev rows.
          assert.equal(e.trainRows, 15);
          assert.equal(e.heldOutRows, 20);
          assert.equal(e.folds, 4);
        }
      },
    });
    assert.deepEqual(folds, [1, 2, 3, 4]);
    assert.equal(oof.temperatures.length, 4);
    assert.ok(
      oof.temperatures.some((t) => t !== 1),
      `inner dev rows fit temperatures: ${oof.temperatures}`,
    );
    for (const e of oof.bestEpochs) assert.ok(e >= 1 && e <= 4, `best epoch ${e}`);
    assert.equal(oof.probs.length, rows.length);
    for (const p of oof.probs) {
      assert.equal(p.length, 2);
      assert.ok(Math.abs(p[0] + p[1] - 1) < 1e-9, `probabilities sum to 1: ${p}`);
    }
    // With fewer inner dev rows than the minimum (5 < 40), every fold runs all its epochs and stays at T = 1.
    const plain = await outOfFoldProbabilities({ backbone, tokenizer, task, rows, file: 'toy.jsonl', folds: 2, devShare: 0.25, config });
    assert.deepEqual(plain.temperatures, [1, 1]);
    assert.deepEqual(plain.bestEpochs, [4, 4]);
    await assert.rejects(
      outOfFoldProbabilities({ backbone, tokenizer, task, rows, file: 'toy.jsonl', folds: 2, repeats: 0, config }),
      /--repeats must be an integer ≥ 1/,
    );
  },
);

test('editor problems: an unlabelled file has none, a mixed file an info hint per unlabelled row, bad rows stay errors', () => {
  assert.deepEqual(jsonlEditorProblems('{"text": "a"}\n{"text": "b"}\n', 'u.jsonl'), []);
  const mixed = jsonlEditorProblems('{"text": "a", "label": "x"}\n{"text": "b"}\n{"text": "c", "label": "y"}\n{"text": 3}\n', 'm.jsonl');
  assert.deepEqual(
    mixed.map((p) => [p.line, p.severity]),
    [
      [2, 'info'],
      [4, 'error'],
    ],
  );
  assert.match(mixed[0].message, /no "label": Suggest Rows to Label .* takes this row, but training and audit refuse it/);
  // Unlabelled rows with a broken row among them: the broken one is still an error.
  assert.deepEqual(
    jsonlEditorProblems('{"text": "a"}\n{"text": "b"\n', 'u.jsonl').map((p) => [p.line, p.severity]),
    [[2, 'error']],
  );
  // Training's own parser keeps refusing a row without a label.
  assert.deepEqual(
    parseJsonlText('{"text": "a"}\n', 'u.jsonl').problems.map((p) => [p.line, p.severity, p.message]),
    [[1, 'error', 'missing "label"']],
  );
});

test('planted flips: the seeded share, each moved to another label; multi-label rows of one or two labels', () => {
  const rows = Array.from({ length: 200 }, (_, i) => ({ text: `t${i}`, label: ['a', 'b', 'c'][i % 3] }));
  const { noisy, flipped } = plantFlips(rows, 0.05, 5);
  assert.equal(flipped.size, 10);
  noisy.forEach((r, i) => (flipped.has(i) ? assert.notEqual(r.label, rows[i].label) : assert.equal(r, rows[i])));
  assert.deepEqual(plantFlips(rows, 0.05, 5).flipped, flipped, 'seeded');

  const ml = multiLabelRows(rows, 1);
  const used = ml.flatMap((r) => r.text.split(' '));
  assert.deepEqual([...used].sort(), rows.map((r) => r.text).sort(), 'every source row used once');
  for (const r of ml) {
    assert.ok(r.label.length === 1 || r.label.length === 2);
    assert.equal(new Set(r.label).size, r.label.length, 'two labels are different ones');
    assert.deepEqual(r.label, [...r.label].sort());
  }
  const pairs = ml.filter((r) => r.label.length === 2).length;
  assert.ok(pairs > ml.length * 0.25 && pairs < ml.length * 0.75, `${pairs} pairs of ${ml.length}`);

  // Baselines on a hand-checkable case: 2 labels, dev rows [a], [a, b]; every label: tp 3, fp 1 → F1 6/7.
  const base = multiLabelBaselines(
    [{ label: ['a'] }, { label: ['a'] }, { label: ['b'] }],
    [{ label: ['a'] }, { label: ['a', 'b'] }],
    ['a', 'b'],
  );
  assert.ok(Math.abs(base.everyLabel.microF1 - 6 / 7) < 1e-12);
  assert.deepEqual(base.mostFrequentSet.set, ['a']);
  // [a] on both rows: tp 2, fn 1 → F1 4/5; subset accuracy 1/2.
  assert.ok(Math.abs(base.mostFrequentSet.microF1 - 0.8) < 1e-12);
  assert.equal(base.mostFrequentSet.subsetAccuracy, 0.5);
});

test('corpus sections: files in SHA-256 order of their paths, byte counts from PROVENANCE.md', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-corpus-'));
  const files = [
    { file: 'texts/gutenberg/a.txt', text: 'once upon a time there was a king\n\nand a queen too\n' },
    { file: 'texts/wikipedia/b.txt', text: 'the city has a population of ten\n' },
    { file: 'texts/debian-docs/c.txt', text: 'run apt-get install to add a package\n' },
  ];
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const ordered = [...files].sort((a, b) => (sha(a.file) < sha(b.file) ? -1 : 1));
  fs.writeFileSync(path.join(dir, 'corpus.txt.gz'), zlib.gzipSync(ordered.map((f) => f.text).join('\n')));
  const table = files.map((f) => `| \`${f.file}\` | src | path | licence | ${Buffer.byteLength(f.text).toLocaleString('en-US')} | 7 |`);
  fs.writeFileSync(
    path.join(dir, 'PROVENANCE.md'),
    `# Provenance\n\n| file | source | path in source | licence | bytes | words |\n|---|---|---|---|---:|---:|\n${table.join('\n')}\n`,
  );
  const paragraphs = corpusParagraphs(dir);
  assert.deepEqual(paragraphs.map((p) => [p.section, p.text]).sort(), [
    ['debian-docs', 'run apt-get install to add a package'],
    ['gutenberg', 'and a queen too'],
    ['gutenberg', 'once upon a time there was a king'],
    ['wikipedia', 'the city has a population of ten'],
  ]);
  const rows = corpusRows(paragraphs, 1, { minWords: 5, maxWords: 10, seed: 1 });
  assert.deepEqual(rows.map((r) => r.label).sort(), ['debian-docs', 'gutenberg', 'wikipedia']);
  assert.throws(() => corpusRows(paragraphs, 2, { minWords: 5, maxWords: 10, seed: 1 }), /section debian-docs: only 1 paragraphs/);
  // A table that does not add up to the file is refused.
  fs.writeFileSync(path.join(dir, 'corpus.txt.gz'), zlib.gzipSync('short\n'));
  assert.throws(() => corpusParagraphs(dir), /add up to/);
});

test('Debian rows: descriptions joined from Packages and Translation-en, labelled by section; shared or duplicated texts handled', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-apt-'));
  const pkg = (name: string, section: string, md5: string) =>
    `Package: ${name}\nVersion: 1\nDescription: short\nDescription-md5: ${md5}\nSection: ${section}\n`;
  const tr = (name: string, md5: string, desc: string) => `Package: ${name}\nDescription-md5: ${md5}\nDescription-en: ${desc}\n`;
  fs.writeFileSync(
    path.join(dir, 'deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages'),
    [
      pkg('ed', 'editors', 'a1'),
      pkg('vim', 'editors', 'a2'),
      pkg('vim-tiny', 'editors', 'a2'), // same description as vim: kept once
      pkg('gimp', 'graphics', 'b1'),
      pkg('libfoo1', 'libs', 'c1'),
      pkg('libfoo-dev', 'libdevel', 'c1'), // the same text under two sections: dropped
      pkg('nonfree', 'non-free/graphics', 'b2'),
      pkg('nodesc', 'editors', 'zz'), // no translation: skipped
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'deb.debian.org_debian_dists_bookworm_main_i18n_Translation-en'),
    [
      tr('ed', 'a1', 'line editor\n ed is a line-oriented\n .\n text editor.'),
      tr('vim', 'a2', 'Vi IMproved\n an editor.'),
      tr('vim-tiny', 'a2', 'Vi IMproved\n an editor.'),
      tr('gimp', 'b1', 'image editor\n paint and retouch.'),
      tr('nonfree', 'b2', 'a viewer\n for images.'),
      tr('libfoo1', 'c1', 'foo\n the foo library.'),
      tr('libfoo-dev', 'c1', 'foo\n the foo library.'),
    ].join('\n'),
  );
  const rows = debianRows(dir, 2, { labels: 2, seed: 1 });
  assert.deepEqual(rows.map((r) => [r.label, r.text]).sort(), [
    ['editors', 'Vi IMproved. an editor.'],
    ['editors', 'line editor. ed is a line-oriented text editor.'],
    ['graphics', 'a viewer. for images.'],
    ['graphics', 'image editor. paint and retouch.'],
  ]);
  assert.throws(() => debianRows(dir, 3, { labels: 2, seed: 1 }), /Debian section editors: only 2 descriptions/);
  assert.throws(() => debianRows(os.tmpdir(), 1, { labels: 1, seed: 1 }), /no main binary-amd64_Packages list/);
  fs.rmSync(dir, { recursive: true });
});
