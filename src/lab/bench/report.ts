/**
 * The constrained-CPU throughput report of the paper's comparison (`spartan bench`): for each device profile and
 * each method, inference instances/minute, fine-tuning examples/second, per-task storage and peak RSS, with ratios
 * against plain RoBERTa (the `head` method's graph: backbone + classification head, which is always measured).
 *
 * How it measures, and why:
 *  - Every measurement runs in a worker process (`spartan bench-worker`), launched under the profile's
 *    constraints (constraints.ts): limits and peak RSS are then per method, and a worker killed by a memory limit
 *    is reported instead of taking the report down.
 *  - One worker per (method, phase): inference workers first, then training workers, so a worker only holds the
 *    sessions it times. All workers of a phase stay alive and the parent asks them for one timed repetition in
 *    turn — rep 1 of every method, then rep 2, … — so that drift of the machine (thermal, other load) hits every
 *    method alike. Warm-up runs once per worker, before the first timed repetition.
 *  - The worker protocol: the worker prints one JSON line when ready (setup times, what it observes of its own
 *    constraints, storage), then answers each "run" line on stdin with one JSON line {seconds}, and "finish" with
 *    {done, peakRssMB}; stdout carries nothing else (logs go to stderr).
 * No vscode import: the CLI runs this; the extension runs the CLI.
 */
import * as os from 'node:os';
import * as readline from 'node:readline';
import { loadBackbone, encodeSafetensors, MethodName, methodSpec, describeExit, Entry, QuantizeMode } from '../../engine';
import { BenchModel, peakRssMB, summarize, syntheticExamples } from './measure';
import { CustomFlags, ProfileName, resolveProfile } from './profiles';
import {
  Capabilities,
  ConstraintPlan,
  Launched,
  Observed,
  ProfileConstraints,
  WRAPPER_EXIT,
  checkObserved,
  detectCapabilities,
  launchConstrained,
  observeSelf,
  planConstraints,
} from './constraints';

export type Phase = 'inference' | 'training';
const NUM_LABELS = 2;

// ------------------------------------------------------------------ the worker (runs in the child process)

export interface WorkerArgs {
  backbone: string;
  method: MethodName;
  phase: Phase;
  batch: number;
  seq: number;
  threads: number;
  warmup: number;
  /** `int8`: the frozen backbone linears int8 (`--quantize`). */
  quantize?: QuantizeMode;
}

/** The worker's first line: set-up figures and what it observes of its own constraints. */
export interface WorkerReady {
  ready: true;
  setupSeconds: number;
  warmupSeconds: number;
  storageBytes: number;
  trainableParams: number;
  observed: Observed;
}

/** Every line a worker prints on stdout (the protocol in this file's header). */
export type WorkerReply = WorkerReady | { seconds: number; cpuSeconds: number } | { done: true; peakRssMB: number } | { error: string };

/** Size of the method's trained tensors saved as an f16 memory file (with representative metadata). */
export function storageBytes(model: BenchModel): number {
  const meta: Record<string, string> = {
    format_version: '1',
    method: model.method.name,
    backbone_name: model.backbone.id,
    backbone_sha256: model.backbone.weightsSha256,
    tokenizer_hash: model.backbone.tokenizerHash,
    task: 'classification',
    labels: JSON.stringify(['negative', 'positive']),
    hyperparameters: JSON.stringify({ method: model.method.name, ...model.method.geometry, lr: 0.001, batchSize: 16, epochs: 3 }),
    metrics: JSON.stringify({ accuracy: 0.5 }),
    created_at: new Date(0).toISOString(),
  };
  return encodeSafetensors(model.trained, 'float16', meta).byteLength;
}

/** The `bench-worker` body: see the protocol in this file's header. Resolves when told to finish. */
export async function runBenchWorker(a: WorkerArgs): Promise<void> {
  const send = (o: WorkerReply) => process.stdout.write(JSON.stringify(o) + '\n');
  try {
    const t0 = performance.now();
    const backbone = await loadBackbone(a.backbone);
    const model = new BenchModel(backbone, methodSpec(a.method), NUM_LABELS);
    const storage = storageBytes(model);
    const trainableParams = [...model.trained.values()].reduce((s, t) => s + t.data.length, 0);
    const batch = syntheticExamples(backbone.config, a.batch, a.seq, NUM_LABELS);
    let fn: () => Promise<void>;
    if (a.phase === 'inference') {
      const session = await model.inferenceSession(a.threads, a.quantize);
      fn = () => model.infer(session, batch);
    } else {
      // Dropout on, as in real fine-tuning (the dropout masks cost time too).
      const session = await model.trainingSession(a.threads, 0.1, a.quantize);
      const step = model.trainStep(session, BenchModel.adamW());
      fn = () => step(batch);
    }
    const setupSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    for (let i = 0; i < a.warmup; i++) await fn();
    send({
      ready: true,
      setupSeconds,
      warmupSeconds: (performance.now() - t1) / 1000,
      storageBytes: storage,
      trainableParams,
      observed: observeSelf(),
    });

    const lines = readline.createInterface({ input: process.stdin });
    for await (const line of lines) {
      const cmd = line.trim();
      if (cmd === 'run') {
        // CPU time of the whole process (every ONNX Runtime thread): CPU seconds / wall seconds shows how many
        // CPUs the repetition really got (less than the threads on a busy machine or under a quota).
        const c0 = process.cpuUsage();
        const t = performance.now();
        await fn();
        const seconds = (performance.now() - t) / 1000;
        const c = process.cpuUsage(c0);
        send({ seconds, cpuSeconds: (c.user + c.system) / 1e6 });
      } else if (cmd === 'finish') {
        break;
      }
    }
    send({ done: true, peakRssMB: peakRssMB() });
    lines.close();
  } catch (e) {
    send({ error: e instanceof Error ? e.message : String(e) });
    process.exitCode = 1;
  }
}

// ------------------------------------------------------------------ the parent's handle on a worker

/** A worker process (an engine child, src/engine/runtime/childProcess.ts) spoken to in the protocol above. */
class WorkerHandle {
  ready: WorkerReady | null = null;

  constructor(
    readonly launched: Launched<WorkerReply>,
    readonly method: MethodName,
    readonly memoryMB: number | null,
  ) {}

  /** Why the worker stopped, in words (exit status, OOM kills, the end of its stderr). */
  failure(oomKills: number | null = null): string {
    const child = this.launched.child;
    const e = child.exitStatus;
    const parts: string[] = [];
    if (e?.code !== null && e?.code !== undefined && WRAPPER_EXIT[e.code]) parts.push(WRAPPER_EXIT[e.code]);
    else parts.push(e ? `worker ${describeExit(e)}` : 'worker stopped answering');
    if (oomKills) parts.push(`its memory cgroup counted ${oomKills} OOM kill(s): it does not fit in ${this.memoryMB} MB`);
    else if (e?.signal === 'SIGKILL' && this.memoryMB !== null) parts.push(`probably out of memory under the ${this.memoryMB} MB limit`);
    const tail = child.tail();
    if (tail) parts.push(`stderr: ${tail}`);
    return parts.join('; ');
  }

  private async reply(): Promise<WorkerReply> {
    let msg: WorkerReply | null;
    try {
      msg = await this.launched.child.next();
    } catch (e) {
      throw new Error(`bench worker: ${(e as Error).message}`);
    }
    if (msg === null) {
      await this.launched.child.exit; // stdout ended: the exit status explains why
      throw new WorkerFailed(this);
    }
    if ('error' in msg) throw new WorkerFailed(this, String(msg.error));
    return msg;
  }

  async waitReady(): Promise<void> {
    const msg = await this.reply();
    if (!('ready' in msg)) throw new Error(`bench worker: expected its ready line, got ${JSON.stringify(msg).slice(0, 200)}`);
    this.ready = msg;
  }

  async run(): Promise<{ seconds: number; cpuSeconds: number }> {
    this.launched.child.send('run');
    const msg = await this.reply();
    if (!('seconds' in msg)) throw new Error(`bench worker: expected a timing, got ${JSON.stringify(msg).slice(0, 200)}`);
    return msg;
  }

  async finish(): Promise<number> {
    this.launched.child.send('finish');
    const msg = await this.reply();
    await this.waitExit();
    if (!('done' in msg)) throw new Error(`bench worker: expected its last line, got ${JSON.stringify(msg).slice(0, 200)}`);
    return msg.peakRssMB;
  }

  async waitExit(): Promise<void> {
    await this.launched.child.exit;
  }

  kill(): void {
    this.launched.child.cancel('SIGKILL');
  }
}

class WorkerFailed extends Error {
  constructor(
    readonly worker: WorkerHandle,
    readonly reported?: string,
  ) {
    super(reported ?? 'worker failed');
  }
}

// ------------------------------------------------------------------ the report

export interface BenchOptions {
  backbone: string;
  methods: MethodName[];
  profiles: ProfileName[];
  batch: number;
  seq: number;
  trainBatch: number;
  warmup: number;
  reps: number;
  flags: CustomFlags;
  noCgroups?: boolean;
  quantize?: QuantizeMode;
  /** How to start a worker: the CLI's entry (`bench-worker` and its options follow); selfEntry() in the CLI. */
  worker: Entry;
  onEvent?: (e: Record<string, unknown>) => void;
  /** Aborts between repetitions (workers are killed, cgroups removed). */
  signal?: AbortSignal;
}

export interface PhaseResult {
  batch: number;
  median: number;
  min: number;
  max: number;
  /** Seconds per batch of every timed repetition, in order. */
  seconds: number[];
  /** CPU seconds (all threads) of each repetition. */
  cpuSeconds: number[];
  /** Median of cpuSeconds / seconds: the CPUs the worker really used (≈ threads on an idle machine, less when busy or throttled). */
  cpusUsed: number;
  peakRssMB: number | null;
  setupSeconds: number | null;
  warmupSeconds: number | null;
}

export interface InferenceResult extends PhaseResult {
  /** From the median; the range from the slowest and fastest repetitions. */
  instancesPerMinute: number;
  instancesPerMinuteRange: [number, number];
}

export interface TrainingResult extends PhaseResult {
  examplesPerSecond: number;
  examplesPerSecondRange: [number, number];
}

export interface MethodResult {
  method: MethodName;
  inference: InferenceResult | null;
  training: TrainingResult | null;
  /** Bytes of the method's trained tensors as an f16 memory file (header and metadata included). */
  storageBytes: number | null;
  trainableParams: number | null;
  /** The larger of the two phases' worker peak RSS. */
  peakRssMB: number | null;
  ratios: { inferenceVsPlain: number | null; trainingVsPlain: number | null };
  /** Why a phase has no figures (worker failed, e.g. killed by the memory limit). */
  errors: { inference?: string; training?: string };
}

export interface ProfileReport {
  profile: ProfileName;
  label: string;
  cpu: string;
  rationale: string;
  threads: number;
  /** True when the profile has more cores than this machine offers (then only `threads` cores are emulated). */
  coresCapped: boolean;
  constraints: ProfileConstraints;
  /** Plain RoBERTa (backbone + head, the `head` method's graph): the denominator of the ratios. */
  baseline: MethodResult;
  results: MethodResult[];
}

/** One flat row per profile × method: what the benchmark panel (media/benchmark.js) draws. */
export interface BenchRow {
  profile: ProfileName;
  method: MethodName;
  batch: number;
  seq: number;
  trainBatch: number;
  instancesPerMinute: number | null;
  trainExamplesPerSecond: number | null;
  peakRssMB: number | null;
  storageBytes: number | null;
  inferenceVsPlain: number | null;
  trainingVsPlain: number | null;
}

export interface BenchReport {
  backbone: string;
  batch: number;
  seq: number;
  trainBatch: number;
  warmup: number;
  reps: number;
  methods: MethodName[];
  /** Backbone precision of every measurement (`--quantize`; absent in reports from before it existed: none). */
  quantize?: QuantizeMode;
  /** loadAverage: 1-minute load at the start and the end; above `cpus`, the figures include contention. */
  machine: {
    cpu: string;
    cpus: number;
    totalMemoryMB: number;
    platform: string;
    node: string;
    loadAverage: { start: number; end: number };
  };
  capabilities: {
    taskset: string | null;
    prlimit: string | null;
    cgroupMemory: string | null;
    cgroupCpu: string | null;
    cgroupDetail: string[];
  };
  profiles: ProfileReport[];
  rows: BenchRow[];
  /** profile → constraints (the same objects as profiles[i].constraints; for the panel). */
  constraints: Record<string, ProfileConstraints>;
  startedAt: string;
  seconds: number;
}

function phaseResult(seconds: number[], cpuSeconds: number[], batch: number, w: WorkerHandle, peak: number | null): PhaseResult {
  const t = summarize(seconds);
  const cpusUsed = summarize(seconds.map((s, i) => cpuSeconds[i] / s)).median;
  return {
    batch,
    median: t.median,
    min: t.min,
    max: t.max,
    seconds,
    cpuSeconds,
    cpusUsed,
    peakRssMB: peak,
    setupSeconds: w.ready?.setupSeconds ?? null,
    warmupSeconds: w.ready?.warmupSeconds ?? null,
  };
}

/** Runs one phase for every method of a profile, interleaved; returns per-method results or errors. */
async function runPhase(
  opts: BenchOptions,
  plan: ConstraintPlan,
  phase: Phase,
  methods: MethodName[],
  emit: (e: Record<string, unknown>) => void,
  observedProblems: Partial<Record<keyof ProfileConstraints, string>>,
): Promise<Map<MethodName, { result?: PhaseResult; error?: string; storageBytes?: number; trainableParams?: number }>> {
  const batch = phase === 'inference' ? opts.batch : opts.trainBatch;
  const out = new Map<MethodName, { result?: PhaseResult; error?: string; storageBytes?: number; trainableParams?: number }>();
  const workers = new Map<MethodName, WorkerHandle>();
  const seconds = new Map<MethodName, number[]>();
  const cpuSeconds = new Map<MethodName, number[]>();
  const fail = async (m: MethodName, e: unknown) => {
    const w = workers.get(m);
    let message = e instanceof Error ? e.message : String(e);
    if (w) {
      // The cgroup can only be removed (and its OOM count read) once the worker is gone.
      w.kill();
      await w.waitExit();
      const { oomKills } = w.launched.dispose();
      if (e instanceof WorkerFailed) message = e.reported ?? w.failure(oomKills);
    }
    workers.delete(m);
    out.set(m, { error: message });
    emit({ stage: 'error', profile: plan.profile.name, method: m, phase, error: message });
  };
  const abortIfAsked = () => {
    if (opts.signal?.aborted) throw Object.assign(new Error('benchmark cancelled'), { name: 'AbortError' });
  };

  try {
    // Sequential start-up: set-up and warm-up of one worker must not compete with another's.
    for (const m of methods) {
      abortIfAsked();
      emit({ stage: 'setup', profile: plan.profile.name, method: m, phase, batch, seq: opts.seq });
      const args = [
        'bench-worker',
        '--backbone',
        opts.backbone,
        '--method',
        m,
        '--phase',
        phase,
        '--batch',
        String(batch),
        '--seq',
        String(opts.seq),
        '--threads',
        String(plan.profile.threads),
        '--warmup',
        String(opts.warmup),
        ...(opts.quantize === 'int8' ? ['--quantize', 'int8'] : []),
      ];
      let launched: Launched<WorkerReply>;
      try {
        launched = launchConstrained<WorkerReply>(plan, opts.worker, args);
      } catch (e) {
        out.set(m, { error: `cannot launch the worker: ${(e as Error).message}` });
        emit({ stage: 'error', profile: plan.profile.name, method: m, phase, error: out.get(m)!.error });
        continue;
      }
      const w = new WorkerHandle(launched, m, plan.profile.memoryMB);
      workers.set(m, w);
      try {
        await w.waitReady();
        seconds.set(m, []);
        cpuSeconds.set(m, []);
        for (const [k, v] of Object.entries(checkObserved(plan, launched, w.ready!.observed))) {
          observedProblems[k as keyof ProfileConstraints] ??= v;
        }
      } catch (e) {
        await fail(m, e);
      }
    }
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const m of methods) {
        const w = workers.get(m);
        if (!w) continue;
        abortIfAsked();
        try {
          const s = await w.run();
          seconds.get(m)!.push(s.seconds);
          cpuSeconds.get(m)!.push(s.cpuSeconds);
          emit({
            stage: 'rep',
            profile: plan.profile.name,
            method: m,
            phase,
            rep: rep + 1,
            reps: opts.reps,
            seconds: s.seconds,
            cpuSeconds: s.cpuSeconds,
            batch,
            seq: opts.seq,
          });
        } catch (e) {
          await fail(m, e);
        }
      }
    }
    for (const m of methods) {
      const w = workers.get(m);
      if (!w) continue;
      try {
        const peak = await w.finish();
        w.launched.dispose();
        out.set(m, {
          result: phaseResult(seconds.get(m)!, cpuSeconds.get(m)!, batch, w, peak),
          storageBytes: w.ready!.storageBytes,
          trainableParams: w.ready!.trainableParams,
        });
      } catch (e) {
        await fail(m, e);
      }
    }
  } finally {
    for (const w of workers.values()) {
      w.kill();
      await w.waitExit();
      w.launched.dispose();
    }
  }
  return out;
}

/** Runs the whole report (see this file's header). */
export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const started = Date.now();
  const loadStart = os.loadavg()[0];
  const emit = (e: Record<string, unknown>) => opts.onEvent?.({ event: 'bench', ...e });
  const caps: Capabilities = detectCapabilities({ noCgroups: opts.noCgroups });
  // Plain RoBERTa is measured whether asked or not: it is the denominator of every ratio.
  const measured: MethodName[] = opts.methods.includes('head') ? [...opts.methods] : [...opts.methods, 'head'];
  const profiles: ProfileReport[] = [];
  emit({
    stage: 'start',
    backbone: opts.backbone,
    profiles: opts.profiles,
    methods: measured,
    batch: opts.batch,
    seq: opts.seq,
    reps: opts.reps,
    warmup: opts.warmup,
  });

  for (const name of opts.profiles) {
    const profile = resolveProfile(name, opts.flags);
    const plan = planConstraints(profile, caps);
    emit({ stage: 'profile', profile: name, label: profile.label, threads: profile.threads, constraints: plan.constraints });
    const problems: Partial<Record<keyof ProfileConstraints, string>> = {};
    const inf = await runPhase(opts, plan, 'inference', measured, emit, problems);
    const trn = await runPhase(opts, plan, 'training', measured, emit, problems);
    // A constraint holds only if every worker saw it from the inside.
    const constraints: ProfileConstraints = JSON.parse(JSON.stringify(plan.constraints));
    for (const [k, why] of Object.entries(problems)) {
      const c = constraints[k as keyof ProfileConstraints];
      c.enforced = false;
      c.detail = `${c.detail}; NOT in force: ${why}`;
    }

    const results = new Map<MethodName, MethodResult>();
    for (const m of measured) {
      const i = inf.get(m),
        t = trn.get(m);
      const inference: InferenceResult | null = i?.result
        ? {
            ...i.result,
            instancesPerMinute: (60 * i.result.batch) / i.result.median,
            instancesPerMinuteRange: [(60 * i.result.batch) / i.result.max, (60 * i.result.batch) / i.result.min],
          }
        : null;
      const training: TrainingResult | null = t?.result
        ? {
            ...t.result,
            examplesPerSecond: t.result.batch / t.result.median,
            examplesPerSecondRange: [t.result.batch / t.result.max, t.result.batch / t.result.min],
          }
        : null;
      const peaks = [inference?.peakRssMB, training?.peakRssMB].filter((x): x is number => typeof x === 'number');
      const errors: MethodResult['errors'] = {};
      if (i?.error) errors.inference = i.error;
      if (t?.error) errors.training = t.error;
      results.set(m, {
        method: m,
        inference,
        training,
        storageBytes: i?.storageBytes ?? t?.storageBytes ?? null,
        trainableParams: i?.trainableParams ?? t?.trainableParams ?? null,
        peakRssMB: peaks.length ? Math.max(...peaks) : null,
        ratios: { inferenceVsPlain: null, trainingVsPlain: null },
        errors,
      });
    }
    const plain = results.get('head')!;
    for (const r of results.values()) {
      if (r.inference && plain.inference) r.ratios.inferenceVsPlain = r.inference.instancesPerMinute / plain.inference.instancesPerMinute;
      if (r.training && plain.training) r.ratios.trainingVsPlain = r.training.examplesPerSecond / plain.training.examplesPerSecond;
    }
    profiles.push({
      profile: name,
      label: profile.label,
      cpu: profile.cpu,
      rationale: profile.rationale,
      threads: profile.threads,
      coresCapped: profile.coresCapped,
      constraints,
      baseline: plain,
      results: opts.methods.map((m) => results.get(m)!),
    });
    emit({ stage: 'profileDone', profile: name });
  }

  const rows: BenchRow[] = profiles.flatMap((p) =>
    p.results.map((r) => ({
      profile: p.profile,
      method: r.method,
      batch: opts.batch,
      seq: opts.seq,
      trainBatch: opts.trainBatch,
      instancesPerMinute: r.inference?.instancesPerMinute ?? null,
      trainExamplesPerSecond: r.training?.examplesPerSecond ?? null,
      peakRssMB: r.peakRssMB,
      storageBytes: r.storageBytes,
      inferenceVsPlain: r.ratios.inferenceVsPlain,
      trainingVsPlain: r.ratios.trainingVsPlain,
    })),
  );
  const report: BenchReport = {
    backbone: opts.backbone,
    batch: opts.batch,
    seq: opts.seq,
    trainBatch: opts.trainBatch,
    warmup: opts.warmup,
    reps: opts.reps,
    methods: opts.methods,
    quantize: opts.quantize ?? 'none',
    machine: {
      cpu: os.cpus()[0]?.model?.trim() ?? 'unknown',
      cpus: resolveProfile('host').availableCpus.length,
      totalMemoryMB: Math.round(os.totalmem() / 2 ** 20),
      platform: `${process.platform} ${os.release()}`,
      node: process.version,
      loadAverage: { start: loadStart, end: os.loadavg()[0] },
    },
    capabilities: {
      taskset: caps.taskset,
      prlimit: caps.prlimit,
      cgroupMemory: caps.cgroup.memory ? `v${caps.cgroup.memory.version} ${caps.cgroup.memory.parent}` : null,
      cgroupCpu: caps.cgroup.cpu ? `v${caps.cgroup.cpu.version} ${caps.cgroup.cpu.parent}` : null,
      cgroupDetail: caps.cgroup.detail,
    },
    profiles,
    rows,
    constraints: Object.fromEntries(profiles.map((p) => [p.profile, p.constraints])),
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
  };
  emit({ stage: 'done', seconds: report.seconds });
  return report;
}

// ------------------------------------------------------------------ rendering

export const CSV_COLUMNS = [
  'profile',
  'label',
  'method',
  'batch',
  'seq',
  'train_batch',
  'threads',
  'affinity',
  'memory_limit_mb',
  'cpu_quota',
  'inference_instances_per_minute',
  'inference_median_s',
  'inference_min_s',
  'inference_max_s',
  'training_examples_per_second',
  'training_median_s',
  'training_min_s',
  'training_max_s',
  'inference_cpus_used',
  'training_cpus_used',
  'storage_bytes',
  'peak_rss_mb',
  'inference_vs_plain',
  'training_vs_plain',
  'not_enforced',
  'error',
] as const;

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s =
    typeof v === 'string'
      ? v
      : typeof v === 'number'
        ? String(Number.isInteger(v) ? v : Number(v.toPrecision(6)))
        : typeof v === 'boolean'
          ? String(v)
          : Array.isArray(v)
            ? v.join(',')
            : JSON.stringify(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One row per profile × method; constraints that were asked for but are not in force are listed per row. */
export function toCsv(r: BenchReport): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const p of r.profiles) {
    const c = p.constraints;
    const notEnforced = (Object.entries(c) as [string, { requested: unknown; enforced: boolean }][])
      .filter(([, v]) => v.requested !== null && !v.enforced)
      .map(([k]) => k)
      .join(';');
    for (const m of p.results) {
      const row = [
        p.profile,
        p.label,
        m.method,
        r.batch,
        r.seq,
        r.trainBatch,
        c.threads.applied,
        c.affinity.enforced ? c.affinity.applied : '',
        c.memory.enforced ? c.memory.applied : '',
        c.cpuQuota.enforced ? c.cpuQuota.requested : '',
        m.inference?.instancesPerMinute,
        m.inference?.median,
        m.inference?.min,
        m.inference?.max,
        m.training?.examplesPerSecond,
        m.training?.median,
        m.training?.min,
        m.training?.max,
        m.inference?.cpusUsed,
        m.training?.cpusUsed,
        m.storageBytes,
        m.peakRssMB,
        m.ratios.inferenceVsPlain,
        m.ratios.trainingVsPlain,
        notEnforced,
        [m.errors.inference && `inference: ${m.errors.inference}`, m.errors.training && `training: ${m.errors.training}`]
          .filter(Boolean)
          .join('; '),
      ];
      lines.push(row.map(csvCell).join(','));
    }
  }
  return lines.join('\n') + '\n';
}

function fmtBytes(n: number | null): string {
  if (n === null) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

function fmtNum(n: number | null | undefined, digits = 1): string {
  return n === null || n === undefined ? '–' : n >= 100 ? n.toFixed(0) : n.toFixed(digits);
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** The human-readable report. */
export function formatReport(r: BenchReport): string {
  const out: string[] = [];
  out.push(
    `backbone ${r.backbone}${r.quantize === 'int8' ? ' (int8 linears)' : ''}; inference batch ${r.batch}×${r.seq}, training batch ${r.trainBatch}×${r.seq}; ${r.reps} rep(s), ${r.warmup} warm-up; methods interleaved`,
  );
  const load = Math.max(r.machine.loadAverage.start, r.machine.loadAverage.end);
  if (load > r.machine.cpus * 0.75) {
    out.push(
      `WARNING: the machine was busy (load average up to ${load.toFixed(1)} on ${r.machine.cpus} CPU(s)): the figures include contention; see "CPUs used"`,
    );
  }
  out.push(
    `machine: ${r.machine.cpu}, ${r.machine.cpus} CPU(s), ${r.machine.totalMemoryMB} MB; taskset ${r.capabilities.taskset ? 'yes' : 'no'}, prlimit ${r.capabilities.prlimit ? 'yes' : 'no'}, cgroup memory ${r.capabilities.cgroupMemory ?? 'no'}, cgroup cpu ${r.capabilities.cgroupCpu ?? 'no'}`,
  );
  for (const p of r.profiles) {
    out.push('');
    out.push(`== ${p.profile} (${p.label}: ${p.cpu}) ==`);
    for (const [k, c] of Object.entries(p.constraints)) {
      if (c.requested === null && k !== 'threads') continue;
      out.push(
        `  ${k.padEnd(8)} ${c.enforced ? 'enforced    ' : 'NOT enforced'} requested ${c.requested ?? '–'}, applied ${c.applied ?? '–'}${c.mechanism ? ` (${c.mechanism})` : ''}: ${c.detail}`,
      );
    }
    const rows = [p.baseline, ...p.results.filter((m) => m.method !== 'head')].map((m) => [
      m === p.baseline ? 'plain (head)' : m.method,
      m.inference
        ? `${fmtNum(m.inference.instancesPerMinute)} [${fmtNum(m.inference.instancesPerMinuteRange[0])}–${fmtNum(m.inference.instancesPerMinuteRange[1])}]`
        : 'failed',
      fmtNum(m.ratios.inferenceVsPlain, 2),
      m.training
        ? `${fmtNum(m.training.examplesPerSecond, 2)} [${fmtNum(m.training.examplesPerSecondRange[0], 2)}–${fmtNum(m.training.examplesPerSecondRange[1], 2)}]`
        : 'failed',
      fmtNum(m.ratios.trainingVsPlain, 2),
      `${fmtNum(m.inference?.cpusUsed, 2)} / ${fmtNum(m.training?.cpusUsed, 2)}`,
      fmtBytes(m.storageBytes),
      m.peakRssMB === null ? '–' : `${m.peakRssMB.toFixed(0)} MB`,
    ]);
    out.push('');
    out.push(
      table(
        [
          'method',
          'inference inst/min [range]',
          '× plain',
          'train ex/s [range]',
          '× plain',
          'CPUs used inf/train',
          'storage/task',
          'peak RSS',
        ],
        rows,
      ),
    );
    for (const m of new Set([p.baseline, ...p.results])) {
      for (const [phase, e] of Object.entries(m.errors)) out.push(`  ${m.method} ${phase} failed: ${e}`);
    }
  }
  out.push('');
  out.push(`(${r.seconds.toFixed(0)} s)`);
  return out.join('\n');
}
