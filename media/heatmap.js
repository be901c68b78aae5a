// Spartan benchmark panel: the pure part of the parent-routing heat map (scale, cell text, layout). No DOM: the
// webview loads it as a script (window.SpartanHeatmap) before benchmark.js, and the unit tests require() it.
// @ts-check
(function (root, factory) {
  const api = factory();
  // eslint-disable-next-line no-undef
  if (typeof module === 'object' && module.exports) module.exports = api;
  else /** @type {any} */ (root).SpartanHeatmap = api;
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  /**
   * Scales a matrix to 0…1 by its largest value (the colour scale runs from 0 to the maximum, not min…max, so
   * equal shares look equal across maps). Non-finite or negative values count as 0. An all-zero matrix stays 0.
   * @param {number[][]} m
   * @returns {{max: number, t: number[][]}}
   */
  function heatScale(m) {
    const clean = (v) => (typeof v === 'number' && isFinite(v) && v > 0 ? v : 0);
    let max = 0;
    for (const row of m) for (const v of row) max = Math.max(max, clean(v));
    return { max, t: m.map((row) => row.map((v) => (max > 0 ? clean(v) / max : 0))) };
  }

  /** Fill opacity of a cell at scale position t: a faint floor so that empty cells still show as cells. */
  function cellOpacity(t) {
    const x = Math.min(1, Math.max(0, Number(t) || 0));
    return Math.round((0.04 + 0.96 * x) * 1000) / 1000;
  }

  /** Whether a cell is dark enough (in the chart colour) that its number is drawn in the background colour. */
  function isHot(t) {
    return t >= 0.55;
  }

  /** Compact cell text: two decimals without the leading zero (".83", "1.00"); "0" for zero. */
  function cellText(v) {
    if (!(typeof v === 'number' && isFinite(v)) || v === 0) return '0';
    const s = Math.abs(v) < 0.005 ? v.toExponential(0) : v.toFixed(2);
    return s.replace(/^(-?)0\./, '$1.');
  }

  /** Shortens a row label to n characters with an ellipsis. */
  function shortLabel(l, n) {
    const s = String(l);
    return s.length <= n ? s : s.slice(0, Math.max(1, n - 1)) + '…';
  }

  /**
   * Geometry of a rows × cols heat map in a viewBox `width` wide: the left margin fits the (shortened) row labels,
   * cells are as wide as the columns allow and a little less tall, numbers are drawn only where they fit, and the
   * parent indices are thinned out when the columns are narrow.
   * @param {{rows: number, cols: number, labels: string[], width?: number}} o
   */
  function heatLayout(o) {
    const W = o.width || 640;
    const maxChars = 18;
    const longest = Math.max(1, ...o.labels.map((l) => Math.min(String(l).length, maxChars)));
    const left = Math.round(Math.min(160, Math.max(48, 26 + longest * 6.6)));
    const right = 12,
      top = 8;
    const cols = Math.max(1, o.cols),
      rows = Math.max(1, o.rows);
    const cellW = (W - left - right) / cols;
    const cellH = Math.max(16, Math.min(32, cellW * 0.8));
    const showNumbers = cellW >= 26 && cellH >= 16;
    const tickEvery = cellW >= 18 ? 1 : cellW >= 9 ? 2 : cellW >= 4.5 ? 4 : 8;
    const gridBottom = top + rows * cellH;
    const legendY = gridBottom + 38;
    const H = Math.ceil(legendY + 26);
    return { W, H, left, right, top, cellW, cellH, showNumbers, tickEvery, gridBottom, legendY, maxChars };
  }

  return { heatScale, cellOpacity, isHot, cellText, shortLabel, heatLayout };
});
