/** The panel's line and grouped-bar charts (inline SVG), their axis ticks and number format. */
import { el, svg } from './dom';

const W = 640;
const H = 260;
const M = { l: 56, r: 16, t: 12, b: 44 };

/** Round tick values covering min … max in about `count` steps. */
export function niceTicks(min: number, max: number, count: number): { lo: number; hi: number; ticks: number[] } {
  if (!(max > min)) max = min + 1;
  const span = max - min;
  const step0 = Math.pow(10, Math.floor(Math.log10(span / count)));
  const err = (count / span) * step0;
  const step = step0 * (err <= 0.15 ? 10 : err <= 0.35 ? 5 : err <= 0.75 ? 2 : 1);
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { lo, hi, ticks };
}

/** A compact figure: `12`, `3.4k`, `1.2M`, `0.42`. */
export function fmt(v: number): string {
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e4) return String(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(a >= 10 ? 1 : 2);
  if (a === 0) return '0';
  return v.toPrecision(2);
}

export interface LineSeries {
  name: string;
  points: [number, number][];
  /** Points with a tooltip: [x, y, text]. */
  markers?: [number, number, string][];
}

export interface BarSeries {
  name: string;
  values: (number | null | undefined)[];
}

const isFigure = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A chart's SVG with its title, the y scale and its grid lines with their tick labels. */
function chartFrame(
  kind: string,
  title: string,
  yt: { lo: number; hi: number; ticks: number[] },
  format: (v: number) => string,
): { root: SVGSVGElement; Y: (y: number) => number } {
  const Y = (y: number) => H - M.b - ((y - yt.lo) / (yt.hi - yt.lo)) * (H - M.t - M.b);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: `chart ${kind}`, role: 'img', 'aria-label': title }, svg('title', {}, title));
  for (const t of yt.ticks) {
    root.append(svg('line', { x1: M.l, x2: W - M.r, y1: Y(t), y2: Y(t), class: 'grid' }));
    root.append(svg('text', { x: M.l - 6, y: Y(t) + 4, class: 'tick', 'text-anchor': 'end' }, format(t)));
  }
  return { root, Y };
}

function yAxisLabel(text: string): SVGTextElement {
  const y = (M.t + H - M.b) / 2;
  return svg('text', { x: 12, y, class: 'axis-label', 'text-anchor': 'middle', transform: `rotate(-90 12 ${y})` }, text);
}

export function lineChart(title: string, series: LineSeries[], xLabel: string, yLabel: string): HTMLElement {
  const pts = series.flatMap((s) => s.points.concat((s.markers ?? []).map((m): [number, number] => [m[0], m[1]])));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const xt = niceTicks(Math.min(...xs, 0), Math.max(...xs, 1), 6);
  const yt = niceTicks(Math.min(...ys, 0), Math.max(...ys), 5);
  const X = (x: number) => M.l + ((x - xt.lo) / (xt.hi - xt.lo)) * (W - M.l - M.r);
  const { root, Y } = chartFrame('line-chart', title, yt, fmt);
  for (const t of xt.ticks) root.append(svg('text', { x: X(t), y: H - M.b + 16, class: 'tick', 'text-anchor': 'middle' }, fmt(t)));
  root.append(svg('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis' }));
  root.append(svg('line', { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, class: 'axis' }));
  root.append(svg('text', { x: (M.l + W - M.r) / 2, y: H - 6, class: 'axis-label', 'text-anchor': 'middle' }, xLabel));
  root.append(yAxisLabel(yLabel));
  series.forEach((s, i) => {
    if (s.points.length) {
      const d = s.points.map((p, j) => (j ? 'L' : 'M') + X(p[0]).toFixed(1) + ' ' + Y(p[1]).toFixed(1)).join(' ');
      root.append(svg('path', { d, class: `series s${i % 6}` }));
    }
    for (const m of s.markers ?? [])
      root.append(svg('circle', { cx: X(m[0]), cy: Y(m[1]), r: 4, class: `marker s${i % 6}` }, svg('title', {}, m[2])));
  });
  return figure(
    title,
    root,
    series.map((s) => s.name),
  );
}

/** Grouped bar chart: categories on x, one bar per series; missing figures leave a gap. */
export function barChart(
  title: string,
  categories: string[],
  series: BarSeries[],
  yLabel: string,
  format: (v: number) => string = fmt,
): HTMLElement {
  const vals = series.flatMap((s) => s.values.filter(isFigure));
  const yt = niceTicks(0, Math.max(...vals, 0) || 1, 5);
  const { root, Y } = chartFrame('bar-chart', title, yt, format);
  const band = (W - M.l - M.r) / Math.max(categories.length, 1);
  const bw = Math.min(36, (band * 0.8) / Math.max(series.length, 1));
  categories.forEach((c, ci) => {
    const x0 = M.l + ci * band + (band - bw * series.length) / 2;
    series.forEach((s, si) => {
      const v = s.values[ci];
      if (!isFigure(v)) return;
      const attrs = { x: x0 + si * bw, y: Y(v), width: Math.max(bw - 2, 1), height: Math.max(Y(0) - Y(v), 0.5), class: `bar s${si % 6}` };
      root.append(svg('rect', attrs, svg('title', {}, `${s.name} · ${c}: ${format(v)}`)));
    });
    root.append(svg('text', { x: M.l + ci * band + band / 2, y: H - M.b + 16, class: 'tick', 'text-anchor': 'middle' }, c));
  });
  root.append(svg('line', { x1: M.l, x2: W - M.r, y1: Y(0), y2: Y(0), class: 'axis' }));
  root.append(yAxisLabel(yLabel));
  return figure(
    title,
    root,
    series.map((s) => s.name),
  );
}

/** A chart with its caption and a legend of its series (colour classes s0 … s5). */
function figure(title: string, chart: SVGSVGElement, names: string[]): HTMLElement {
  const legend = el('div', { class: 'legend' });
  names.forEach((n, i) => legend.append(el('span', { class: 'legend-item' }, el('span', { class: `swatch s${i % 6}` }), n)));
  return el('figure', { class: 'chart-figure' }, el('figcaption', {}, title), chart, legend);
}
