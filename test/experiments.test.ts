import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mean, sampleStd } from '../src/lab/experiments/stats';
import { allocate, sampleFewShot } from '../src/lab/experiments/fewShot';
import { buildTable, formatMarkdown, formatSummary, formatTable, protocolNotes } from '../src/lab/experiments/table';
import { Protocol, RunRecord, runKey } from '../src/lab/experiments/results';
import { subset } from '../src/lab/experiments/data';

const ROOT = path.join(__dirname, '..');
const GLUE = path.join(ROOT, '../shared/data/glue');
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-exp-'));

const PROTOCOL: Protocol = {
  backbone: 'synthetic:tiny@0',
  lr: 1e-3,
  epochs: 1,
  trainRows: null,
  devRows: null,
  fewShot: null,
  fewShotSteps: null,
  stratified: false,
  batchSize: 16,
  maxLength: 128,
  dropout: 0.1,
  warmupRatio: 0.06,
  weightDecay: 0,
  geometry: '16x3 k8 t1.6',
};

function record(task: string, method: string, seed: number, metrics: Record<string, number>, extra: Partial<RunRecord> = {}): RunRecord {
  const metric = task === 'STS-B' ? 'pearson' : task === 'MRPC' ? 'f1' : 'accuracy';
  const protocol = { ...PROTOCOL, ...(extra.protocol ?? {}) };
  return {
    key: runKey(task, method, seed, protocol),
    task,
    method,
    seed,
    protocol,
    metric,
    score: metrics[metric],
    metrics,
    bestEpoch: 1,
    steps: 10,
    trainExamples: 100,
    devExamples: 50,
    trainSeconds: 2,
    examplesPerSecond: 50,
    wallSeconds: 3,
    trainableParameters: 1000,
    storageBytes: 2048,
    memory: null,
    finishedAt: '2026-01-01T00:00:00Z',
    ...extra,
    ...(extra.protocol ? { protocol } : {}),
  };
}

test('mean and sample standard deviation (n − 1)', () => {
  assert.equal(mean([1, 2, 3, 4]), 2.5);
  assert.ok(Math.abs(sampleStd([1, 2, 3, 4]) - Math.sqrt(5 / 3)) < 1e-12);
  assert.equal(sampleStd([7]), 0);
  assert.ok(Number.isNaN(mean([])));
});

test('table: per-task mean ± std over seeds, per-seed average over tasks, throughput and storage', () => {
  const runs: RunRecord[] = [];
  const sst = [0.8, 0.82, 0.84],
    mrpc = [0.9, 0.88, 0.86];
  [1, 2, 3].forEach((seed, i) => {
    runs.push(
      record('SST-2', 'spartan', seed, { accuracy: sst[i], f1: 0, mcc: 0 }, { examplesPerSecond: 10 * seed, storageBytes: 40 * 1024 }),
    );
    runs.push(
      record(
        'MRPC',
        'spartan',
        seed,
        { f1: mrpc[i], accuracy: mrpc[i] - 0.1, mcc: 0 },
        { examplesPerSecond: 10 * seed, storageBytes: 40 * 1024 },
      ),
    );
    runs.push(record('SST-2', 'head', seed, { accuracy: 0.5, f1: 0, mcc: 0 }, { storageBytes: 3 * 1024 * 1024 }));
  });
  const table = buildTable(runs, { tasks: ['SST-2', 'MRPC'], methods: ['head', 'spartan'] });
  assert.deepEqual(
    table.columns.map((c) => `${c.task}/${c.metric}`),
    ['SST-2/accuracy', 'MRPC/f1', 'MRPC/accuracy'],
  );
  assert.deepEqual(
    table.rows.map((r) => r.label),
    ['head', 'spartan'],
  );
  const spartan = table.rows[1];
  assert.ok(Math.abs(spartan.cells['SST-2/accuracy'].mean - 0.82) < 1e-12);
  assert.ok(Math.abs(spartan.cells['SST-2/accuracy'].std - 0.02) < 1e-12);
  // Per-seed averages are all 0.85 (0.8+0.9, 0.82+0.88, 0.84+0.86): mean 0.85, std 0.
  assert.ok(Math.abs(spartan.average!.mean - 0.85) < 1e-12);
  assert.ok(spartan.average!.std < 1e-12);
  assert.equal(spartan.examplesPerSecond, 20);
  // head has no MRPC run: no average, and its MRPC cell is empty.
  assert.equal(table.rows[0].average, null);
  assert.equal(formatSummary(spartan.cells['SST-2/accuracy']), '82.0 ± 2.0');
  const text = formatTable(table, protocolNotes(runs));
  assert.match(text, /spartan\s+1e-3\s+82\.0 ± 2\.0\s+88\.0 ± 2\.0\s+78\.0 ± 2\.0\s+85\.0 ± 0\.0\s+40\.0 KiB/);
  assert.match(text, /head .* 3\.0 MiB/);
  assert.match(text, /learning rates: spartan 1e-3, head 1e-3/);
  const md = formatMarkdown(table).trim().split('\n');
  assert.equal(md.length, 4); // header, alignment, two rows
  assert.match(md[0], /^\| Method \| LR \| SST-2 Acc \| MRPC F1 \| MRPC Acc \| Avg \|/);
});

test('table: a method run with two learning rates gets a row per rate', () => {
  const runs = [
    record('SST-2', 'full', 1, { accuracy: 0.6 }),
    record('SST-2', 'full', 1, { accuracy: 0.7 }, { protocol: { ...PROTOCOL, lr: 2e-5 } }),
  ];
  assert.notEqual(runs[0].key, runs[1].key);
  assert.deepEqual(
    buildTable(runs).rows.map((r) => r.label),
    ['full (lr 2e-5)', 'full (lr 1e-3)'],
  );
});

test('few-shot sampling: size, seed determinism, stratified proportions', () => {
  const rows = [
    ...Array.from({ length: 300 }, (_, i) => ({ label: 'a', i })),
    ...Array.from({ length: 100 }, (_, i) => ({ label: 'b', i })),
  ];
  const s1 = sampleFewShot(rows, { size: 200, seed: 1, stratified: false });
  assert.equal(s1.length, 200);
  assert.equal(new Set(s1).size, 200);
  assert.deepEqual(sampleFewShot(rows, { size: 200, seed: 1, stratified: false }), s1);
  assert.notDeepEqual(sampleFewShot(rows, { size: 200, seed: 2, stratified: false }), s1);
  for (const seed of [1, 2, 3]) {
    const s = sampleFewShot(rows, { size: 200, seed, stratified: true });
    assert.equal(s.length, 200);
    assert.equal(s.filter((r) => r.label === 'a').length, 150);
    assert.equal(s.filter((r) => r.label === 'b').length, 50);
  }
  assert.notDeepEqual(
    sampleFewShot(rows, { size: 200, seed: 1, stratified: true }),
    sampleFewShot(rows, { size: 200, seed: 2, stratified: true }),
  );
  // Regression rows have no classes: stratified falls back to a uniform sample of the same size.
  const scores = Array.from({ length: 50 }, (_, i) => ({ label: i / 10 }));
  assert.deepEqual(
    sampleFewShot(scores, { size: 20, seed: 4, stratified: true }),
    sampleFewShot(scores, { size: 20, seed: 4, stratified: false }),
  );
  assert.equal(sampleFewShot(rows, { size: 1000, seed: 1, stratified: true }).length, 400);
});

test('allocate: proportional quotas summing to n, at least one per class', () => {
  assert.deepEqual(allocate([300, 100], 200), [150, 50]);
  assert.deepEqual(allocate([1000, 10, 5], 20), [18, 1, 1]);
  for (const [sizes, n] of [
    [[3, 3, 3], 7],
    [[5, 1], 6],
    [[10, 20, 30], 13],
  ] as [number[], number][]) {
    const q = allocate(sizes, n);
    assert.equal(
      q.reduce((a, b) => a + b, 0),
      n,
    );
    q.forEach((v, i) => assert.ok(v >= 1 && v <= sizes[i]));
  }
  assert.deepEqual(subset([1, 2, 3, 4, 5], 3), subset([1, 2, 3, 4, 5], 3));
  assert.equal(subset([1, 2, 3, 4, 5], 3).length, 3);
});

/** A GLUE folder with the first `n` rows of the real SST-2 and STS-B train and dev TSVs. */
function sliceGlue(n: number): string {
  const dir = tmp();
  for (const task of ['SST-2', 'STS-B']) {
    fs.mkdirSync(path.join(dir, task));
    for (const f of ['train.tsv', 'dev.tsv']) {
      const lines = fs.readFileSync(path.join(GLUE, task, f), 'utf8').split('\n');
      fs.writeFileSync(path.join(dir, task, f), lines.slice(0, n + 1).join('\n') + '\n');
    }
  }
  return dir;
}

function cli(args: string[]): { stdout: string } {
  const stdout = execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
  return { stdout };
}

function cliWithEvents(args: string[]): { result: Record<string, any>; events: Record<string, any>[] } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args, '--json'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.equal(r.status, 0, r.stderr);
  const events = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  return { result: JSON.parse(r.stdout), events };
}

test('glue run on 60-row slices of SST-2 and STS-B: results JSON, table, resume', { timeout: 120_000 }, () => {
  const glue = sliceGlue(60);
  const dir = tmp();
  const out = path.join(dir, 'results.json');
  const md = path.join(dir, 'table.md');
  const args = [
    'glue',
    'run',
    '--glue-dir',
    glue,
    '--tasks',
    'SST-2,STS-B',
    '--methods',
    'spartan,head',
    '--seeds',
    '1',
    '--backbone',
    'synthetic:tiny',
    '--epochs',
    '1',
    '--out',
    out,
    '--markdown',
    md,
    '--threads',
    '1',
  ];
  const first = cliWithEvents(args);
  const results = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.equal(results.format, 'spartan-glue-results');
  assert.equal(results.runs.length, 4);
  for (const r of results.runs) {
    assert.equal(r.trainExamples, 60);
    assert.equal(r.devExamples, 60);
    assert.equal(r.metric, r.task === 'SST-2' ? 'accuracy' : 'pearson');
    assert.equal(r.score, r.metrics[r.metric]);
    assert.ok(r.score >= -1 && r.score <= 1);
    assert.equal(r.protocol.lr, 1e-3);
    assert.ok(r.examplesPerSecond > 0 && r.trainSeconds > 0 && r.storageBytes > 0);
    assert.equal(r.steps, 4); // ceil(60 / 16)
    // Throughput × step time gives back the examples trained on (one epoch of 60).
    assert.ok(Math.abs(r.examplesPerSecond * r.trainSeconds - 60) < 1e-6);
  }
  const by = (task: string, method: string) => results.runs.find((r: RunRecord) => r.task === task && r.method === method);
  // SPARTAN trains memories + head + LayerNorms: more parameters and bytes than the head alone; F16 = 2 bytes each.
  assert.ok(by('SST-2', 'spartan').trainableParameters > by('SST-2', 'head').trainableParameters);
  assert.ok(by('SST-2', 'head').storageBytes >= 2 * by('SST-2', 'head').trainableParameters);
  assert.ok(by('SST-2', 'head').storageBytes < 2 * by('SST-2', 'head').trainableParameters + 4096);
  // The regression head has one output, the binary one two.
  assert.equal(by('SST-2', 'head').trainableParameters - by('STS-B', 'head').trainableParameters, 64 + 1);
  assert.deepEqual(
    first.result.table.rows.map((r: { label: string }) => r.label),
    ['spartan', 'head'],
  );
  assert.equal(first.events.filter((e) => e.event === 'result').length, 4);
  assert.equal(first.result.missing, 0);
  const markdown = fs.readFileSync(md, 'utf8');
  assert.match(
    markdown,
    /\| Method \| LR \| SST-2 Acc \| STS-B Pearson \| STS-B Spearman \| Avg \| Storage\/task \| Params \| Train ex\/s \| Seeds \|/,
  );
  assert.match(markdown, /\| spartan \| 1e-3 \| -?\d+\.\d \| -?\d+\.\d \| -?\d+\.\d \| -?\d+\.\d \| [\d.]+ KiB \|/);

  // Resume: nothing left to do, the file untouched.
  const before = fs.readFileSync(out, 'utf8');
  const second = cliWithEvents(args);
  assert.equal(second.events.find((e) => e.event === 'start')!.toRun, 0);
  assert.equal(second.events.find((e) => e.event === 'done')!.ran, 0);
  assert.equal(fs.readFileSync(out, 'utf8'), before);
  assert.deepEqual(second.result.table, first.result.table);

  // Drop one run: only that one is run again; a different learning rate is a different run.
  const partial = JSON.parse(before);
  partial.runs = partial.runs.filter((r: RunRecord) => !(r.task === 'STS-B' && r.method === 'head'));
  fs.writeFileSync(out, JSON.stringify(partial));
  const third = cliWithEvents([...args, '--methods', 'head', '--lr-head', '0.01']);
  assert.equal(third.events.find((e) => e.event === 'done')!.ran, 2);
  const fourth = cliWithEvents(args);
  assert.equal(fourth.events.find((e) => e.event === 'done')!.ran, 1);
  assert.equal(JSON.parse(fs.readFileSync(out, 'utf8')).runs.length, 6);

  const table = cli(['glue', 'table', '--results', out]).stdout;
  assert.match(table, /head \(lr 1e-2\)/);
  assert.match(table, /learning rates: spartan 1e-3, head 1e-3\/1e-2/);
});

test('GLUE data: MRPC F1 is computed for "equivalent", which sorts to index 0', async () => {
  const { loadGlueTaskData } = await import('../src/lab/experiments/data');
  const mrpc = loadGlueTaskData(GLUE, 'mrpc', { trainRows: 100, devRows: 50 });
  assert.equal(mrpc.task, 'MRPC');
  assert.deepEqual(mrpc.info.labels, ['equivalent', 'not_equivalent']);
  assert.equal(mrpc.positiveClass, 0);
  assert.equal(mrpc.metric, 'f1');
  assert.equal(mrpc.train.length, 100);
  assert.equal(mrpc.dev.length, 50);
  assert.equal(mrpc.totalDev, 408);
  const { classificationMetrics } = await import('../src/engine/training/metrics');
  // Predicting "equivalent" everywhere: F1 of that class is high, of the other 0 — the index matters.
  const gold = mrpc.dev.map((r) => mrpc.info.labels.indexOf(r.label as string));
  const pred = gold.map(() => 0);
  assert.ok(classificationMetrics(pred, gold, 2, mrpc.positiveClass).f1 > 0.5);
  assert.equal(classificationMetrics(pred, gold, 2).f1, 0);
});

test('glue import reports skipped TSV lines with file:line; few-shot run trains exactly the given steps', { timeout: 60_000 }, () => {
  const glue = sliceGlue(60);
  const train = path.join(glue, 'SST-2', 'train.tsv');
  fs.appendFileSync(train, 'a sentence without a label\n');
  const outDir = tmp();
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'src/cli/main.ts'),
      'glue',
      'import',
      '--task',
      'sst2',
      '--dir',
      path.join(glue, 'SST-2'),
      '--out',
      outDir,
      '--json',
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.task, 'SST-2');
  assert.equal(result.files[0].rows, 60);
  assert.deepEqual(
    result.files[0].skipped.map((s: { file: string; line: number }) => `${path.basename(s.file)}:${s.line}`),
    ['train.tsv:62'],
  );
  assert.equal(fs.readFileSync(path.join(outDir, 'train.jsonl'), 'utf8').trim().split('\n').length, 60);
  assert.equal(fs.readFileSync(path.join(outDir, 'dev.jsonl'), 'utf8').trim().split('\n').length, 60);

  const out = path.join(tmp(), 'fs.json');
  const run = cliWithEvents([
    'glue',
    'run',
    '--glue-dir',
    glue,
    '--tasks',
    'SST-2',
    '--methods',
    'head',
    '--seeds',
    '1,2',
    '--backbone',
    'synthetic:tiny',
    '--few-shot',
    '20',
    '--few-shot-steps',
    '3',
    '--stratified',
    '--out',
    out,
    '--threads',
    '1',
  ]);
  const runs = JSON.parse(fs.readFileSync(out, 'utf8')).runs as RunRecord[];
  assert.equal(runs.length, 2);
  for (const x of runs) {
    assert.equal(x.steps, 3);
    assert.equal(x.trainExamples, 20);
    assert.equal(x.devExamples, 60);
    assert.equal(x.protocol.fewShot, 20);
    assert.equal(x.protocol.stratified, true);
    assert.ok(x.metrics.accuracy >= 0 && x.metrics.accuracy <= 1);
  }
  // No dev evaluation while training: the only evaluation is the final one on the full dev set.
  assert.equal(run.events.filter((e) => e.event === 'eval').length, 0);
  assert.match(run.result.notes[0], /few-shot: 20 training rows sampled per seed \(stratified/);
});

test('glue run --parallel 2: two workers share the results file, each run done once', { timeout: 60_000 }, () => {
  const glue = sliceGlue(30);
  const out = path.join(tmp(), 'par.json');
  const run = cliWithEvents([
    'glue',
    'run',
    '--glue-dir',
    glue,
    '--tasks',
    'SST-2,STS-B',
    '--methods',
    'head,spartan',
    '--seeds',
    '1,2',
    '--backbone',
    'synthetic:tiny',
    '--epochs',
    '1',
    '--out',
    out,
    '--threads',
    '2',
    '--parallel',
    '2',
  ]);
  const runs = JSON.parse(fs.readFileSync(out, 'utf8')).runs as RunRecord[];
  assert.equal(runs.length, 8);
  assert.equal(new Set(runs.map((r) => `${r.task}/${r.method}/${r.seed}`)).size, 8);
  // Both workers reported; together they ran every run exactly once.
  const done = run.events.filter((e) => e.event === 'done');
  assert.equal(done.length, 2);
  assert.equal(
    done.reduce((n, e) => n + e.ran, 0),
    8,
  );
  assert.equal(run.result.missing, 0);
  assert.equal(run.result.table.rows.length, 2);
  assert.ok(!fs.existsSync(`${out}.claims`));
});
