/**
 * Issue 11's measurements on real rows, printed as figures (results/trust-check.txt is this script's output):
 *   1. audit: flip the labels of 5 % of N rows (seeded), run `spartan audit` with its default settings, and
 *      report the precision of the top-k ranked rows (k = the number flipped) and of the rows confident learning
 *      flags, on two sets of a different character: GLUE SST-2 sentences (two sentiments) and paragraphs of the
 *      pretraining corpus labelled with their section (gutenberg / wikipedia / debian-docs);
 *   2. calibration: train on N SST-2 rows with a held-out share (the temperature is fitted there), evaluate on
 *      SST-2's dev file, and report ECE calibrated vs uncalibrated;
 *   3. multi-label: rows of one or two corpus paragraphs from different sections, labelled with the set of
 *      sections, trained with SPARTAN and with the head alone (one sigmoid per label on frozen features:
 *      one-vs-rest), micro-F1 on held-out rows next to the trivial baselines (every label; the most frequent set).
 *
 *   node --import tsx scripts/trust-check.ts [--set all|sst2|corpus|debian] [--apt-lists /var/lib/apt/lists] [--debian-labels 8] [--flip-seed 5] [--rows 3000] [--corpus-rows 2400] [--ml-paragraphs 3000]
 *        [--backbone embedded] [--epochs 3] [--out DIR] [--threads N]
 * Writes only under --out (default: a fresh temp folder). Needs `npm run build` (it runs bin/spartan.js).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditResult, ClassificationEval, MultiLabelEval } from '../src/protocol/results';
import {
  corpusParagraphs,
  corpusRows,
  debianRows,
  LabelledText,
  multiLabelBaselines,
  multiLabelRows,
  plantFlips,
  sst2Dev,
  sst2Rows,
} from '../src/lab/trust/sets';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'spartan.js');
const { values: o } = parseArgs({
  options: {
    set: { type: 'string', default: 'all' },
    rows: { type: 'string', default: '3000' },
    'corpus-rows': { type: 'string', default: '2400' },
    'ml-paragraphs': { type: 'string', default: '3000' },
    glue: { type: 'string', default: path.join(ROOT, '..', 'shared', 'data', 'glue') },
    corpus: { type: 'string', default: path.join(ROOT, '..', 'shared', 'corpus') },
    backbone: { type: 'string', default: 'embedded' },
    epochs: { type: 'string', default: '3' },
    out: { type: 'string' },
    threads: { type: 'string' },
    'dev-rows': { type: 'string', default: '872' },
    'apt-lists': { type: 'string', default: '/var/lib/apt/lists' },
    'debian-labels': { type: 'string', default: '8' },
    'flip-seed': { type: 'string', default: '5' },
  },
});
if (!['all', 'sst2', 'corpus', 'debian'].includes(o.set)) throw new Error(`--set must be all, sst2, corpus or debian, got ${o.set}`);
const out = o.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-trust-check-'));
fs.mkdirSync(out, { recursive: true });
const common = ['--backbone', o.backbone, ...(o.threads ? ['--threads', o.threads] : [])];

function spartan<T>(args: string[]): T {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CLI, ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`spartan ${args.join(' ')} failed (${r.status}):\n${r.stderr.split('\n').slice(-5).join('\n')}`);
  process.stderr.write(`  spartan ${args[0]} … ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}
const writeRows = (file: string, rows: object[]) => fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

/** Plants 5 % flips, audits with the CLI's defaults, prints the precision of the top k and of the flagged rows. */
function auditFigures(name: string, rows: LabelledText[]): void {
  const { noisy, flipped } = plantFlips(rows, 0.05, Number(o['flip-seed']));
  const file = path.join(out, `${name}.noisy.jsonl`);
  writeRows(file, noisy);
  const audit = spartan<AuditResult>(['audit', '--data', file, ...common]);
  const k = flipped.size;
  const hits = audit.rows.slice(0, k).filter((r) => flipped.has(r.line - 1)).length;
  const flaggedRows = audit.rows.filter((r) => r.issue);
  const flaggedHits = flaggedRows.filter((r) => flipped.has(r.line - 1)).length;
  console.log(
    `audit ${name}: ${k} of ${rows.length} labels flipped (seed ${o['flip-seed']}); precision of the top ${k}: ${(hits / k).toFixed(3)} (${hits}/${k}); ` +
      `confident learning flags ${flaggedRows.length} rows, precision ${(flaggedRows.length ? flaggedHits / flaggedRows.length : 0).toFixed(3)}, recall ${(flaggedHits / k).toFixed(3)} ` +
      `(defaults: ${audit.folds} folds × ${audit.repeats} repetition(s), inner dev share ${audit.devShare}, score ${audit.score}; fold temperatures ${audit.temperatures.map((t) => t.toFixed(2)).join(' ')}; ${audit.seconds.toFixed(0)} s wall on a shared machine)`,
  );
}

const N = Number(o.rows);
if (o.set === 'all' || o.set === 'sst2') {
  const rows = sst2Rows(o.glue, N);
  const devRows = sst2Dev(o.glue, Number(o['dev-rows']));
  const labels = [...new Set(rows.map((r) => r.label))].sort();
  console.log(
    `SST-2: ${rows.length} training rows (seeded sample), ${devRows.length} dev rows, labels ${labels.join(', ')}; backbone ${o.backbone}`,
  );
  auditFigures('SST-2', rows);

  // Calibration on a held-out file.
  writeRows(path.join(out, 'train.jsonl'), rows);
  writeRows(path.join(out, 'dev.jsonl'), devRows);
  const memory = path.join(out, 'sst2.safetensors');
  spartan([
    'train',
    '--data',
    path.join(out, 'train.jsonl'),
    '--dev-share',
    '0.1',
    '--out',
    memory,
    '--epochs',
    o.epochs,
    '--patience',
    '0',
    ...common,
  ]);
  const ev = spartan<ClassificationEval>(['eval', '--memory', memory, '--data', path.join(out, 'dev.jsonl'), ...common]);
  console.log(
    `calibration: SST-2 dev (${ev.rows} rows, held out; ${o.epochs} epochs): accuracy ${ev.accuracy.toFixed(4)}; ECE ${ev.ece.toFixed(4)} at T = ${ev.temperature.toFixed(3)} vs ${ev.ece_uncalibrated.toFixed(4)} uncalibrated`,
  );
}

if (o.set === 'debian') {
  const L = Number(o['debian-labels']);
  const rows = debianRows(o['apt-lists'], Math.round(N / L), { labels: L, seed: 6 });
  const labels = [...new Set(rows.map((r) => r.label))].sort();
  console.log(
    `Debian: ${rows.length} package descriptions from ${o['apt-lists']} (main, with Translation-en), ${rows.length / labels.length} per section of the ${L} largest (${labels.join(', ')}), seeded; backbone ${o.backbone}`,
  );
  auditFigures('debian', rows);
}

if (o.set === 'all' || o.set === 'corpus') {
  const paragraphs = corpusParagraphs(o.corpus);
  const M = Number(o['corpus-rows']);
  const rows = corpusRows(paragraphs, Math.round(M / 3), { minWords: 30, maxWords: 120, seed: 3 });
  const labels = [...new Set(rows.map((r) => r.label))].sort();
  console.log(
    `corpus: ${rows.length} paragraphs of 30–120 words from ../shared/corpus, ${rows.length / labels.length} per section (${labels.join(', ')}), seeded; ` +
      'the embedded backbone was pretrained on this corpus, so this tests the audit, not generalisation',
  );
  auditFigures('corpus', rows);

  // Multi-label: one or two shorter paragraphs (so that two fit in 128 tokens) from different sections.
  const P = Number(o['ml-paragraphs']);
  const short = corpusRows(paragraphs, Math.round(P / 3), { minWords: 15, maxWords: 45, seed: 4 });
  const mlTrain = multiLabelRows(short.slice(0, Math.round(0.7 * short.length)), 21);
  const mlDev = multiLabelRows(short.slice(Math.round(0.7 * short.length)), 22);
  writeRows(path.join(out, 'ml.train.jsonl'), mlTrain);
  writeRows(path.join(out, 'ml.dev.jsonl'), mlDev);
  const sets = new Map<string, number>();
  for (const r of mlTrain) sets.set(r.label.join('+'), (sets.get(r.label.join('+')) ?? 0) + 1);
  const figures: string[] = [];
  for (const method of ['spartan', 'head']) {
    const m = path.join(out, `ml.${method}.safetensors`);
    spartan([
      'train',
      '--data',
      path.join(out, 'ml.train.jsonl'),
      '--dev-share',
      '0.1',
      '--out',
      m,
      '--method',
      method,
      '--epochs',
      o.epochs,
      '--patience',
      '0',
      ...common,
    ]);
    const r = spartan<MultiLabelEval>(['eval', '--memory', m, '--data', path.join(out, 'ml.dev.jsonl'), ...common]);
    figures.push(
      `${method === 'head' ? 'head-only (one-vs-rest)' : 'spartan'} micro-F1 ${r.micro_f1.toFixed(4)}, macro-F1 ${r.macro_f1.toFixed(4)}, subset accuracy ${r.subset_accuracy.toFixed(4)}, ECE ${r.ece.toFixed(4)} (uncalibrated ${r.ece_uncalibrated.toFixed(4)})`,
    );
  }
  const base = multiLabelBaselines(mlTrain, mlDev, labels);
  console.log(
    `multi-label (1–2 corpus paragraphs of 15–45 words from different sections, label = the set of sections; ${mlTrain.length} training rows, ${mlDev.length} held-out rows; ` +
      `training sets: ${[...sets.entries()].map(([s, n]) => `${s} ${n}`).join(', ')}; ${o.epochs} epochs): ${figures.join('; ')}; ` +
      `predicting every label: micro-F1 ${base.everyLabel.microF1.toFixed(4)}; predicting the most frequent set [${base.mostFrequentSet.set.join(', ')}]: micro-F1 ${base.mostFrequentSet.microF1.toFixed(4)}, subset accuracy ${base.mostFrequentSet.subsetAccuracy.toFixed(4)}`,
  );
}
console.log(`files: ${out}`);
