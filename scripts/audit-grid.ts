/**
 * Which audit settings find planted label errors (issue 11): for one data set (SST-2 sentences or corpus
 * paragraphs, 5 % of the labels flipped, seeded), computes out-of-fold probabilities under a few training
 * settings, with two fold repetitions (different seeds), and prints the precision of the top-k ranked rows
 * (k = flipped) for every ranking score, with one repetition and with the two averaged, and the CPU time spent.
 *
 *   node --import tsx scripts/audit-grid.ts --set sst2|corpus [--rows 3000] [--configs e3,e8dev] [--reps 2] [--out DIR]
 *        [--threads 1]
 * Each (config, repetition)'s probabilities are cached as JSON under --out, so a rerun only prints.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  AUDIT_SCORES,
  methodSpec,
  inferTask,
  loadBackbone,
  loadTokenizer,
  outOfFoldProbabilities,
  rankSuspects,
  repoRoot,
  TRAINING_DEFAULTS,
} from '../src/engine';
import type { Example, TrainConfig } from '../src/engine';
import { corpusParagraphs, corpusRows, LabelledText, plantFlips, sst2Rows } from '../src/lab/trust/sets';

const ROOT = repoRoot();
const { values: o } = parseArgs({
  options: {
    set: { type: 'string', default: 'sst2' },
    rows: { type: 'string', default: '3000' },
    configs: { type: 'string', default: 'e3,e8dev' },
    reps: { type: 'string', default: '2' },
    out: { type: 'string', default: path.join(ROOT, '.audit-grid') },
    threads: { type: 'string', default: '1' },
    glue: { type: 'string', default: path.join(ROOT, '..', 'shared', 'data', 'glue') },
    corpus: { type: 'string', default: path.join(ROOT, '..', 'shared', 'corpus') },
  },
});

/** The settings compared: epochs is the most each fold trains; a devShare adds early stopping and a temperature. */
const CONFIGS: Record<string, { epochs: number; devShare: number; patience: number; lr?: number }> = {
  e3: { epochs: 3, devShare: 0, patience: 0 },
  e8dev: { epochs: 8, devShare: 0.1, patience: 2 },
  e3dev: { epochs: 3, devShare: 0.1, patience: 0 },
};

async function main(): Promise<void> {
  const N = Number(o.rows);
  const source: LabelledText[] =
    o.set === 'corpus'
      ? corpusRows(corpusParagraphs(o.corpus), Math.round(N / 3), { minWords: 30, maxWords: 120, seed: 3 })
      : sst2Rows(o.glue, N);
  const { noisy, flipped } = plantFlips(source, 0.05, 5);
  const rows: Example[] = noisy.map((r, i) => ({ text: r.text, label: r.label, line: i + 1 }));
  const task = inferTask(rows, o.set);
  const backbone = await loadBackbone(path.join(ROOT, 'models', 'roberta-mini'));
  const tokenizer = loadTokenizer(backbone.tokenizerDir);
  const dir = path.join(o.out, `${o.set}-${N}`);
  fs.mkdirSync(dir, { recursive: true });
  const given = rows.map((r) => task.labels.indexOf(r.label as string));
  const k = flipped.size;
  console.log(`# ${o.set}: ${rows.length} rows, labels ${task.labels.join(', ')}; ${k} flipped (5 %, seed 5); 4 folds; embedded backbone`);
  for (const name of o.configs.split(',')) {
    const c = CONFIGS[name];
    if (!c) throw new Error(`unknown config ${name}; known: ${Object.keys(CONFIGS).join(', ')}`);
    const reps: { probs: number[][]; cpuSeconds: number; bestEpochs: number[]; temperatures: number[] }[] = [];
    for (let r = 0; r < Number(o.reps); r++) {
      const file = path.join(dir, `${name}.rep${r}.json`);
      if (!fs.existsSync(file)) {
        const cpu0 = process.cpuUsage();
        const config: TrainConfig = {
          method: methodSpec('spartan'),
          epochs: c.epochs,
          batchSize: TRAINING_DEFAULTS.batchSize,
          maxLength: TRAINING_DEFAULTS.maxLength,
          optimizer: 'adamw',
          lr: c.lr ?? TRAINING_DEFAULTS.lr,
          weightDecay: TRAINING_DEFAULTS.weightDecay,
          warmupRatio: TRAINING_DEFAULTS.warmupRatio,
          clipNorm: TRAINING_DEFAULTS.clipNorm,
          dropout: TRAINING_DEFAULTS.dropout,
          seed: TRAINING_DEFAULTS.seed + 1000 * r,
          shuffle: true,
          bucket: true,
          threads: Number(o.threads),
          patience: c.patience,
        };
        const oof = await outOfFoldProbabilities({ backbone, tokenizer, task, rows, file: o.set, folds: 4, devShare: c.devShare, config });
        const u = process.cpuUsage(cpu0);
        fs.writeFileSync(file, JSON.stringify({ ...oof, cpuSeconds: (u.user + u.system) / 1e6 }));
      }
      reps.push(JSON.parse(fs.readFileSync(file, 'utf8')));
    }
    const averaged = reps.length > 1 ? reps[0].probs.map((p, i) => p.map((v, j) => (v + reps[1].probs[i][j]) / 2)) : undefined;
    const accuracy = (probs: number[][]) =>
      probs.filter((p, i) => p.indexOf(Math.max(...p)) === task.labels.indexOf(source[i].label)).length / probs.length;
    const variants: { reps_: number; probs: number[][]; cpu: number }[] = [{ reps_: 1, probs: reps[0].probs, cpu: reps[0].cpuSeconds }];
    if (averaged) variants.push({ reps_: 2, probs: averaged, cpu: reps[0].cpuSeconds + reps[1].cpuSeconds });
    for (const { reps_, probs, cpu } of variants) {
      const cells = AUDIT_SCORES.map((score) => {
        const ranked = rankSuspects(
          probs,
          given,
          task.labels,
          rows.map((r) => r.line),
          score,
        );
        const hits = ranked.rows.slice(0, k).filter((x) => flipped.has(x.line - 1)).length;
        return `${score} ${(hits / k).toFixed(3)}`;
      });
      console.log(
        `${name} (epochs ≤ ${c.epochs}, dev share ${c.devShare}, patience ${c.patience}) × ${reps_} repetition(s): ` +
          `out-of-fold accuracy on the true labels ${accuracy(probs).toFixed(3)}; precision of the top ${k}: ${cells.join(', ')}; ` +
          `${(cpu / 60).toFixed(1)} CPU-min` +
          (reps_ === 1
            ? `; best epochs ${reps[0].bestEpochs.join(' ')}; T ${reps[0].temperatures.map((t) => t.toFixed(2)).join(' ')}`
            : ''),
      );
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
