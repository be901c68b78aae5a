/**
 * The panel's evaluation section (`spartan eval --json`): the confusion matrix, whose cells list their rows (each
 * opens the JSONL file at its line), the reliability diagram of the calibrated and the uncalibrated
 * probabilities, and the per-label scores. The pure helpers are exported for the unit tests.
 */
import type { ClassificationEval, ConfusionMatrix, MultiLabelEval, ReliabilityBin } from '../protocol/results';
import type { EvaluationDrawn, PanelEvaluation, ToExtension } from '../protocol/webview';
import { contentOf, el, svg } from './dom';
import { heatCell, shortLabel } from './heatmap';

type Post = (m: ToExtension) => void;
type Calibrated = ClassificationEval | MultiLabelEval;

/** Cell shade 0…1 of a confusion count: by its share of the true label's row, so small classes still show. */
export function rowShares(matrix: number[][]): number[][] {
  return matrix.map((row) => {
    const n = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (n > 0 ? v / n : 0));
  });
}

export interface ReliabilityBar {
  x: number;
  width: number;
  accuracy: number;
  confidence: number;
  count: number;
}

/** Reliability bars: the non-empty bins. */
export function reliabilityBars(bins: ReliabilityBin[] | undefined): ReliabilityBar[] {
  return (bins ?? [])
    .filter((b) => b.count > 0)
    .map((b) => ({ x: b.lo, width: b.hi - b.lo, accuracy: b.accuracy, confidence: b.confidence, count: b.count }));
}

/** Draws the section (hidden for no evaluation or a regression). Returns what was drawn, for the `rendered` report. */
export function renderEvaluation(section: HTMLElement, ev: PanelEvaluation | null, post: Post): EvaluationDrawn | null {
  const target = contentOf(section);
  target.replaceChildren();
  const r = ev?.result;
  if (!ev || !r || r.task === 'regression') {
    section.hidden = true;
    return null;
  }
  section.hidden = false;
  const f = (v: number) => Number(v).toFixed(3);
  const head =
    r.task === 'classification'
      ? `accuracy ${f(r.accuracy)} · F1 ${f(r.f1)} · MCC ${f(r.mcc)}`
      : `micro-F1 ${f(r.micro_f1)} · macro-F1 ${f(r.macro_f1)} · subset accuracy ${f(r.subset_accuracy)}`;
  target.append(el('p', { class: 'meta' }, `Memory ${ev.memoryName} on ${ev.dataName} · ${r.rows} rows · ${head}`));
  const drawn: EvaluationDrawn = { confusionCells: 0, reliabilityBins: 0, perLabel: Object.keys(r.per_label || {}).length };
  const row = el('div', { class: 'grid-charts' });
  target.append(row);
  if (r.task === 'classification' && r.confusion) {
    const cm = confusion(r.confusion, ev.data, post);
    row.append(cm.fig);
    drawn.confusionCells = cm.cells;
  }
  const rel = reliability(r);
  row.append(rel.fig);
  drawn.reliabilityBins = rel.bins;
  target.append(perLabelTable(r));
  return drawn;
}

function confusion(c: ConfusionMatrix, file: string, post: Post): { fig: HTMLElement; cells: number } {
  const L = c.labels.length;
  const cell = Math.max(22, Math.min(56, Math.floor(420 / Math.max(1, L))));
  const left = Math.min(150, 24 + Math.max(...c.labels.map((l) => String(l).length)) * 7);
  const top = 24;
  // wide enough for the axis label; drawn at most 1.5x its own size, so a 2 x 2 matrix is not blown up to the
  // figure's width (its text would outgrow the viewBox)
  const W = Math.max(left + L * cell + 8, 240);
  const H = top + L * cell + 34;
  const shares = rowShares(c.matrix);
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart heatmap confusion',
    style: `max-width: ${Math.round(W * 1.5)}px`,
    role: 'img',
    'aria-label': 'Confusion matrix: rows are true labels, columns predicted labels',
  });
  const list = el('div', { class: 'confusion-rows' }, el('p', { class: 'meta' }, 'Click a cell to list its rows.'));
  c.labels.forEach((l, j) =>
    root.append(
      svg(
        'text',
        { x: left + j * cell + cell / 2, y: top - 8, class: 'tick', 'text-anchor': 'middle' },
        shortLabel(l, Math.max(3, Math.floor(cell / 7))),
      ),
    ),
  );
  let cells = 0;
  c.matrix.forEach((counts, i) => {
    root.append(
      svg(
        'text',
        { x: left - 6, y: top + i * cell + cell / 2 + 4, class: 'tick row-label', 'text-anchor': 'end' },
        shortLabel(c.labels[i], 20),
      ),
    );
    counts.forEach((v, j) => {
      const rect = heatCell(root, {
        x: left + j * cell,
        y: top + i * cell,
        w: cell,
        h: cell,
        t: shares[i][j],
        title: `true ${c.labels[i]}, predicted ${c.labels[j]}: ${v} row(s)`,
        text: String(v),
        className: `confusion-cell${i === j ? ' diagonal' : ''}`,
        attrs: { 'data-true': c.labels[i], 'data-predicted': c.labels[j], tabindex: 0, role: 'button' },
      });
      const open = () => showRows(list, c, i, j, file, post);
      rect.addEventListener('click', open);
      rect.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') open();
      });
      cells++;
    });
  });
  root.append(
    svg('text', { x: left + (L * cell) / 2, y: H - 6, class: 'axis-label', 'text-anchor': 'middle' }, 'predicted label (rows: true label)'),
  );
  const fig = el('figure', { class: 'chart-figure' }, el('figcaption', {}, 'Confusion matrix'), root, list);
  return { fig, cells };
}

function showRows(list: HTMLElement, c: ConfusionMatrix, i: number, j: number, file: string, post: Post): void {
  const lines = c.lines?.[i]?.[j] ?? [];
  list.replaceChildren(el('p', { class: 'meta' }, `true ${c.labels[i]}, predicted ${c.labels[j]}: ${lines.length} row(s)`));
  const ul = el('ul', { class: 'row-list' });
  for (const line of lines.slice(0, 200)) {
    const b = el('button', { type: 'button', class: 'secondary row-link', 'data-line': line }, `line ${line}`);
    b.addEventListener('click', () => post({ type: 'openRow', file, line }));
    ul.append(el('li', {}, b));
  }
  if (lines.length > 200) ul.append(el('li', { class: 'meta' }, `… and ${lines.length - 200} more`));
  list.append(ul);
  post({ type: 'listedRows', count: lines.length });
}

function reliability(r: Calibrated): { fig: HTMLElement; bins: number } {
  const W = 360;
  const H = 300;
  const left = 44;
  const right = 12;
  const top = 12;
  const bottom = 40;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const X = (v: number) => left + v * pw;
  const Y = (v: number) => top + (1 - v) * ph;
  const multi = r.task === 'multilabel';
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart reliability', role: 'img', 'aria-label': 'Reliability diagram' });
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    root.append(svg('line', { x1: left, x2: left + pw, y1: Y(t), y2: Y(t), class: 'grid' }));
    root.append(svg('text', { x: left - 6, y: Y(t) + 4, class: 'tick', 'text-anchor': 'end' }, String(t)));
    root.append(svg('text', { x: X(t), y: top + ph + 14, class: 'tick', 'text-anchor': 'middle' }, String(t)));
  }
  const bars = reliabilityBars(r.reliability);
  for (const b of bars)
    root.append(
      svg(
        'rect',
        {
          x: X(b.x) + 1,
          y: Y(b.accuracy),
          width: Math.max(1, b.width * pw - 2),
          height: Math.max(0, Y(0) - Y(b.accuracy)),
          class: 'bar reliability-bin s0',
        },
        svg(
          'title',
          {},
          `confidence ${b.x.toFixed(2)}–${(b.x + b.width).toFixed(2)}: ${b.count} ${multi ? 'label decisions' : 'rows'}, mean confidence ${b.confidence.toFixed(3)}, ${multi ? 'present' : 'right'} ${(100 * b.accuracy).toFixed(1)} %`,
        ),
      ),
    );
  // Uncalibrated (T = 1) as points, for comparison.
  for (const b of reliabilityBars(r.reliability_uncalibrated))
    root.append(
      svg(
        'circle',
        { cx: X(b.confidence), cy: Y(b.accuracy), r: 3.5, class: 'marker s1' },
        svg('title', {}, `uncalibrated: confidence ${b.confidence.toFixed(3)}, ${(100 * b.accuracy).toFixed(1)} % (${b.count})`),
      ),
    );
  root.append(svg('line', { x1: X(0), y1: Y(0), x2: X(1), y2: Y(1), class: 'axis diagonal-line' }));
  root.append(svg('line', { x1: left, x2: left, y1: top, y2: top + ph, class: 'axis' }));
  root.append(svg('line', { x1: left, x2: left + pw, y1: top + ph, y2: top + ph, class: 'axis' }));
  root.append(
    svg(
      'text',
      { x: left + pw / 2, y: H - 6, class: 'axis-label', 'text-anchor': 'middle' },
      multi ? 'predicted probability' : 'confidence (top probability)',
    ),
  );
  const legend = el(
    'div',
    { class: 'legend' },
    el(
      'span',
      { class: 'legend-item s0' },
      el('span', { class: 'swatch' }),
      `calibrated, T = ${Number(r.temperature).toFixed(2)}: ECE ${Number(r.ece).toFixed(3)}`,
    ),
    el('span', { class: 'legend-item s1' }, el('span', { class: 'swatch' }), `uncalibrated: ECE ${Number(r.ece_uncalibrated).toFixed(3)}`),
  );
  const fig = el('figure', { class: 'chart-figure' }, el('figcaption', {}, 'Reliability (15 bins)'), root, legend);
  return { fig, bins: bars.length };
}

function perLabelTable(r: Calibrated): HTMLElement {
  const table = el('table', { class: 'per-label' });
  table.append(el('tr', {}, ...['label', 'precision', 'recall', 'F1', 'support'].map((h) => el('th', {}, h))));
  for (const [name, s] of Object.entries(r.per_label || {}))
    table.append(
      el(
        'tr',
        {},
        el('td', {}, name),
        el('td', {}, s.precision.toFixed(3)),
        el('td', {}, s.recall.toFixed(3)),
        el('td', {}, s.f1.toFixed(3)),
        el('td', {}, String(s.support)),
      ),
    );
  return table;
}
