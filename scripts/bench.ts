/**
 * Engine benchmark against PyTorch on the same CPU (a script that prints figures, not a test). roberta-base
 * geometry with synthetic weights, 2 threads by default, in one run:
 *   - sgemm peak of ONNX Runtime on this machine (the yardstick for GEMM-bound efficiency);
 *   - plain RoBERTa (backbone + head) and SPARTAN inference, instances/minute at 32×128 and 16×128, interleaved;
 *   - SPARTAN training examples/second at the same shapes at each training dropout (0.1, the default, and 0),
 *     and the step/forward ratio;
 *   - the same figures from PyTorch (test/reference/bench_torch.py: float32, frozen weights without grad, the
 *     dense memory form, the same dropout at the same places), when PyTorch is installed, and which BLAS it loaded;
 *   - real SST-2 rows: the trainer's length-bucketed batches (dynamic padding), the same batches on both sides
 *     (the engine writes them to a file that bench_torch.py reads), training and SPARTAN inference;
 *   - CPU seconds next to wall seconds everywhere (CPU/wall below 0.85 × threads means another process took cores);
 *   - peak RSS of each phase: each phase runs in its own process, so its peak is its own; inference's is measured
 *     in a phase of its own that holds one SPARTAN model, as `spartan classify` does;
 *   - with --quantize int8, the int8 backbone too (engine/models/quantize.ts): inference at every shape and
 *     training at the first dropout, each in its own process, printed as ratios to fp32 PyTorch and to the fp32
 *     engine, with their peak RSS.
 *
 *   npm run bench -- [--threads 2] [--quick] [--shapes 32x128,16x128] [--skip-torch] [--dropouts 0.1,0] [--quantize int8] [--sst2 ../shared/data/glue/SST-2/train.tsv] [--rounds 1] [--json out.json]
 *   npm run bench -- --report-from out.json    (the report of an earlier run again, from its --json file)
 *
 * --quick: one shape (16×128), one repetition, a few SST-2 batches: a smoke run of every phase, not figures.
 * --rounds N: every phase, engine and PyTorch, N times over; each round's report, then each target across the rounds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  loadBackbone,
  saveBackboneDir,
  repoRoot,
  methodSpec,
  loadTokenizer,
  importGlueTask,
  exitWithParent,
  selfEntry,
  spawnEngine,
  EncodedExample,
  encodeExamples,
  makeBatches,
  MICRO_BATCH_TOKENS,
  INT8_TRAINING_MICRO_BATCH_TOKENS,
  INFERENCE_MICRO_BATCH_TOKENS,
  QuantizeMode,
  int8WeightLevels,
  Backbone,
} from '../src/engine';
import {
  BenchModel,
  cpuSecondsSince,
  forwardFlops,
  peakRssMB,
  sgemmPeak,
  summarize,
  syntheticExamples,
  timeRepetitions,
  Timing,
} from '../src/lab/bench/measure';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const value = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const threads = Number(value('--threads', '2'));
const quick = flag('--quick');
const SHAPES = value('--shapes', quick ? '16x128' : '32x128,16x128')
  .split(',')
  .map((s) => s.split('x').map(Number) as [number, number]);
const BACKBONE = 'synthetic:roberta-base';
/**
 * The phases load BACKBONE from a model directory, written once per run (--backbone-dir, made by main): as a
 * user's backbone is a file, whose float32 linears classify's session reads from the file itself
 * (runtime/sessionBuild.ts), not a map generated in memory.
 */
async function benchBackbone(): Promise<Backbone> {
  let dir = value('--backbone-dir', '');
  if (!dir) {
    // A phase run on its own writes its own copy.
    const made = (dir = writeBackboneDir());
    process.on('exit', () => fs.rmSync(made, { recursive: true, force: true }));
  }
  return loadBackbone(dir);
}

/** A temporary model directory holding BACKBONE, written by a child so that the writer's memory is no phase's peak. */
function writeBackboneDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-bench-backbone-'));
  const self = selfEntry();
  try {
    execFileSync(self.command, [...self.args, '--write-backbone', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return dir;
}
const DROPOUTS = value('--dropouts', '0.1,0').split(',').map(Number);
/** --rounds N: the whole sequence of phases N times over (reportRounds: why). */
const ROUNDS = Number(value('--rounds', '1'));
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`--rounds ${value('--rounds', '')}: a positive whole number of rounds`);
const SST2_BATCH = 16;
/**
 * Timed repetitions of each training shape, after an untimed one, on both sides (the median is reported). Two gave
 * the mean of two, which one slow spell of this VM could move by 5 %.
 */
const TRAIN_REPS = quick ? 1 : 3;
/** Passes over the SST-2 batch list, on both sides (the median pass is reported). */
const SST2_PASSES = quick ? 1 : 3;
/** `--quantize int8` adds the int8 phases; a phase's own precision comes in `--precision` (runPhase's extra). */
const QUANTIZE = value('--quantize', 'none');
const precision = () => value('--precision', 'none') as QuantizeMode;
const SPARTAN = methodSpec('spartan');
const PLAIN = methodSpec('head');
const log = (s: string) => process.stderr.write(s + '\n');

// ------------------------------------------------------------------ what the phases and bench_torch.py print

/** A timing with the throughput it stands for. */
type Throughput = Timing & { instancesPerMinute: number; gflops: number };

interface InferPhase {
  sgemm: { before: number; after: number; gflops: number };
  shapes: { shape: string; plain: Throughput; spartan: Throughput }[];
  peakRssMB: number;
}

interface InferMemoryPhase {
  shapes: string[];
  peakRssMB: number;
}

interface TrainShape {
  shape: string;
  forward: Timing;
  train: Timing;
  examplesPerSecond: number;
  stepOverForward: number;
}

interface TrainPhase {
  dropout: number;
  shapes: TrainShape[];
  peakRssMB: number;
}

/** Passes over one list of batches: the median figures, and every pass's wall seconds. */
interface BatchListRun {
  instances: number;
  seconds: number;
  cpuSeconds: number;
  perSecond: number;
  /** Wall seconds of each pass (absent in files from before the list was run more than once). */
  passSeconds?: number[];
}

interface Sst2Phase {
  dropout: number;
  rows: number;
  meanTokens: number;
  meanPaddedLength: number;
  batches: number;
  train: BatchListRun;
  infer: BatchListRun;
  peakRssMB: number;
}

/** A part that did not run, and why. */
interface Skipped {
  skipped: string;
}
const isSkipped = (x: object): x is Skipped => 'skipped' in x;

/** One shape of test/reference/bench_torch.py's output; the figures of a part it did not run (--only) are absent. */
interface TorchShape {
  batch: number;
  seq: number;
  plain_infer_instances_per_min?: number;
  plain_infer_seconds?: number[];
  cpu_seconds_plain?: number[];
  spartan_infer_instances_per_min?: number;
  spartan_infer_seconds?: number[];
  cpu_seconds_spartan?: number[];
  spartan_train_examples_per_sec?: number;
  spartan_train_seconds?: number[];
  cpu_seconds_train?: number[];
  peak_rss_mb?: number;
}

/** One bench_torch.py process (the fields the report reads). */
interface TorchRun {
  torch: string;
  blas: string[];
  gemm_1024_gflops: number;
  dropout: number;
  results: TorchShape[];
}

interface Int8Phases {
  levels: number;
  infer: InferPhase;
  inferMemory: InferMemoryPhase;
  train: TrainPhase;
}

/** Everything one round measured: its report is printed from it and --json writes it (all rounds, for --rounds N > 1). */
interface BenchResults {
  threads: number;
  /** The CPU's model name and the engine's micro-batch sizes (absent in runs saved before they were recorded). */
  cpu?: string;
  microBatchTokens?: { default: number; int8Training: number; inference?: number };
  quick: boolean;
  dropouts: number[];
  loadStart: number[];
  infer: InferPhase;
  inferMemory: InferMemoryPhase;
  torchInfer: TorchRun | Skipped;
  train: TrainPhase[];
  torchTrain: TorchRun[];
  int8?: Int8Phases;
  sst2: Sst2Phase | Skipped;
  torchSst2?: TorchRun;
  loadEnd: number[];
  /** Wall seconds of this round (the first also counts writing the backbone directory). */
  seconds: number;
}

// ------------------------------------------------------------------ phases (each in its own process)

async function phaseInfer(): Promise<InferPhase> {
  const backbone = await benchBackbone();
  const plain = new BenchModel(backbone, PLAIN);
  const spartan = new BenchModel(backbone, SPARTAN);
  // As classify builds its session (runtime/sessionBuild.ts), for two models on one backbone.
  const q = precision();
  const { plain: sp, spartan: ss } = await spartan.sessions(
    threads,
    q,
    { plain: plain.inferenceSpec(q), spartan: spartan.inferenceSpec(q) },
    true,
    [plain],
  );
  const peakBefore = await sgemmPeak(threads);
  const shapes: InferPhase['shapes'] = [];
  for (const [B, T] of SHAPES) {
    const batch = syntheticExamples(backbone.config, B, T, 2);
    const reps = quick ? 1 : 3;
    await plain.infer(sp!, batch);
    await spartan.infer(ss!, batch);
    // Interleaved so that drift of the machine (thermal, other load) hits both alike.
    const tp: number[] = [],
      ts: number[] = [],
      cp: number[] = [],
      cs: number[] = [];
    for (let r = 0; r < reps; r++) {
      for (const [model, session, into, cpu] of [
        [plain, sp!, tp, cp],
        [spartan, ss!, ts, cs],
      ] as const) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await model.infer(session, batch);
        into.push((performance.now() - t0) / 1000);
        cpu.push(cpuSecondsSince(c0));
      }
      log(
        `infer ${B}x${T} rep ${r + 1}/${reps}: plain ${tp[r].toFixed(2)} s (cpu ${cp[r].toFixed(2)} s), spartan ${ts[r].toFixed(2)} s (cpu ${cs[r].toFixed(2)} s)`,
      );
    }
    const plainT = summarize(tp, cp),
      spartanT = summarize(ts, cs);
    shapes.push({
      shape: `${B}x${T}`,
      plain: {
        ...plainT,
        instancesPerMinute: (60 * B) / plainT.median,
        gflops: forwardFlops(backbone.config, PLAIN, B, T) / plainT.median / 1e9,
      },
      spartan: {
        ...spartanT,
        instancesPerMinute: (60 * B) / spartanT.median,
        gflops: forwardFlops(backbone.config, SPARTAN, B, T) / spartanT.median / 1e9,
      },
    });
  }
  const peakAfter = await sgemmPeak(threads);
  return {
    sgemm: { before: peakBefore.gflops, after: peakAfter.gflops, gflops: Math.max(peakBefore.gflops, peakAfter.gflops) },
    shapes,
    peakRssMB: peakRssMB(),
  };
}

/**
 * Peak RSS of SPARTAN inference as `spartan classify` runs it: one backbone, one model, one session (the int8
 * linears' float32 copies dropped), batches up to the largest shape. The infer phase above holds two models and an
 * sgemm probe, so its peak is not what a user's classify process reaches.
 */
async function phaseInferMemory(): Promise<InferMemoryPhase> {
  const backbone = await benchBackbone();
  const spartan = new BenchModel(backbone, SPARTAN);
  const q = precision();
  const session = (await spartan.sessions(threads, q, { inference: spartan.inferenceSpec(q) }, true)).inference!;
  for (const [B, T] of SHAPES) await spartan.infer(session, syntheticExamples(backbone.config, B, T, 2));
  return { shapes: SHAPES.map(([b, t]) => `${b}x${t}`), peakRssMB: peakRssMB() };
}

async function phaseTrain(): Promise<TrainPhase> {
  const dropout = Number(value('--dropout', '0.1'));
  const backbone = await benchBackbone();
  const spartan = new BenchModel(backbone, SPARTAN);
  // As the trainer builds its session (runtime/sessionBuild.ts): one training session, on which the dev set is
  // evaluated too (its forward pass alone), so `forward` is the trainer's evaluation.
  const q = precision();
  const trainSession = (await spartan.sessions(threads, q, { training: spartan.trainingSpec(dropout, q) }, true)).training!;
  const infer = trainSession;
  const step = spartan.trainStep(trainSession, BenchModel.adamW());
  const shapes: TrainShape[] = [];
  for (const [B, T] of SHAPES) {
    const batch = syntheticExamples(backbone.config, B, T, 2);
    const forward = await timeRepetitions(() => spartan.infer(infer, batch), quick ? 1 : 2, 1);
    const train = await timeRepetitions(() => step(batch), TRAIN_REPS, 1);
    log(
      `train ${B}x${T} dropout ${dropout}: step ${train.median.toFixed(2)} s (cpu ${median(train.cpuSeconds!).toFixed(2)} s), forward ${forward.median.toFixed(2)} s`,
    );
    shapes.push({
      shape: `${B}x${T}`,
      forward,
      train,
      examplesPerSecond: B / train.median,
      stepOverForward: train.median / forward.median,
    });
  }
  return { dropout, shapes, peakRssMB: peakRssMB() };
}

/**
 * Runs the whole list `passes` times; the median pass gives examples/second, with the median wall and CPU seconds.
 * One pass of 16 batches lasts seconds, and on this VM a slow spell of that length moved a single pass by up to
 * 8 %; bench_torch.py times its passes alike (--reps-train, --reps-infer).
 */
async function runBatches(batches: EncodedExample[][], fn: (b: EncodedExample[]) => Promise<void>, passes: number): Promise<BatchListRun> {
  const n = batches.reduce((s, b) => s + b.length, 0);
  const t = await timeRepetitions(
    async () => {
      for (const b of batches) await fn(b);
    },
    passes,
    0,
  );
  return { instances: n, seconds: t.median, cpuSeconds: median(t.cpuSeconds!), perSecond: n / t.median, passSeconds: t.seconds };
}

/**
 * Real SST-2 rows, batched as the trainer does it (length bucketing, dynamic padding); a seeded sample of the
 * batches is timed for training (at --dropout) and SPARTAN inference, and written to --batches-out as token ids
 * for bench_torch.py --batches, so that PyTorch runs exactly the same batches.
 */
async function phaseSst2(): Promise<Sst2Phase> {
  const tsv = sst2Path();
  const dropout = Number(value('--dropout', '0.1'));
  const backbone = await benchBackbone();
  const tokenizer = loadTokenizer(backbone.tokenizerDir);
  const rows = importGlueTask('SST-2', tsv)
    .rows.slice(0, 1600)
    .map((r, i) => ({ text: r.text, label: String(r.label), line: i + 2 }));
  const labels = [...new Set(rows.map((r) => r.label))].sort();
  const { examples } = encodeExamples(rows, tokenizer, 'classification', labels, 128, tsv);
  const spartan = new BenchModel(backbone, SPARTAN);
  // As the trainer: one training session, SPARTAN inference being its forward pass alone (the dev set's evaluation).
  const session = (await spartan.sessions(threads, 'none', { training: spartan.trainingSpec(dropout) }, true)).training!;
  const inferSession = session;
  const step = spartan.trainStep(session, BenchModel.adamW());
  const bucketed = makeBatches(
    examples.map((e) => e.ids.length),
    SST2_BATCH,
    { shuffle: true, seed: 1, bucket: true },
  ).filter((idx) => idx.length === SST2_BATCH);
  const sample = bucketed.slice(0, quick ? 3 : 16);
  const batches = sample.map((idx) => idx.map((i) => examples[i]));
  fs.writeFileSync(value('--batches-out', ''), JSON.stringify(sample.map((idx) => idx.map((i) => Array.from(examples[i].ids)))));
  // One untimed batch warms each session up (bench_torch.py does the same), then the list runs SST2_PASSES times.
  await step(batches[0]);
  const train = await runBatches(batches, step, SST2_PASSES);
  await spartan.infer(inferSession, batches[0]);
  const infer = await runBatches(batches, (b) => spartan.infer(inferSession, b), SST2_PASSES);
  const meanTokens = examples.reduce((s, e) => s + e.ids.length, 0) / examples.length;
  const meanPadded = batches.reduce((s, b) => s + Math.max(...b.map((e) => e.ids.length)), 0) / batches.length;
  log(`sst2: train ${train.perSecond.toFixed(2)} ex/s, SPARTAN inference ${(60 * infer.perSecond).toFixed(1)} inst/min`);
  return {
    dropout,
    rows: examples.length,
    meanTokens,
    meanPaddedLength: meanPadded,
    batches: batches.length,
    train,
    infer,
    peakRssMB: peakRssMB(),
  };
}

// ------------------------------------------------------------------ orchestration

const median = (xs: number[]) => summarize(xs).median;

function sst2Path(): string {
  return value('--sst2', path.join(repoRoot(), '..', 'shared', 'data', 'glue', 'SST-2', 'train.tsv'));
}

/** One phase in a child process of this script (the engine's environment; its figures as one JSON line). */
function runPhase<T>(name: string, extra: string[] = []): Promise<T> {
  log(`--- engine phase ${name} ${extra.join(' ')}`);
  return spawnEngine<T>(selfEntry(), [...args, '--phase', name, ...extra], { stderr: 'inherit' }).result(`phase ${name}`);
}

const torchScript = () => path.join(repoRoot(), 'test', 'reference', 'bench_torch.py');
const torchAvailable = () => !flag('--skip-torch') && spawnSync('/usr/bin/python3', ['-c', 'import torch']).status === 0;

/** One bench_torch.py process (so its peak RSS is that phase's own). */
function runTorch(label: string, extra: string[]): TorchRun {
  log(`--- torch phase ${label}`);
  const out = execFileSync(
    '/usr/bin/python3',
    [torchScript(), '--threads', String(threads), '--reps-infer', quick ? '1' : '3', '--reps-train', String(TRAIN_REPS), ...extra],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as TorchRun;
}

const fmt = (x: number | undefined, d = 1) => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? fmt(a / b, 2) : 'n/a');
const cpuWall = (t: Timing) => (t.cpuSeconds ? median(t.cpuSeconds) / t.median : NaN);
/** The median of figures that may be absent (a part bench_torch.py did not run). */
const medianOf = (xs: number[] | undefined) => (xs?.length ? median(xs) : undefined);
const torchShape = (t: TorchRun | Skipped | undefined, shape: string) =>
  t && !isSkipped(t) ? t.results.find((x) => `${x.batch}x${x.seq}` === shape) : undefined;
/** One of issue 8's targets as one round measured it: whether it was met (undefined: not measured), what, the figure. */
interface Target {
  ok: boolean | undefined;
  name: string;
  value: string;
}
const check = (ok: boolean | undefined, name: string, value: string): Target => ({ ok, name, value });
const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a ' : ok ? 'MET ' : 'MISS');

/** How many passes over the SST-2 batches a figure is the median of. */
const passes = (r: BatchListRun) =>
  (r.passSeconds?.length ?? 1) > 1 ? `the median of ${r.passSeconds!.length} passes over them` : 'one pass over them';

function report(all: BenchResults): { text: string; targets: Target[] } {
  const tokens = (n: number | undefined) => (n === undefined ? 'n/a' : n || 'unlimited');
  const infer = all.infer;
  const lines: string[] = [];
  const torchInfo = isSkipped(all.torchInfer) ? undefined : all.torchInfer;
  lines.push(
    `roberta-base geometry (synthetic weights), ${all.threads} threads, ${all.cpu ?? 'unknown CPU'}; load average at start ${all.loadStart.map((v: number) => v.toFixed(2)).join(' ')}, end ${all.loadEnd.map((v: number) => v.toFixed(2)).join(' ')}${all.quick ? '  [--quick: smoke run, not figures]' : ''}`,
  );
  lines.push(
    `engine micro-batches of at most ${tokens(all.microBatchTokens?.default)} padded tokens (int8 training: ${tokens(all.microBatchTokens?.int8Training)}; inference sessions: ${tokens(all.microBatchTokens?.inference)}; SPARTAN_MICRO_TOKENS); ORT sgemm peak (MatMul 4096x768x3072): ${fmt(infer.sgemm.gflops)} GFLOP/s` +
      (torchInfo
        ? `; PyTorch ${torchInfo.torch}, BLAS ${torchInfo.blas.join(', ') || 'none found'}, sgemm 1024³ ${torchInfo.gemm_1024_gflops} GFLOP/s`
        : `; PyTorch: ${isSkipped(all.torchInfer) ? all.torchInfer.skipped : 'not run'}`),
  );
  lines.push('');
  lines.push('inference (inst/min; wall s | CPU s per batch)');
  lines.push(
    'shape    | engine plain             | torch plain              | ratio | engine SPARTAN           | torch SPARTAN            | ratio',
  );
  const side = (ipm: number | undefined, wall: number | undefined, cpu: number | undefined) =>
    `${fmt(ipm).padStart(7)} (${fmt(wall, 2)} | ${fmt(cpu, 2)})`.padEnd(24);
  const targets: Target[] = [];
  for (const s of infer.shapes) {
    const t = torchShape(all.torchInfer, s.shape);
    const tp = t?.plain_infer_instances_per_min,
      ts = t?.spartan_infer_instances_per_min;
    lines.push(
      `${s.shape.padEnd(8)} | ${side(s.plain.instancesPerMinute, s.plain.median, medianOf(s.plain.cpuSeconds))} | ${side(tp, medianOf(t?.plain_infer_seconds), medianOf(t?.cpu_seconds_plain))} | ${ratio(s.plain.instancesPerMinute, tp).padStart(5)} | ${side(s.spartan.instancesPerMinute, s.spartan.median, medianOf(s.spartan.cpuSeconds))} | ${side(ts, medianOf(t?.spartan_infer_seconds), medianOf(t?.cpu_seconds_spartan))} | ${ratio(s.spartan.instancesPerMinute, ts)}`,
    );
    targets.push(
      check(
        ts ? s.spartan.instancesPerMinute / ts >= 1.15 : undefined,
        `fp32 SPARTAN inference >= 1.15x PyTorch at ${s.shape}`,
        ratio(s.spartan.instancesPerMinute, ts),
      ),
    );
  }
  lines.push('');
  lines.push('SPARTAN training (ex/s; wall s | CPU s per step; step/forward of the engine)');
  lines.push('shape    | dropout | engine                   | torch                    | ratio | step/forward');
  for (const tr of all.train) {
    const torchTrain = all.torchTrain.find((x) => x.dropout === tr.dropout);
    for (const s of tr.shapes) {
      const t = torchShape(torchTrain, s.shape);
      const te = t?.spartan_train_examples_per_sec;
      lines.push(
        `${s.shape.padEnd(8)} | ${String(tr.dropout).padEnd(7)} | ${side(s.examplesPerSecond, s.train.median, medianOf(s.train.cpuSeconds))} | ${side(te, medianOf(t?.spartan_train_seconds), medianOf(t?.cpu_seconds_train))} | ${ratio(s.examplesPerSecond, te).padStart(5)} | ${fmt(s.stepOverForward, 2)}`,
      );
      if (tr.dropout === 0.1) {
        targets.push(
          check(
            te ? s.examplesPerSecond / te >= 1.25 : undefined,
            `fp32 training >= 1.25x PyTorch at ${s.shape}, dropout 0.1`,
            ratio(s.examplesPerSecond, te),
          ),
        );
        targets.push(check(s.stepOverForward <= 2.15, `step/forward <= 2.15 at ${s.shape}`, fmt(s.stepOverForward, 2)));
      }
    }
  }
  const sst = all.sst2;
  lines.push('');
  if (isSkipped(sst)) lines.push(`SST-2: ${sst.skipped}`);
  else {
    const t = all.torchSst2?.results[0];
    const te = t?.spartan_train_examples_per_sec;
    lines.push(
      `SST-2 rows, the same ${sst.batches} length-bucketed batches of ${SST2_BATCH} on both sides (mean ${fmt(sst.meanTokens)} tokens/row, mean padded length ${fmt(sst.meanPaddedLength)}), dropout ${sst.dropout}, ${passes(sst.train)}:`,
    );
    lines.push(
      `  training: engine ${fmt(sst.train.perSecond, 2)} ex/s (${fmt(sst.train.seconds, 2)} s wall | ${fmt(sst.train.cpuSeconds, 2)} s CPU), torch ${fmt(te, 2)} ex/s (${fmt(medianOf(t?.spartan_train_seconds), 2)} s | ${fmt(medianOf(t?.cpu_seconds_train), 2)} s), ratio ${ratio(sst.train.perSecond, te)}`,
    );
    lines.push(
      `  SPARTAN inference: engine ${fmt(60 * sst.infer.perSecond)} inst/min (${fmt(sst.infer.seconds, 2)} s | ${fmt(sst.infer.cpuSeconds, 2)} s), torch ${fmt(t?.spartan_infer_instances_per_min)} inst/min, ratio ${ratio(60 * sst.infer.perSecond, t?.spartan_infer_instances_per_min)}`,
    );
    targets.push(
      check(
        te ? sst.train.perSecond / te >= 1.25 : undefined,
        'SST-2 training >= 1.25x PyTorch on the same batches',
        ratio(sst.train.perSecond, te),
      ),
    );
  }
  lines.push('');
  const rss = (x: { peakRssMB: number } | undefined) => fmt(x?.peakRssMB, 0);
  lines.push(
    `peak RSS (MB), engine: inference ${rss(all.inferMemory)} (one SPARTAN model, as classify; ${rss(infer)} for the inference phase's two models), ${all.train.map((t) => `training dropout ${t.dropout} ${rss(t)}`).join(', ')}${isSkipped(sst) ? '' : `, SST-2 ${rss(sst)}`}`,
  );
  if (torchInfo)
    lines.push(
      `peak RSS (MB), torch: inference ${fmt(torchInfo.results.at(-1)?.peak_rss_mb, 0)}, ${all.torchTrain.map((t) => `training dropout ${t.dropout} ${fmt(t.results.at(-1)?.peak_rss_mb, 0)}`).join(', ')}${all.torchSst2 ? `, SST-2 ${fmt(all.torchSst2.results[0]?.peak_rss_mb, 0)}` : ''}`,
    );
  if (all.int8) lines.push('', ...int8Report(all, all.int8, targets));
  const trainAll = all.train.find((t) => t.dropout === 0.1);
  if (!all.quick && trainAll)
    targets.push(
      check(
        trainAll.peakRssMB <= 1536,
        'peak RSS training (fp32, 32x128 and 16x128 in one process) <= 1.5 GB',
        `${fmt(trainAll.peakRssMB, 0)} MB`,
      ),
    );
  targets.push(
    check(all.inferMemory.peakRssMB <= 819, 'peak RSS inference (as classify) <= 0.8 GB', `${fmt(all.inferMemory.peakRssMB, 0)} MB`),
  );
  lines.push('');
  lines.push('targets (issue 8):');
  for (const t of targets) lines.push(`  ${verdict(t.ok)} ${t.name}: ${t.value}`);
  const contended = [
    ...all.train.flatMap((t) => t.shapes.map((s) => cpuWall(s.train))),
    ...infer.shapes.map((s) => cpuWall(s.spartan)),
  ].some((r) => r < 0.85 * all.threads);
  if (contended)
    lines.push(
      `WARNING: some engine repetitions got less than ${(0.85 * all.threads).toFixed(2)} CPU-seconds per second: another process took cores; the figures are not trustworthy.`,
    );
  return { text: lines.join('\n') + '\n', targets };
}

/** The --json file of a run of several rounds. */
interface SavedRounds {
  rounds: BenchResults[];
}

/**
 * Each round's report, then, for more than one, every target across the rounds: each round's engine and PyTorch
 * figures are taken minutes apart, so on a drifting machine one round's ratio can land either side of a target;
 * the rounds say how far it moves.
 */
function reportRounds(rounds: BenchResults[]): string {
  const reports = rounds.map(report);
  if (rounds.length === 1) return reports[0].text;
  const out = reports.map((r, i) => `=== round ${i + 1} of ${rounds.length}\n${r.text}`);
  const lines = [`targets (issue 8) over ${rounds.length} rounds (each round's figure; met in how many):`];
  for (const t of reports[0].targets) {
    // Matched by name: every round of one run measures the same targets, a saved file may hold older rounds.
    const each = reports.map((r) => r.targets.find((x) => x.name === t.name));
    const met = each.filter((x) => x?.ok === true).length;
    const measured = each.filter((x) => x?.ok !== undefined).length;
    lines.push(
      `  ${verdict(measured ? met === measured : undefined)} ${met}/${measured}  ${t.name}: ${each.map((x) => x?.value ?? 'n/a').join(', ')}`,
    );
  }
  return [...out, lines.join('\n') + '\n'].join('\n');
}

/** The int8 phases next to the fp32 engine and fp32 PyTorch: the issue's int8 ratios and peak RSS. */
function int8Report(all: BenchResults, int8: Int8Phases, targets: Target[]): string[] {
  const { infer, train } = int8;
  const lines: string[] = [];
  lines.push(
    `int8 backbone (--quantize int8: frozen linears int8, weights per output channel in ±${int8.levels}, u8×s8 GEMM${int8.levels < 127 ? ', 7-bit weights: this CPU has no VNNI' : ''})`,
  );
  lines.push('SPARTAN inference (inst/min; wall s | CPU s per batch)');
  lines.push('shape    | engine int8              | engine fp32 | torch fp32 | int8/torch | int8/fp32 engine');
  for (const s of infer.shapes) {
    const fp32 = all.infer.shapes.find((x) => x.shape === s.shape)?.spartan.instancesPerMinute;
    const torch = torchShape(all.torchInfer, s.shape)?.spartan_infer_instances_per_min;
    const i8 = s.spartan.instancesPerMinute;
    lines.push(
      `${s.shape.padEnd(8)} | ${`${fmt(i8).padStart(7)} (${fmt(s.spartan.median, 2)} | ${fmt(medianOf(s.spartan.cpuSeconds), 2)})`.padEnd(24)} | ${fmt(fp32).padStart(11)} | ${fmt(torch).padStart(10)} | ${ratio(i8, torch).padStart(10)} | ${ratio(i8, fp32)}`,
    );
    targets.push(check(torch ? i8 / torch >= 2 : undefined, `int8 inference >= 2.0x fp32 PyTorch at ${s.shape}`, ratio(i8, torch)));
  }
  lines.push(`SPARTAN training, dropout ${train.dropout} (ex/s; wall s | CPU s per step)`);
  lines.push('shape    | engine int8              | engine fp32 | torch fp32 | int8/torch | int8/fp32 engine | step/forward');
  const fp32Train = all.train.find((t) => t.dropout === train.dropout);
  const torchTrain = all.torchTrain.find((x) => x.dropout === train.dropout);
  for (const s of train.shapes) {
    const fp32 = fp32Train?.shapes.find((x) => x.shape === s.shape)?.examplesPerSecond;
    const torch = torchShape(torchTrain, s.shape)?.spartan_train_examples_per_sec;
    const i8 = s.examplesPerSecond;
    lines.push(
      `${s.shape.padEnd(8)} | ${`${fmt(i8, 2).padStart(7)} (${fmt(s.train.median, 2)} | ${fmt(medianOf(s.train.cpuSeconds), 2)})`.padEnd(24)} | ${fmt(fp32, 2).padStart(11)} | ${fmt(torch, 2).padStart(10)} | ${ratio(i8, torch).padStart(10)} | ${ratio(i8, fp32).padStart(16)} | ${fmt(s.stepOverForward, 2)}`,
    );
    targets.push(
      check(
        torch ? i8 / torch >= 1.6 : undefined,
        `int8 training >= 1.6x fp32 PyTorch at ${s.shape}, dropout ${train.dropout}`,
        ratio(i8, torch),
      ),
    );
  }
  lines.push(
    `peak RSS (MB), engine int8: inference ${fmt(int8.inferMemory.peakRssMB, 0)} (as classify; ${fmt(infer.peakRssMB, 0)} with two models), training ${fmt(train.peakRssMB, 0)}`,
  );
  if (!all.quick) targets.push(check(train.peakRssMB <= 1024, 'peak RSS int8 training <= 1.0 GB', `${fmt(train.peakRssMB, 0)} MB`));
  return lines;
}

async function main(): Promise<void> {
  const writeTo = value('--write-backbone', '');
  if (writeTo) {
    saveBackboneDir(await loadBackbone(BACKBONE), writeTo);
    return;
  }
  const phase = value('--phase', '');
  if (phase) {
    exitWithParent(); // a phase started by this script ends with it (Ctrl-C, a kill)
    const fn = { infer: phaseInfer, 'infer-memory': phaseInferMemory, train: phaseTrain, sst2: phaseSst2 }[phase];
    if (!fn) throw new Error(`unknown phase ${phase}`);
    process.stdout.write(JSON.stringify(await fn()) + '\n');
    return;
  }
  const saved = value('--report-from', '');
  if (saved) {
    // The report of an earlier run, from its --json file (no measuring).
    const json = JSON.parse(fs.readFileSync(saved, 'utf8')) as BenchResults | SavedRounds;
    process.stdout.write(reportRounds('rounds' in json ? json.rounds : [json]));
    return;
  }
  const started = Date.now();
  const loadStart = os.loadavg();
  const backboneDir = writeBackboneDir();
  try {
    args.push('--backbone-dir', backboneDir); // every phase reads it (runPhase passes args on)
    const rounds: BenchResults[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (ROUNDS > 1) log(`=== round ${r + 1} of ${ROUNDS}`);
      rounds.push(await (r === 0 ? measureRound(started, loadStart) : measureRound(Date.now(), os.loadavg())));
    }
    process.stdout.write(reportRounds(rounds));
    const jsonOut = value('--json', '');
    if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(ROUNDS > 1 ? { rounds } : rounds[0], null, 2));
  } finally {
    fs.rmSync(backboneDir, { recursive: true, force: true });
  }
}

/**
 * One round: every engine phase and the PyTorch figures beside it. Each PyTorch phase runs right after the engine
 * phase its ratios divide by (inference, then training at each dropout), so that the minutes between the two sides
 * of one ratio are as few as they can be: this VM's speed drifts by 10–20 % over minutes.
 */
async function measureRound(started: number, loadStart: number[]): Promise<BenchResults> {
  const shapes = SHAPES.map(([b, t]) => `${b}x${t}`).join(',');
  const torch = torchAvailable();
  const infer = await runPhase<InferPhase>('infer');
  const torchInfer: TorchRun | Skipped = torch
    ? runTorch('inference', ['--shapes', shapes, '--only', 'plain,spartan'])
    : { skipped: 'PyTorch not installed (scripts/install-torch.sh) or --skip-torch' };
  const inferMemory = await runPhase<InferMemoryPhase>('infer-memory');
  const train: TrainPhase[] = [];
  const torchTrain: TorchRun[] = [];
  for (const p of DROPOUTS) {
    train.push(await runPhase<TrainPhase>('train', ['--dropout', String(p)]));
    if (torch) torchTrain.push(runTorch(`training dropout ${p}`, ['--shapes', shapes, '--only', 'train', '--dropout', String(p)]));
  }
  let int8: Int8Phases | undefined;
  if (QUANTIZE === 'int8') {
    const flag8 = ['--precision', 'int8'];
    int8 = {
      levels: int8WeightLevels(),
      infer: await runPhase<InferPhase>('infer', flag8),
      inferMemory: await runPhase<InferMemoryPhase>('infer-memory', flag8),
      train: await runPhase<TrainPhase>('train', ['--dropout', String(DROPOUTS[0]), ...flag8]),
    };
  } else if (QUANTIZE !== 'none') throw new Error(`--quantize ${QUANTIZE}: use none or int8`);
  let sst2: Sst2Phase | Skipped = { skipped: `${sst2Path()} not found (--sst2 FILE)` };
  let torchSst2: TorchRun | undefined;
  if (fs.existsSync(sst2Path())) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-bench-'));
    const batchesFile = path.join(tmp, 'sst2-batches.json');
    try {
      sst2 = await runPhase<Sst2Phase>('sst2', ['--dropout', String(DROPOUTS[0]), '--batches-out', batchesFile]);
      if (torch)
        torchSst2 = runTorch('SST-2 batches', [
          '--batches',
          batchesFile,
          '--only',
          'spartan,train',
          '--dropout',
          String(DROPOUTS[0]),
          '--reps-train',
          String(SST2_PASSES),
          '--reps-infer',
          String(SST2_PASSES),
        ]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  const all: BenchResults = {
    threads,
    cpu: os.cpus()[0]?.model,
    microBatchTokens: {
      default: MICRO_BATCH_TOKENS,
      int8Training: INT8_TRAINING_MICRO_BATCH_TOKENS,
      inference: INFERENCE_MICRO_BATCH_TOKENS,
    },
    quick,
    dropouts: DROPOUTS,
    loadStart,
    infer,
    inferMemory,
    torchInfer,
    train,
    torchTrain,
    ...(int8 ? { int8 } : {}),
    sst2,
    ...(torchSst2 ? { torchSst2 } : {}),
    loadEnd: os.loadavg(),
    seconds: (Date.now() - started) / 1000,
  };
  return all;
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exit(1);
});
