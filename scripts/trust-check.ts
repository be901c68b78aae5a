/**
 * Issue 11's measurements on real rows (GLUE SST-2), printed as figures:
 *   1. audit: flip the labels of 5 % of N training rows (seeded), run `spartan audit`, and report the precision of
 *      the top-k ranked rows (k = the number flipped) and of the rows confident learning flags;
 *   2. calibration: train on N rows with a held-out share (the temperature is fitted there), evaluate on SST-2's
 *      dev file, and report ECE calibrated vs uncalibrated;
 *   3. multi-label: rows made of two SST-2 sentences, labelled with the set of sentiments they contain, trained
 *      with SPARTAN and with the head alone (one sigmoid per label on frozen features: one-vs-rest), micro-F1 on
 *      pairs built from the dev file.
 *
 *   node --import tsx scripts/trust-check.ts [--rows 3000] [--glue ../shared/data/glue] [--backbone embedded]
 *        [--epochs 3] [--folds 4] [--out DIR] [--threads N]
 * Writes only under --out (default: a fresh temp folder). Needs `npm run build` (it runs bin/spartan.js).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { createRng, shuffleInPlace } from '../src/engine';
import type { AuditResult, ClassificationEval, MultiLabelEval } from '../src/protocol/results';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'spartan.js');
const { values: o } = parseArgs({
  options: {
    rows: { type: 'string', default: '3000' },
    glue: { type: 'string', default: path.join(ROOT, '..', 'shared', 'data', 'glue') },
    backbone: { type: 'string', default: 'embedded' },
    epochs: { type: 'string', default: '3' },
    folds: { type: 'string', default: '4' },
    out: { type: 'string' },
    threads: { type: 'string' },
    'dev-rows': { type: 'string', default: '872' },
  },
});
const N = Number(o.rows);
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

type Row = { text: string; label: string; line?: number };
const readRows = (file: string): Row[] =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
const writeRows = (file: string, rows: object[]) => fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

spartan(['glue', 'import', '--task', 'SST-2', '--dir', path.join(o.glue, 'SST-2'), '--out', path.join(out, 'data')]);
const all = shuffleInPlace(readRows(path.join(out, 'data', 'train.jsonl')), createRng(11));
const rows = all.slice(0, N).map((r) => ({ text: r.text, label: r.label }));
const devRows = readRows(path.join(out, 'data', 'dev.jsonl'))
  .slice(0, Number(o['dev-rows']))
  .map((r) => ({ text: r.text, label: r.label }));
const labels = [...new Set(rows.map((r) => r.label))].sort();
console.log(
  `SST-2: ${rows.length} training rows, ${devRows.length} dev rows, labels ${labels.join(', ')}; backbone ${o.backbone}; ${o.epochs} epochs`,
);

// 1. audit with 5 % planted flips
const rng = createRng(5);
const flipped = new Set<number>();
const k = Math.max(1, Math.round(0.05 * rows.length));
while (flipped.size < k) flipped.add(Math.floor(rng.next() * rows.length));
const noisy = rows.map((r, i) => (flipped.has(i) ? { ...r, label: labels.find((l) => l !== r.label)! } : r));
writeRows(path.join(out, 'noisy.jsonl'), noisy);
const audit = spartan<AuditResult>(['audit', '--data', path.join(out, 'noisy.jsonl'), '--folds', o.folds, '--epochs', o.epochs, ...common]);
const top = audit.rows.slice(0, k);
const hits = top.filter((r) => flipped.has(r.line - 1)).length;
const flaggedRows = audit.rows.filter((r) => r.issue);
const flaggedHits = flaggedRows.filter((r) => flipped.has(r.line - 1)).length;
console.log(
  `audit: ${k} of ${rows.length} labels flipped; precision of the top ${k}: ${(hits / k).toFixed(3)} (${hits}/${k}); ` +
    `confident learning flags ${flaggedRows.length} rows, precision ${(flaggedRows.length ? flaggedHits / flaggedRows.length : 0).toFixed(3)}, recall ${(flaggedHits / k).toFixed(3)} (${o.folds} folds, ${audit.seconds.toFixed(0)} s)`,
);

// 2. calibration on a held-out file
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
  `calibration: SST-2 dev (${ev.rows} rows, held out): accuracy ${ev.accuracy.toFixed(4)}; ECE ${ev.ece.toFixed(4)} at T = ${ev.temperature.toFixed(3)} vs ${ev.ece_uncalibrated.toFixed(4)} uncalibrated`,
);

// 3. multi-label from pairs of real sentences: the label set is the sentiments present
function pairs(source: Row[], seed: number): { text: string; label: string[] }[] {
  const order = shuffleInPlace(
    source.map((_, i) => i),
    createRng(seed),
  );
  const outRows: { text: string; label: string[] }[] = [];
  for (let i = 0; i + 1 < order.length; i += 2) {
    const a = source[order[i]],
      b = source[order[i + 1]];
    outRows.push({ text: `${a.text} ${b.text}`, label: [...new Set([a.label, b.label])].sort() });
  }
  return outRows;
}
writeRows(path.join(out, 'ml.train.jsonl'), pairs(rows, 21));
writeRows(path.join(out, 'ml.dev.jsonl'), pairs(devRows, 22));
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
// The trivial baseline: predict every label on every row (micro-F1 = 2·present / (present + rows·labels)).
const mlDev = pairs(devRows, 22);
const present = mlDev.reduce((n, r) => n + r.label.length, 0);
const allLabels = (2 * present) / (present + mlDev.length * labels.length);
console.log(
  `multi-label (pairs of SST-2 sentences; ${Math.floor(rows.length / 2)} training, ${mlDev.length} dev rows): ${figures.join('; ')}; predicting every label: micro-F1 ${allLabels.toFixed(4)}`,
);
console.log(`files: ${out}`);
