/**
 * The paper's Tables 1 and 2 from a list of runs: one row per method, per task its GLUE metric(s) as
 * mean ± sample std over seeds (×100, as the paper prints them), the average over tasks, the storage one task
 * costs, the trainable parameters and the training throughput. Every number comes from the run records.
 */
import { GLUE_TASKS, glueTaskName, formatBytes } from '../../engine';
import { RunRecord } from './results';
import { mean, summarize, Summary } from './stats';

export interface TableColumn {
  task: string;
  metric: string;
}

export interface TableRow {
  /** The method, with its learning rate when the runs hold several for one method. */
  label: string;
  method: string;
  lrs: number[];
  /** Keyed `${task}/${metric}`. */
  cells: Record<string, Summary>;
  /** Over tasks of the headline metric (see `average`). */
  average: Summary | null;
  /** Mean over tasks of the F16 bytes one task's trained tensors take. */
  storageBytes: number;
  trainableParameters: number;
  /** Mean over runs of training examples per second. */
  examplesPerSecond: number;
  runs: number;
  seeds: number[];
}

export interface ResultsTable {
  tasks: string[];
  columns: TableColumn[];
  rows: TableRow[];
}

export interface TableOptions {
  /** Order of the rows / columns; defaults to first appearance in the runs. */
  methods?: string[];
  tasks?: string[];
}

/**
 * The average column: for each seed that every task has, the mean over tasks of the headline metric; then mean
 * and sample std of those per-seed averages (the spread of a seed's whole benchmark). Without a seed common to
 * all tasks, the mean of the task means with std NaN. Null when a task has no run at all.
 */
export function buildTable(runs: RunRecord[], opts: TableOptions = {}): ResultsTable {
  const tasks = opts.tasks ?? unique(runs.map((r) => r.task));
  const columns: TableColumn[] = [];
  for (const task of tasks) for (const metric of metricsOf(task, runs)) columns.push({ task, metric });

  const lrsByMethod = new Map<string, Set<number>>();
  for (const r of runs) {
    if (!lrsByMethod.has(r.method)) lrsByMethod.set(r.method, new Set());
    lrsByMethod.get(r.method)!.add(r.protocol.lr);
  }
  const groups = new Map<string, RunRecord[]>();
  for (const r of runs) {
    const label = lrsByMethod.get(r.method)!.size > 1 ? `${r.method} (lr ${formatLr(r.protocol.lr)})` : r.method;
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label)!.push(r);
  }
  const order = opts.methods ?? unique(runs.map((r) => r.method));
  const labels = [...groups.keys()].sort(
    (a, b) =>
      rank(order, groups.get(a)![0].method) - rank(order, groups.get(b)![0].method) ||
      groups.get(a)![0].protocol.lr - groups.get(b)![0].protocol.lr,
  );

  const rows = labels.map((label): TableRow => {
    const group = groups.get(label)!.filter((r) => tasks.includes(r.task));
    const cells: Record<string, Summary> = {};
    for (const c of columns) {
      const values = group.filter((r) => r.task === c.task && r.metrics[c.metric] !== undefined).map((r) => r.metrics[c.metric]);
      if (values.length) cells[`${c.task}/${c.metric}`] = summarize(values);
    }
    const perTask = tasks.map((t) => group.filter((r) => r.task === t));
    let average: Summary | null = null;
    if (tasks.length && perTask.every((rs) => rs.length > 0)) {
      const common = intersect(perTask.map((rs) => rs.map((r) => r.seed)));
      if (common.length) {
        average = summarize(common.map((seed) => mean(perTask.map((rs) => rs.find((r) => r.seed === seed)!.score))));
      } else {
        average = { mean: mean(perTask.map((rs) => mean(rs.map((r) => r.score)))), std: NaN, n: 0 };
      }
    }
    return {
      label,
      method: group[0]?.method ?? label,
      lrs: unique(group.map((r) => r.protocol.lr)),
      cells,
      average,
      storageBytes: mean(perTask.filter((rs) => rs.length).map((rs) => mean(rs.map((r) => r.storageBytes)))),
      trainableParameters: mean(perTask.filter((rs) => rs.length).map((rs) => mean(rs.map((r) => r.trainableParameters)))),
      examplesPerSecond: mean(group.map((r) => r.examplesPerSecond)),
      runs: group.length,
      seeds: unique(group.map((r) => r.seed)).sort((a, b) => a - b),
    };
  });
  return { tasks, columns, rows };
}

/** GLUE's metrics for a known task (headline first); for another task name, what its runs recorded as `metric`. */
function metricsOf(task: string, runs: RunRecord[]): string[] {
  const name = glueTaskName(task);
  if (name) return GLUE_TASKS[name].metrics;
  return unique(runs.filter((r) => r.task === task).map((r) => r.metric));
}

const SHORT: Record<string, string> = { accuracy: 'Acc', f1: 'F1', mcc: 'MCC', pearson: 'Pearson', spearman: 'Spearman' };

export function columnTitle(c: TableColumn): string {
  return `${c.task} ${SHORT[c.metric] ?? c.metric}`;
}

/** ×100 with one decimal, "± std" when there is more than one seed. */
export function formatSummary(s: Summary | null | undefined): string {
  if (!s || !Number.isFinite(s.mean)) return '–';
  const m = (100 * s.mean).toFixed(1);
  return s.n > 1 && Number.isFinite(s.std) ? `${m} ± ${(100 * s.std).toFixed(1)}` : m;
}

export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(Math.round(n));
}

export function formatLr(lr: number): string {
  // Shortest exact form: 0.001 → "1e-3", 0.00015 → "1.5e-4".
  return lr.toExponential().replace('e+0', '');
}

function cellsOf(table: ResultsTable): { header: string[]; body: string[][] } {
  const header = ['Method', 'LR', ...table.columns.map(columnTitle), 'Avg', 'Storage/task', 'Params', 'Train ex/s', 'Seeds'];
  const body = table.rows.map((r) => [
    r.label,
    r.lrs.map(formatLr).join(','),
    ...table.columns.map((c) => formatSummary(r.cells[`${c.task}/${c.metric}`])),
    formatSummary(r.average),
    formatBytes(r.storageBytes),
    formatCount(r.trainableParameters),
    Number.isFinite(r.examplesPerSecond) ? r.examplesPerSecond.toFixed(1) : '–',
    r.seeds.join(','),
  ]);
  return { header, body };
}

/** Plain text, columns aligned; `notes` are printed above (protocol, learning rates). */
export function formatTable(table: ResultsTable, notes: string[] = []): string {
  const { header, body } = cellsOf(table);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [...notes, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function formatMarkdown(table: ResultsTable, notes: string[] = []): string {
  const { header, body } = cellsOf(table);
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const align = header.map((_, i) => (i < 2 ? '---' : '---:'));
  const intro = notes.length ? notes.join('  \n') + '\n\n' : '';
  return intro + [row(header), row(align), ...body.map(row)].join('\n') + '\n';
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function intersect(lists: number[][]): number[] {
  return lists.reduce((acc, l) => acc.filter((x) => l.includes(x))).sort((a, b) => a - b);
}

function rank(order: string[], method: string): number {
  const i = order.indexOf(method);
  return i < 0 ? order.length : i;
}

/** Lines above the table describing how the runs were made, from the records themselves. */
export function protocolNotes(runs: RunRecord[], methods?: string[]): string[] {
  if (runs.length === 0) return ['no runs'];
  const ps = runs.map((r) => r.protocol);
  const values = <T>(f: (p: RunRecord['protocol']) => T): string =>
    unique(ps.map(f))
      .map((v) => (v === null ? 'all' : String(v)))
      .join(' / ');
  const fewShot = ps.some((p) => p.fewShot !== null);
  const training = fewShot
    ? `few-shot: ${values((p) => p.fewShot)} training rows sampled per seed (${values((p) => (p.stratified ? 'stratified, proportional to class sizes' : 'uniform'))}), ${values((p) => p.fewShotSteps)} steps, one evaluation on ${values((p) => p.devRows)} dev rows`
    : `${values((p) => p.epochs)} epoch(s) on ${values((p) => p.trainRows)} training rows, dev (${values((p) => p.devRows)} rows) after every epoch, best epoch by the task's GLUE metric`;
  const order = methods ?? unique(runs.map((r) => r.method));
  const lrs = order
    .filter((m) => runs.some((r) => r.method === m))
    .map((m) => `${m} ${unique(runs.filter((r) => r.method === m).map((r) => formatLr(r.protocol.lr))).join('/')}`);
  const tasks = unique(runs.map((r) => r.task));
  const headline = tasks
    .map((t) => `${t} ${SHORT[runs.find((r) => r.task === t)!.metric] ?? runs.find((r) => r.task === t)!.metric}`)
    .join(', ');
  return [
    `backbone ${values((p) => p.backbone)}; ${training}; batch ${values((p) => p.batchSize)}, max length ${values((p) => p.maxLength)}, dropout ${values((p) => p.dropout)}, warm-up ${values((p) => p.warmupRatio)}, AdamW`,
    `learning rates: ${lrs.join(', ')}`,
    `dev metrics ×100, mean ± sample std over seeds; Avg = mean over tasks of ${headline}; Storage/task = F16 safetensors bytes of one task's trained tensors; Train ex/s = training examples per second of optimiser steps (mean over runs)`,
  ];
}
