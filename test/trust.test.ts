/**
 * Calibration, error analysis and multi-label rows, on hand-checkable numbers (no model): ECE over 15 bins,
 * temperature scaling on over-confident logits, confusion matrix and per-label scores, multi-label metrics and
 * thresholds, and the JSONL diagnostics of a file mixing single- and multi-label rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  calibrateSigmoid,
  calibrateSoftmax,
  eceOfBins,
  fitTemperature,
  reliabilityBins,
  softmaxNll,
  softmaxReliability,
  softmaxWithTemperature,
  tuneThreshold,
} from '../src/engine/training/calibration';
import { confusionMatrix, multiLabelMetrics, perLabelScores } from '../src/engine/training/errorAnalysis';
import { accuracy } from '../src/engine/training/metrics';
import { checkDevLabels, inferTask, parseJsonlText, parseUnlabelledJsonlText } from '../src/engine/data/jsonl';
import { createRng } from '../src/engine/util/random';

test('ECE of a hand-checkable case: two bins, |accuracy − confidence| weighted by their share of rows', () => {
  // 0.9, 0.9 fall in bin 13 (0.867, 0.933]: accuracy 1/2 → |0.5 − 0.9| = 0.4; 0.55, 0.55 in bin 8 (0.533, 0.6]:
  // accuracy 1 → 0.45. Each bin holds half the rows: ECE = 0.5·0.4 + 0.5·0.45 = 0.425.
  const bins = reliabilityBins([0.9, 0.9, 0.55, 0.55], [true, false, true, true]);
  assert.equal(bins.length, 15);
  assert.equal(bins[13].count, 2);
  assert.equal(bins[8].count, 2);
  assert.ok(Math.abs(eceOfBins(bins) - 0.425) < 1e-12, `ece ${eceOfBins(bins)}`);
  // A confidence of exactly 1 lands in the last bin, 0 in the first.
  const edges = reliabilityBins([1, 0], [true, false]);
  assert.equal(edges[14].count, 1);
  assert.equal(edges[0].count, 1);
  // Perfectly calibrated: every bin's accuracy equals its confidence.
  assert.equal(eceOfBins(reliabilityBins([0.5, 0.5], [true, false])), 0);
});

/** Logits of a 3-class model that is right 70 % of the time but says so with ~99 % confidence. */
function overconfident(n: number, seed: number): { logits: Float32Array[]; gold: number[] } {
  const rng = createRng(seed);
  const logits: Float32Array[] = [];
  const gold: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = Math.floor(rng.next() * 3);
    const top = rng.next() < 0.7 ? y : (y + 1 + Math.floor(rng.next() * 2)) % 3;
    const z = new Float32Array(3).map(() => rng.normal());
    z[top] += 6;
    logits.push(z);
    gold.push(y);
  }
  return { logits, gold };
}

test('temperature scaling fitted on one held-out set lowers NLL and ECE on another, accuracy unchanged', () => {
  const fit = overconfident(600, 1);
  const held = overconfident(600, 2);
  const c = calibrateSoftmax(fit.logits, fit.gold, 'fit rows');
  assert.ok(c.fitted && c.temperature > 1.5, `an over-confident model needs T > 1, got ${c.temperature}`);
  assert.ok(c.nll!.calibrated < c.nll!.uncalibrated);
  const ece = (t: number) =>
    eceOfBins(
      softmaxReliability(
        held.logits.map((l) => softmaxWithTemperature(l, t)),
        held.gold,
      ),
    );
  const nllBefore = softmaxNll(held.logits, held.gold, 1),
    nllAfter = softmaxNll(held.logits, held.gold, c.temperature);
  assert.ok(nllAfter < 0.8 * nllBefore, `held-out NLL ${nllBefore} → ${nllAfter}`);
  assert.ok(ece(c.temperature) < 0.5 * ece(1), `held-out ECE ${ece(1)} → ${ece(c.temperature)}`);
  // The golden-section search finds the minimum of a convex function of log T.
  const t = fitTemperature((x) => (Math.log(x) - Math.log(3)) ** 2);
  assert.ok(Math.abs(t - 3) < 1e-4, `argmin ${t}`);
});

test('confusion matrix: sums to the rows, trace / rows = accuracy, lines per cell; per-label scores as sklearn', () => {
  const gold = [0, 0, 0, 1, 1, 2, 2, 2, 2];
  const pred = [0, 1, 0, 1, 2, 2, 2, 0, 2];
  const lines = gold.map((_, i) => 10 + i);
  const c = confusionMatrix(pred, gold, ['a', 'b', 'c'], lines);
  const total = c.matrix.flat().reduce((a, b) => a + b, 0);
  assert.equal(total, gold.length);
  const trace = c.matrix.reduce((s, row, i) => s + row[i], 0);
  assert.equal(trace / total, accuracy(pred, gold));
  assert.deepEqual(c.matrix, [
    [2, 1, 0],
    [0, 1, 1],
    [1, 0, 3],
  ]);
  assert.deepEqual(c.lines![2][0], [17]);
  assert.deepEqual(c.lines![0][1], [11]);
  const s = perLabelScores(c);
  // class c: tp 3, fp 1 (a row of b), fn 1 → precision 3/4, recall 3/4, f1 3/4, support 4.
  assert.deepEqual(s.c, { precision: 0.75, recall: 0.75, f1: 0.75, support: 4 });
  assert.deepEqual(s.b, { precision: 0.5, recall: 0.5, f1: 0.5, support: 2 });
});

test('multi-label metrics: micro/macro F1 and subset accuracy; thresholds tuned per label', () => {
  const gold = [
    [true, false],
    [true, true],
    [false, false],
    [false, true],
  ];
  const pred = [
    [true, false],
    [true, false],
    [false, true],
    [false, true],
  ];
  const m = multiLabelMetrics(pred, gold, ['x', 'y']);
  // x: tp 2 → f1 1; y: tp 1, fp 1, fn 1 → f1 1/2. micro: tp 3, fp 1, fn 1 → 6/8.
  assert.equal(m.per_label.x.f1, 1);
  assert.equal(m.per_label.y.f1, 0.5);
  assert.equal(m.macro_f1, 0.75);
  assert.equal(m.micro_f1, 0.75);
  assert.equal(m.subset_accuracy, 0.5);
  // A label present exactly when p ≥ 0.3: the tuned threshold separates them.
  const p = [0.1, 0.2, 0.31, 0.35, 0.4, 0.25];
  assert.equal(
    tuneThreshold(
      p,
      p.map((v) => v >= 0.3),
    ),
    0.3,
  );
  const c = calibrateSigmoid(
    [new Float32Array([2, -2]), new Float32Array([3, 1]), new Float32Array([-1, -3])],
    [
      [1, 0],
      [1, 1],
      [0, 0],
    ],
    ['x', 'y'],
    'dev',
  );
  assert.deepEqual(Object.keys(c.thresholds!), ['x', 'y']);
  assert.ok(c.nll!.calibrated <= c.nll!.uncalibrated + 1e-12);
});

test('JSONL: multi-label rows, and a single-label row in a multi-label file (and the reverse) at its line', () => {
  const ml = parseJsonlText(
    [
      '{"text": "a", "label": ["x", "y"]}',
      '{"text": "b", "label": []}',
      '{"text": "c", "label": "x"}',
      '{"text": "d", "label": ["y"]}',
    ].join('\n'),
    'ml.jsonl',
  );
  assert.equal(ml.rows.length, 3);
  assert.equal(ml.problems.length, 1);
  assert.equal(ml.problems[0].line, 3);
  assert.match(ml.problems[0].message, /single label, but 3 other rows have a list of labels/);
  const info = inferTask(ml.rows, 'ml.jsonl');
  assert.equal(info.task, 'multilabel');
  assert.deepEqual(info.labels, ['x', 'y']);
  assert.deepEqual({ ...info.labelCounts }, { x: 1, y: 2 });

  const single = parseJsonlText(
    ['{"text": "a", "label": "x"}', '{"text": "b", "label": "y"}', '{"text": "c", "label": ["x"]}'].join('\n'),
    's.jsonl',
  );
  assert.equal(single.rows.length, 2);
  assert.deepEqual(
    single.problems.map((p) => p.line),
    [3],
  );
  assert.match(single.problems[0].message, /is a list \(a multi-label row\), but 2 other rows have a single label/);

  const bad = parseJsonlText(
    ['{"text": "a", "label": ["x", "x"]}', '{"text": "b", "label": ["x", 3]}', '{"text": "c", "label": [""]}'].join('\n'),
    'bad.jsonl',
  );
  assert.deepEqual(
    bad.problems.map((p) => [p.line, p.column]),
    [
      [1, 15],
      [2, 15],
      [3, 15],
    ],
  );
  assert.match(bad.problems[0].message, /repeats "x"/);
  assert.match(bad.problems[1].message, /list of non-empty strings, got number 3/);

  // A dev file of the other kind is reported row by row.
  const dev = parseJsonlText('{"text": "a", "label": "x"}\n{"text": "b", "label": ["z"]}\n', 'dev.jsonl');
  const problems = checkDevLabels(
    [...dev.rows, ...parseJsonlText('{"text": "b", "label": ["z"]}', 'dev.jsonl').rows.map((r) => ({ ...r, line: 2 }))],
    ['x', 'y'],
    'dev.jsonl',
    true,
  );
  assert.deepEqual(
    problems.map((p) => p.line),
    [1, 2],
  );
  assert.match(problems[1].message, /"z" does not occur/);

  // Unlabelled parsing keeps rows without a label and still checks the ones that have one.
  const u = parseUnlabelledJsonlText('{"text": "a"}\n{"text": "b", "label": 5}\n{"text": "c", "label": true}\n', 'u.jsonl');
  assert.deepEqual(
    u.rows.map((r) => r.line),
    [1, 2],
  );
  assert.deepEqual(
    u.problems.map((p) => p.line),
    [3],
  );
});

test('audit ranking: self-confidence order, confident-learning flags against per-class thresholds; stratified folds', async () => {
  const { rankSuspects, stratifiedFolds } = await import('../src/engine/analysis/audit');
  // Class thresholds: mean p(a) over rows labelled a = (0.9 + 0.8 + 0.1) / 3 = 0.6; mean p(b) over b rows = 0.675.
  const probs = [
    [0.9, 0.1],
    [0.8, 0.2],
    [0.1, 0.9],
    [0.3, 0.7],
    [0.35, 0.65],
  ];
  const given = [0, 0, 0, 1, 1];
  const { rows, thresholds } = rankSuspects(probs, given, ['a', 'b'], [1, 2, 3, 4, 5]);
  assert.ok(Math.abs(thresholds[0] - 0.6) < 1e-12 && Math.abs(thresholds[1] - 0.675) < 1e-12, `${thresholds}`);
  assert.deepEqual(
    rows.map((r) => r.line),
    [3, 5, 4, 2, 1],
  );
  assert.deepEqual(rows[0], { line: 3, label: 'a', predicted: 'b', p_label: 0.1, p_predicted: 0.9, score: 0.1, issue: true });
  // Line 5 (b, p(b) 0.65 < 0.675, p(a) 0.35 < 0.6) reaches no threshold: low, but not flagged.
  assert.equal(rows[1].issue, false);
  assert.equal(rows.filter((r) => r.issue).length, 1);

  const labels = [...Array(10).fill('x'), ...Array(6).fill('y'), 'z'];
  const folds = stratifiedFolds(labels, 4, 1);
  const sizes = [0, 1, 2, 3].map((f) => folds.filter((v) => v === f).length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `fold sizes ${sizes}`);
  for (const name of ['x', 'y']) {
    const per = [0, 1, 2, 3].map((f) => labels.filter((l, i) => l === name && folds[i] === f).length);
    assert.ok(Math.max(...per) - Math.min(...per) <= 1, `${name} per fold ${per}`);
  }
  assert.deepEqual(stratifiedFolds(labels, 4, 1), folds, 'seeded');
});

test('uncertainty: margin of the top two, entropy in nats; multi-label distance to the thresholds', async () => {
  const { uncertaintyOf, orderByUncertainty } = await import('../src/engine/analysis/uncertainty');
  const u = uncertaintyOf([0.5, 0.3, 0.2]);
  assert.ok(Math.abs(u.margin - 0.2) < 1e-12);
  assert.ok(Math.abs(u.entropy - -(0.5 * Math.log(0.5) + 0.3 * Math.log(0.3) + 0.2 * Math.log(0.2))) < 1e-12);
  const m = uncertaintyOf([0.9, 0.45], [0.5, 0.4]);
  assert.ok(Math.abs(m.margin - 0.05) < 1e-12);
  const ordered = orderByUncertainty([
    { line: 1, margin: 0.5, entropy: 0.1 },
    { line: 2, margin: 0.1, entropy: 0.2 },
    { line: 3, margin: 0.1, entropy: 0.6 },
  ]);
  assert.deepEqual(
    ordered.map((r) => r.line),
    [3, 2, 1],
  );
});
