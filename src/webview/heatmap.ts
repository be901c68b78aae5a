/**
 * Heat maps of the panel: the parent-routing map (labels × parents) and the confusion matrix (true × predicted)
 * share the colour scale, the cell (`heatCell`: shade, number, tooltip) and the label shortening. The scale and
 * layout helpers are pure, for the unit tests.
 */
import { svg, type Attrs } from './dom';

/**
 * Scales a matrix to 0…1 by its largest value (the colour scale runs from 0 to the maximum, not min…max, so
 * equal shares look equal across maps). Non-finite or negative values count as 0. An all-zero matrix stays 0.
 */
export function heatScale(m: number[][]): { max: number; t: number[][] } {
  const clean = (v: number) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);
  let max = 0;
  for (const row of m) for (const v of row) max = Math.max(max, clean(v));
  return { max, t: m.map((row) => row.map((v) => (max > 0 ? clean(v) / max : 0))) };
}

/** Fill opacity of a cell at scale position t: a faint floor so that empty cells still show as cells. */
export function cellOpacity(t: number): number {
  const x = Math.min(1, Math.max(0, Number(t) || 0));
  return Math.round((0.04 + 0.96 * x) * 1000) / 1000;
}

/** Whether a cell is dark enough (in the chart colour) that its number is drawn in the background colour. */
export function isHot(t: number): boolean {
  return t >= 0.55;
}

/** Compact cell text: two decimals without the leading zero (".83", "1.00"); "0" for zero. */
export function cellText(v: number): string {
  if (!(typeof v === 'number' && Number.isFinite(v)) || v === 0) return '0';
  const s = Math.abs(v) < 0.005 ? v.toExponential(0) : v.toFixed(2);
  return s.replace(/^(-?)0\./, '$1.');
}

/** Shortens a label to n characters with an ellipsis. */
export function shortLabel(l: string, n: number): string {
  const s = String(l);
  return s.length <= n ? s : s.slice(0, Math.max(1, n - 1)) + '…';
}

export interface HeatLayout {
  W: number;
  H: number;
  left: number;
  right: number;
  top: number;
  cellW: number;
  cellH: number;
  showNumbers: boolean;
  tickEvery: number;
  gridBottom: number;
  legendY: number;
  maxChars: number;
}

/**
 * Geometry of a rows × cols heat map in a viewBox `width` wide: the left margin fits the (shortened) row labels,
 * cells are as wide as the columns allow and a little less tall, numbers are drawn only where they fit, and the
 * parent indices are thinned out when the columns are narrow.
 */
export function heatLayout(o: { rows: number; cols: number; labels: string[]; width?: number }): HeatLayout {
  const W = o.width || 640;
  const maxChars = 18;
  const longest = Math.max(1, ...o.labels.map((l) => Math.min(String(l).length, maxChars)));
  const left = Math.round(Math.min(160, Math.max(48, 26 + longest * 6.6)));
  const right = 12;
  const top = 8;
  const cols = Math.max(1, o.cols);
  const rows = Math.max(1, o.rows);
  const cellW = (W - left - right) / cols;
  const cellH = Math.max(16, Math.min(32, cellW * 0.8));
  const showNumbers = cellW >= 26 && cellH >= 16;
  const tickEvery = cellW >= 18 ? 1 : cellW >= 9 ? 2 : cellW >= 4.5 ? 4 : 8;
  const gridBottom = top + rows * cellH;
  const legendY = gridBottom + 38;
  const H = Math.ceil(legendY + 26);
  return { W, H, left, right, top, cellW, cellH, showNumbers, tickEvery, gridBottom, legendY, maxChars };
}

/**
 * Appends one heat cell to `root`: a rect shaded by t (0…1) with `title` as its tooltip, and `text` centred on it
 * (in the background colour on dark cells) unless `text` is undefined. Returns the rect, for listeners.
 */
export function heatCell(
  root: SVGElement,
  c: { x: number; y: number; w: number; h: number; t: number; title: string; text?: string; className?: string; attrs?: Attrs },
): SVGRectElement {
  const rect = svg(
    'rect',
    {
      x: c.x.toFixed(2),
      y: c.y.toFixed(2),
      width: c.w.toFixed(2),
      height: c.h.toFixed(2),
      class: c.className ? `heat-cell ${c.className}` : 'heat-cell',
      'fill-opacity': cellOpacity(c.t),
      ...c.attrs,
    },
    svg('title', {}, c.title),
  );
  root.append(rect);
  if (c.text !== undefined)
    root.append(
      svg(
        'text',
        {
          x: (c.x + c.w / 2).toFixed(2),
          y: (c.y + c.h / 2 + 3.5).toFixed(2),
          class: 'heat-num' + (isHot(c.t) ? ' hot' : ''),
          'text-anchor': 'middle',
        },
        c.text,
      ),
    );
  return rect;
}
