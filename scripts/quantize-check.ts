/**
 * What the int8 backbone (`--quantize int8`, src/engine/models/quantize.ts) costs in accuracy, measured (a script
 * that prints figures, not a test; quality figures, so a shared machine is fine):
 *   (a) synthetic roberta-base: SPARTAN logits of the same batch in float32 and int8: max and mean absolute
 *       difference (next to the float32 logits' spread) and argmax agreement;
 *   (b) SST-2 dev (872 rows) with the embedded backbone: a float32 and an int8 memory trained on the same rows with
 *       the same seed, each scored in its own precision, and each crossed over (int8 memory in float32, float32
 *       memory in int8).
 *
 *   npx tsx scripts/quantize-check.ts [--threads 1] [--max-rows 8000] [--epochs 2] [--seed 42] [--rows 32] [--seq 128]
 *                                     [--skip-sst2] [--skip-synthetic] [--int8-only] [--glue ../shared/data/glue]
 *
 * `--int8-only` trains only the int8 memory (scored in int8 and crossed over to float32): for a change to the int8
 * path alone, whose float32 memory, trained with the same seed, is what an earlier run printed.
 *
 * results/quantize-check.txt holds its output.
 */
import * as path from 'node:path';
import {
  DEFAULT_GEOMETRY,
  Example,
  GraphSession,
  MethodSpec,
  QuantizeMode,
  TRAINING_DEFAULTS,
  compileInference,
  evaluate,
  encodeExamples,
  graphOptions,
  importGlueTask,
  inferTask,
  int8WeightLevels,
  layerParams,
  loadBackbone,
  loadTokenizer,
  predictLogits,
  repoRoot,
  train,
  Backbone,
  TensorMap,
} from '../src/engine';
import { BenchModel, syntheticExamples } from '../src/lab/bench/measure';

const args = process.argv.slice(2);
const value = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const threads = Number(value('--threads', '1'));
const SPARTAN: MethodSpec = { name: 'spartan', geometry: DEFAULT_GEOMETRY, trainLayerNorms: true };
const out = (s: string) => process.stdout.write(s + '\n');
const log = (s: string) => process.stderr.write(s + '\n');

async function synthetic(): Promise<void> {
  const rows = Number(value('--rows', '32')),
    seq = Number(value('--seq', '128'));
  const backbone = await loadBackbone('synthetic:roberta-base');
  const model = new BenchModel(backbone, SPARTAN, 2, 0);
  const examples = syntheticExamples(backbone.config, rows, seq, 2, 7);
  const logits: Record<string, Float32Array[]> = {};
  for (const q of ['none', 'int8'] as QuantizeMode[]) {
    const session = await model.inferenceSession(threads, q);
    logits[q] = await predictLogits(session, model.params, examples, {
      batchSize: rows,
      padId: backbone.config.padTokenId,
      task: 'classification',
      numLabels: 2,
    });
    await session.release();
    log(`synthetic: ${q} done`);
  }
  const a = logits.none.flatMap((l) => Array.from(l)),
    b = logits.int8.flatMap((l) => Array.from(l));
  const diffs = a.map((v, i) => Math.abs(v - b[i]));
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
  const margins = logits.none.map((l) => Math.abs(l[1] - l[0]));
  const agree = logits.none.filter((l, i) => argmax(l) === argmax(logits.int8[i])).length;
  out(
    `(a) synthetic roberta-base (seeded random weights), SPARTAN with a fresh head, ${rows} rows x ${seq} tokens, int8 weights in ±${int8WeightLevels()} (u8×s8 kernel${int8WeightLevels() < 127 ? '; 7-bit weights: no VNNI on this CPU' : ''}):`,
  );
  out(
    `    |logit int8 - fp32|: max ${fmt(Math.max(...diffs))}, mean ${fmt(diffs.reduce((s, v) => s + v, 0) / diffs.length)}; fp32 logits: std ${fmt(std)}, mean |l1 - l0| ${fmt(margins.reduce((s, v) => s + v, 0) / margins.length)}`,
  );
  out(`    argmax agreement: ${agree}/${rows} (${((100 * agree) / rows).toFixed(1)} %)`);
}

const fmt = (x: number) => (Math.abs(x) >= 0.01 ? x.toFixed(4) : x.toExponential(2));
const argmax = (l: Float32Array) => (l[1] > l[0] ? 1 : 0);

async function sst2(): Promise<void> {
  const glue = value('--glue', path.join(repoRoot(), '..', 'shared', 'data', 'glue'));
  const maxRows = Number(value('--max-rows', '8000'));
  const epochs = Number(value('--epochs', '2'));
  const seed = Number(value('--seed', String(TRAINING_DEFAULTS.seed)));
  const toRows = (file: string): Example[] =>
    importGlueTask('SST-2', file).rows.map((r, i) => ({ text: r.text, label: String(r.label), line: i + 2 }));
  const trainFile = path.join(glue, 'SST-2', 'train.tsv'),
    devFile = path.join(glue, 'SST-2', 'dev.tsv');
  const trainRows = toRows(trainFile).slice(0, maxRows),
    devRows = toRows(devFile);
  const backbone = await loadBackbone(path.join(repoRoot(), 'models', 'roberta-mini'));
  const tokenizer = loadTokenizer(backbone.tokenizerDir);
  const task = inferTask(trainRows, trainFile);
  const trained: Record<string, { tensors: TensorMap; accuracy: number; epoch: number; seconds: number }> = {};
  const int8Only = args.includes('--int8-only');
  const precisions: QuantizeMode[] = int8Only ? ['int8'] : ['none', 'int8'];
  for (const q of precisions) {
    const r = await train(
      { backbone, tokenizer, task, train: trainRows, trainFile, dev: devRows, devFile },
      {
        method: SPARTAN,
        epochs,
        batchSize: TRAINING_DEFAULTS.batchSize,
        maxLength: TRAINING_DEFAULTS.maxLength,
        optimizer: 'adamw',
        lr: TRAINING_DEFAULTS.lr,
        weightDecay: TRAINING_DEFAULTS.weightDecay,
        warmupRatio: TRAINING_DEFAULTS.warmupRatio,
        clipNorm: TRAINING_DEFAULTS.clipNorm,
        dropout: TRAINING_DEFAULTS.dropout,
        seed,
        shuffle: true,
        bucket: true,
        threads,
        patience: 0,
        quantize: q,
      },
    );
    trained[q] = { tensors: r.tensors, accuracy: r.metrics.accuracy, epoch: r.bestEpoch, seconds: r.seconds };
    log(`sst2: ${q} trained, dev accuracy ${r.metrics.accuracy}`);
  }
  const score = async (tensors: TensorMap, q: QuantizeMode) => accuracyOf(backbone, tensors, q, devRows, devFile, task.labels);
  const int8InFp32 = await score(trained.int8.tensors, 'none');
  const majority = Math.max(...Object.values(task.labelCounts ?? {}).map(Number)) / trainRows.length;
  out(
    `(b) SST-2 dev (${devRows.length} rows), embedded backbone (roberta-mini), SPARTAN, the first ${trainRows.length} training rows, ${epochs} epochs, seed ${seed}, lr ${TRAINING_DEFAULTS.lr}, batch ${TRAINING_DEFAULTS.batchSize}, dropout ${TRAINING_DEFAULTS.dropout}, best epoch kept:`,
  );
  if (!int8Only) out(`    fp32 memory, fp32 backbone: dev accuracy ${pct(trained.none.accuracy)} (epoch ${trained.none.epoch})`);
  out(`    int8 memory, int8 backbone: dev accuracy ${pct(trained.int8.accuracy)} (epoch ${trained.int8.epoch})`);
  if (int8Only) {
    out(`    int8 memory on the fp32 backbone ${pct(int8InFp32)}`);
  } else {
    const fp32InInt8 = await score(trained.none.tensors, 'int8');
    out(`    difference int8 - fp32: ${((trained.int8.accuracy - trained.none.accuracy) * 100).toFixed(2)} points`);
    out(`    crossed: int8 memory on the fp32 backbone ${pct(int8InFp32)}, fp32 memory on the int8 backbone ${pct(fp32InInt8)}`);
  }
  out(`    (training-rows majority class share: ${pct(majority)})`);
}

const pct = (x: number) => `${(100 * x).toFixed(2)} %`;

/** Dev accuracy of trained tensors with the backbone in `quantize` precision (as TaskModel scores a memory). */
async function accuracyOf(
  backbone: Backbone,
  tensors: TensorMap,
  quantize: QuantizeMode,
  rows: Example[],
  file: string,
  labels: string[],
): Promise<number> {
  const tokenizer = loadTokenizer(backbone.tokenizerDir);
  const set = encodeExamples(rows, tokenizer, 'classification', labels, TRAINING_DEFAULTS.maxLength, file);
  const session = await GraphSession.create(
    compileInference(graphOptions(backbone, SPARTAN, 'classification', labels.length, 0, quantize)),
    {
      threads,
    },
  );
  const ev = await evaluate(session, layerParams(backbone, tensors), set.examples, 'classification', labels.length, tokenizer.padId, 64);
  await session.release();
  return ev.metrics.accuracy;
}

async function main(): Promise<void> {
  out(`quantize-check: ${new Date().toISOString()}, ${threads} thread(s); npx tsx scripts/quantize-check.ts ${args.join(' ')}`);
  if (!args.includes('--skip-synthetic')) await synthetic();
  if (!args.includes('--skip-sst2')) await sst2();
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exit(1);
});
