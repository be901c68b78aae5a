/**
 * The panel's throughput section: a `spartan bench --json` report, per profile: inference and training throughput,
 * peak memory and storage as grouped bars per method and shape, the constraints the profile applied, and a table
 * of the rows with their ratios to the plain model.
 */
import { formatBytes } from '../engine/util/format';
import type { PanelBench, PanelBenchRow } from '../protocol/webview';
import { barChart, fmt, type BarSeries } from './charts';
import { el } from './dom';

type Figure = 'instancesPerMinute' | 'trainExamplesPerSecond' | 'peakRssMB' | 'storageBytes';

const isFigure = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Draws the report into `target`; returns its chart and row counts. */
export function renderBench(target: HTMLElement, b: PanelBench | null): { charts: number; rows: number } {
  target.replaceChildren();
  const rows = b && Array.isArray(b.rows) ? b.rows : [];
  if (!b || !rows.length) {
    target.append(
      el('p', { class: 'empty' }, 'No benchmark report yet. Run the benchmark to measure throughput, memory and storage on this machine.'),
    );
    return { charts: 0, rows: 0 };
  }
  const meta: string[] = [];
  if (b.ranAt) meta.push(`Measured ${new Date(b.ranAt).toLocaleString()}`);
  if (b.machine)
    meta.push(
      typeof b.machine === 'string'
        ? b.machine
        : Object.entries(b.machine as Record<string, unknown>)
            .filter(([, v]) => typeof v !== 'object')
            .map(([k, v]) => `${k} ${String(v)}`)
            .join(', '),
    );
  if (b.backbone) meta.push(`backbone ${String(b.backbone).split('/').pop()}`);
  if (b.source) meta.push(`from ${b.source}`);
  if (typeof b.note === 'string') meta.push(b.note);
  if (meta.length) target.append(el('p', { class: 'meta' }, meta.join(' · ')));
  let charts = 0;
  for (const p of [...new Set(rows.map((r) => r.profile))]) {
    const pr = rows.filter((r) => r.profile === p);
    const sec = el('section', { class: 'profile' }, el('h3', {}, `Profile: ${p}`));
    const info = Array.isArray(b.profiles) ? b.profiles.find((x) => x && x.profile === p) : undefined;
    if (info && (info.label || info.rationale))
      sec.append(
        el('p', { class: 'meta' }, [info.label, info.rationale, info.threads ? `${info.threads} threads` : ''].filter(Boolean).join(' · ')),
      );
    const grid = el('div', { class: 'grid-charts' });
    charts += profileCharts(grid, pr);
    sec.append(grid);
    const c = b.constraints?.[p];
    if (c) sec.append(el('h4', {}, 'Constraints'), constraintList(c));
    sec.append(rowTable(pr));
    target.append(sec);
  }
  return { charts, rows: rows.length };
}

/** The four bar charts of one profile (those with any figure); returns how many were drawn. */
function profileCharts(grid: HTMLElement, pr: PanelBenchRow[]): number {
  const methods = [...new Set(pr.map((r) => r.method))];
  const shape = (r: PanelBenchRow) => `b${r.batch} · s${r.seq}`;
  const cats = [...new Set(pr.map(shape))];
  const metric = (key: Figure): BarSeries[] =>
    methods.map((m) => ({ name: m, values: cats.map((c) => pr.find((x) => x.method === m && shape(x) === c)?.[key]) }));
  let charts = 0;
  const add = (series: BarSeries[], title: string, unit: string) => {
    if (series.some((x) => x.values.some(isFigure))) {
      grid.append(barChart(title, cats, series, unit));
      charts++;
    }
  };
  add(metric('instancesPerMinute'), 'Inference throughput', 'instances / min');
  add(metric('trainExamplesPerSecond'), 'Training throughput', 'examples / s');
  add(metric('peakRssMB'), 'Peak memory (RSS)', 'MB');
  const maxStorage = Math.max(0, ...pr.map((r) => Number(r.storageBytes) || 0));
  const [unitName, unitSize] = maxStorage >= 1048576 ? ['MiB', 1048576] : ['KiB', 1024];
  const storage = metric('storageBytes').map((x) => ({ name: x.name, values: x.values.map((v) => (isFigure(v) ? v / unitSize : v)) }));
  add(storage, 'Storage per task', unitName);
  return charts;
}

/** A profile's constraints: each a plain value, or an object with `detail` and whether it was `enforced`. */
function constraintList(c: object): HTMLElement {
  const dl = el('dl', { class: 'constraints' });
  for (const [k, v] of Object.entries(c) as [string, unknown][]) {
    let text: string;
    if (v && typeof v === 'object') {
      const o = v as { detail?: unknown; enforced?: unknown; requested?: unknown };
      text = typeof o.detail === 'string' && o.detail ? o.detail : JSON.stringify(v);
      if ('enforced' in o) text += o.enforced ? ' (enforced)' : o.requested == null ? '' : ' (NOT enforced)';
    } else text = String(v);
    dl.append(el('dt', {}, k), el('dd', {}, text));
  }
  return dl;
}

function rowTable(pr: PanelBenchRow[]): HTMLElement {
  const ratio = (v: number | null | undefined) => (isFigure(v) ? '×' + v.toFixed(2) : '–');
  const figure = (v: number | null | undefined, f: (x: number) => string) => (isFigure(v) ? f(v) : '–');
  const heads = ['method', 'batch', 'seq', 'inst/min', '× plain', 'train ex/s', '× plain', 'peak RSS', 'storage'];
  const table = el('table', {}, el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', {}, h)))));
  const tb = el('tbody');
  for (const r of pr)
    tb.append(
      el(
        'tr',
        {},
        ...[
          r.method,
          String(r.batch),
          String(r.seq),
          figure(r.instancesPerMinute, fmt),
          ratio(r.inferenceVsPlain),
          figure(r.trainExamplesPerSecond, fmt),
          ratio(r.trainingVsPlain),
          figure(r.peakRssMB, (x) => fmt(x) + ' MB'),
          figure(r.storageBytes, formatBytes),
        ].map((v) => el('td', {}, v)),
      ),
    );
  table.append(tb);
  return table;
}
