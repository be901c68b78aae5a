/**
 * The panel's parent-routing section (the paper's Figure 2): the labels × parents heat map of `spartan routes`,
 * as the share of each label's tokens routed to each parent or as the mean gate, and the parents each label uses
 * most.
 */
import type { PanelRouting, RenderedMessage, ToExtension } from '../protocol/webview';
import { fmt } from './charts';
import { contentOf, el, svg } from './dom';
import { cellOpacity, cellText, heatCell, heatLayout, heatScale, shortLabel } from './heatmap';

export type RoutingValue = 'counts' | 'gate';

/**
 * Heat map of a labels × parents matrix: colour intensity from 0 to the matrix's maximum, the value in each cell
 * where it fits and in its tooltip, labels on the rows, parent indices on the columns, a colour scale below.
 */
function heatMap(
  title: string,
  rowLabels: string[],
  matrix: number[][],
  unit: string,
  describe: (row: number, col: number) => string,
): { fig: HTMLElement; cells: number } {
  const rows = rowLabels.length;
  const cols = matrix[0] ? matrix[0].length : 0;
  const L = heatLayout({ rows, cols, labels: rowLabels });
  const sc = heatScale(matrix);
  const root = svg(
    'svg',
    { viewBox: `0 0 ${L.W} ${L.H}`, class: 'chart heatmap', role: 'img', 'aria-label': title },
    svg('title', {}, title),
  );
  rowLabels.forEach((label, r) => {
    const y = L.top + r * L.cellH;
    const short = shortLabel(label, L.maxChars);
    const t = svg('text', { x: L.left - 6, y: y + L.cellH / 2 + 4, class: 'tick row-label', 'text-anchor': 'end' }, short);
    if (short !== label) t.append(svg('title', {}, label));
    root.append(t);
    for (let c = 0; c < cols; c++)
      heatCell(root, {
        x: L.left + c * L.cellW,
        y,
        w: L.cellW,
        h: L.cellH,
        t: sc.t[r][c],
        title: describe(r, c),
        text: L.showNumbers ? cellText(matrix[r][c]) : undefined,
        attrs: { 'data-row': r, 'data-col': c },
      });
  });
  for (let c = 0; c < cols; c += L.tickEvery)
    root.append(
      svg(
        'text',
        { x: (L.left + (c + 0.5) * L.cellW).toFixed(2), y: L.gridBottom + 14, class: 'tick', 'text-anchor': 'middle' },
        String(c),
      ),
    );
  root.append(
    svg('text', { x: (L.left + L.W - L.right) / 2, y: L.gridBottom + 29, class: 'axis-label', 'text-anchor': 'middle' }, 'parent'),
  );
  const midY = L.top + (rows * L.cellH) / 2;
  root.append(svg('text', { x: 12, y: midY, class: 'axis-label', 'text-anchor': 'middle', transform: `rotate(-90 12 ${midY})` }, 'label'));
  // colour scale: 0 … max in ten steps
  const steps = 10;
  const sw = 16;
  const x0 = L.W - L.right - steps * sw - 90;
  root.append(svg('text', { x: x0 - 6, y: L.legendY + 11, class: 'tick', 'text-anchor': 'end' }, '0'));
  for (let i = 0; i < steps; i++)
    root.append(
      svg('rect', {
        x: x0 + i * sw,
        y: L.legendY,
        width: sw,
        height: 14,
        class: 'heat-cell legend-cell',
        'fill-opacity': cellOpacity((i + 0.5) / steps),
      }),
    );
  root.append(svg('text', { x: x0 + steps * sw + 6, y: L.legendY + 11, class: 'tick', 'text-anchor': 'start' }, `${fmt(sc.max)} ${unit}`));
  const fig = el('figure', { class: 'chart-figure heatmap-figure' }, el('figcaption', {}, title), root);
  return { fig, cells: rows * cols };
}

/**
 * Draws the routing section (hidden without a report). `onView` switches the value shown; `post` asks the
 * extension for another layer. Returns what was drawn, for the panel's `rendered` report.
 */
export function renderRouting(
  section: HTMLElement,
  r: PanelRouting | null,
  value: RoutingValue,
  onView: (v: RoutingValue) => void,
  post: (m: ToExtension) => void,
): RenderedMessage['routing'] {
  const target = contentOf(section);
  target.replaceChildren();
  if (!r || !Array.isArray(r.labels) || !Array.isArray(r.counts)) {
    section.hidden = true;
    return null;
  }
  section.hidden = false;
  const h = section.querySelector('h2');
  if (h) h.textContent = `Parent routing (layer ${r.layer})`;
  const total = (r.tokens || []).reduce((a, b) => a + b, 0);
  const perLabel = r.labels.map((l, k) => `${l} ${r.tokens[k]}`).join(', ');
  const meta = [`Memory ${r.memoryName}`, `on ${r.dataName}`, `${total} tokens (${perLabel})`, `top-${r.topK} of ${r.parents} parents`];
  if (r.ranAt) meta.push(new Date(r.ranAt).toLocaleString());
  target.append(el('p', { class: 'meta' }, meta.join(' · ')));
  const toggle = el('div', { class: 'toggle', role: 'group', 'aria-label': 'Value shown' });
  const views: [RoutingValue, string][] = [
    ['counts', `Top-${r.topK} share`],
    ['gate', 'Mean gate'],
  ];
  for (const [key, text] of views) {
    const b = el(
      'button',
      { type: 'button', class: key === value ? 'toggle-on' : 'secondary', 'data-view': key, 'aria-pressed': String(key === value) },
      text,
    );
    b.addEventListener('click', () => {
      if (key !== value) onView(key);
    });
    toggle.append(b);
  }
  const again = el('button', { type: 'button', class: 'secondary', id: 'routing-layer' }, 'Other layer…');
  again.addEventListener('click', () => post({ type: 'showRouting', memory: r.memory, data: r.data }));
  target.append(el('div', { class: 'routing-actions' }, toggle, again));
  const pct = (v: number) => (100 * v).toFixed(1) + ' %';
  const describe = (k: number, p: number) =>
    `${r.labels[k]} · parent ${p}: in the top-${r.topK} of ${pct(r.counts[k][p])} of ${r.tokens[k]} tokens · mean gate ${Number(r.meanGate[k][p]).toFixed(3)}`;
  const hm =
    value === 'gate'
      ? heatMap('Mean gate weight per label and parent (each row sums to 1)', r.labels, r.meanGate, 'gate', describe)
      : heatMap(
          `Share of each label's tokens routed to each parent (top-${r.topK} of ${r.parents}; each row sums to ${r.topK})`,
          r.labels,
          r.counts,
          'share',
          describe,
        );
  target.append(hm.fig);
  // the parents each label uses most: the specialisation the map shows
  const m = value === 'gate' ? r.meanGate : r.counts;
  const top = r.labels.map(
    (l, k) =>
      `${l}: ${m[k]
        .map((v, p): [number, number] => [v, p])
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .slice(0, 3)
        .map((x) => 'p' + x[1])
        .join(', ')}`,
  );
  target.append(el('p', { class: 'meta' }, `Most used parents · ${top.join(' · ')}`));
  return { layer: r.layer, cells: hm.cells, labels: r.labels.length, parents: r.parents, view: value };
}
