// Spartan benchmark panel: the evaluation section (`spartan eval --json`): the confusion matrix, whose cells list
// their rows (each opens the JSONL file at its line), and the reliability diagram of the calibrated and the
// uncalibrated probabilities. Loaded before benchmark.js as window.SpartanEvaluation; benchmark.js calls render()
// with its DOM helpers and a post function. The pure helpers are exported for the unit tests (require()).
// @ts-check
(function (root, factory) {
  const api = factory();
  // eslint-disable-next-line no-undef
  if (typeof module === 'object' && module.exports) module.exports = api;
  else /** @type {any} */ (root).SpartanEvaluation = api;
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  /** Cell shade 0…1 of a confusion count: by its share of the true label's row, so small classes still show. */
  function rowShares(matrix) {
    return matrix.map((row) => {
      const n = row.reduce((a, b) => a + b, 0);
      return row.map((v) => (n > 0 ? v / n : 0));
    });
  }

  /** Reliability bars: the non-empty bins as {x, width, accuracy, confidence, count}. */
  function reliabilityBars(bins) {
    return (bins || [])
      .filter((b) => b.count > 0)
      .map((b) => ({ x: b.lo, width: b.hi - b.lo, accuracy: b.accuracy, confidence: b.confidence, count: b.count }));
  }

  /**
   * Draws the section. `ev` = {memoryName, data, dataName, result} with `result` an EvalResult; `h` = {el, svg};
   * `post` sends a message to the extension. Returns what was drawn (for the panel's `rendered` report).
   */
  function render(section, ev, h, post) {
    const target = section.querySelector('.content');
    target.replaceChildren();
    const r = ev && ev.result;
    if (!r || r.task === 'regression') {
      section.hidden = true;
      return null;
    }
    section.hidden = false;
    const f = (v) => Number(v).toFixed(3);
    const head =
      r.task === 'classification'
        ? `accuracy ${f(r.accuracy)} · F1 ${f(r.f1)} · MCC ${f(r.mcc)}`
        : `micro-F1 ${f(r.micro_f1)} · macro-F1 ${f(r.macro_f1)} · subset accuracy ${f(r.subset_accuracy)}`;
    target.append(h.el('p', { class: 'meta' }, `Memory ${ev.memoryName} on ${ev.dataName} · ${r.rows} rows · ${head}`));
    const drawn = { confusionCells: 0, reliabilityBins: 0, perLabel: Object.keys(r.per_label || {}).length };
    const row = h.el('div', { class: 'grid-charts' });
    target.append(row);
    if (r.task === 'classification' && r.confusion) {
      const cm = confusion(r.confusion, ev.data, h, post);
      row.append(cm.fig);
      drawn.confusionCells = cm.cells;
    }
    const rel = reliability(r, h);
    row.append(rel.fig);
    drawn.reliabilityBins = rel.bins;
    target.append(perLabelTable(r, h));
    return drawn;
  }

  function confusion(c, file, h, post) {
    const L = c.labels.length;
    const cell = Math.max(22, Math.min(56, Math.floor(420 / Math.max(1, L))));
    const left = Math.min(150, 24 + Math.max(...c.labels.map((l) => String(l).length)) * 7);
    const top = 24;
    // wide enough for the axis label; drawn at most 1.5x its own size, so a 2 x 2 matrix is not blown up to the
    // figure's width (its text would outgrow the viewBox)
    const W = Math.max(left + L * cell + 8, 240),
      H = top + L * cell + 34;
    const shares = rowShares(c.matrix);
    const root = h.svg('svg', {
      viewBox: `0 0 ${W} ${H}`,
      class: 'chart heatmap confusion',
      style: `max-width: ${Math.round(W * 1.5)}px`,
      role: 'img',
      'aria-label': 'Confusion matrix: rows are true labels, columns predicted labels',
    });
    const list = h.el('div', { class: 'confusion-rows' }, h.el('p', { class: 'meta' }, 'Click a cell to list its rows.'));
    const short = (s, n) => (String(s).length <= n ? String(s) : String(s).slice(0, n - 1) + '…');
    c.labels.forEach((l, j) =>
      root.append(
        h.svg(
          'text',
          { x: left + j * cell + cell / 2, y: top - 8, class: 'tick', 'text-anchor': 'middle' },
          short(l, Math.max(3, Math.floor(cell / 7))),
        ),
      ),
    );
    let cells = 0;
    c.matrix.forEach((counts, i) => {
      root.append(
        h.svg(
          'text',
          { x: left - 6, y: top + i * cell + cell / 2 + 4, class: 'tick row-label', 'text-anchor': 'end' },
          short(c.labels[i], 20),
        ),
      );
      counts.forEach((v, j) => {
        const t = shares[i][j];
        const rect = h.svg(
          'rect',
          {
            x: left + j * cell,
            y: top + i * cell,
            width: cell,
            height: cell,
            class: `heat-cell confusion-cell${i === j ? ' diagonal' : ''}`,
            'fill-opacity': Math.round((0.04 + 0.96 * t) * 1000) / 1000,
            'data-true': c.labels[i],
            'data-predicted': c.labels[j],
            tabindex: 0,
            role: 'button',
          },
          h.svg('title', {}, `true ${c.labels[i]}, predicted ${c.labels[j]}: ${v} row(s)`),
        );
        const open = () => showRows(list, c, i, j, file, h, post);
        rect.addEventListener('click', open);
        rect.addEventListener('keydown', (e) => {
          if (e.key === 'Enter' || e.key === ' ') open();
        });
        root.append(rect);
        root.append(
          h.svg(
            'text',
            {
              x: left + j * cell + cell / 2,
              y: top + i * cell + cell / 2 + 4,
              class: `heat-num${t >= 0.55 ? ' hot' : ''}`,
              'text-anchor': 'middle',
            },
            String(v),
          ),
        );
        cells++;
      });
    });
    root.append(
      h.svg(
        'text',
        { x: left + (L * cell) / 2, y: H - 6, class: 'axis-label', 'text-anchor': 'middle' },
        'predicted label (rows: true label)',
      ),
    );
    const fig = h.el('figure', { class: 'chart-figure' }, h.el('figcaption', {}, 'Confusion matrix'), root, list);
    return { fig, cells };
  }

  function showRows(list, c, i, j, file, h, post) {
    const lines = (c.lines && c.lines[i] && c.lines[i][j]) || [];
    list.replaceChildren(h.el('p', { class: 'meta' }, `true ${c.labels[i]}, predicted ${c.labels[j]}: ${lines.length} row(s)`));
    const ul = h.el('ul', { class: 'row-list' });
    for (const line of lines.slice(0, 200)) {
      const b = h.el('button', { type: 'button', class: 'secondary row-link', 'data-line': line }, `line ${line}`);
      b.addEventListener('click', () => post({ type: 'openRow', file, line }));
      ul.append(h.el('li', {}, b));
    }
    if (lines.length > 200) ul.append(h.el('li', { class: 'meta' }, `… and ${lines.length - 200} more`));
    list.append(ul);
    post({ type: 'listedRows', count: lines.length });
  }

  function reliability(r, h) {
    const W = 360,
      H = 300,
      left = 44,
      right = 12,
      top = 12,
      bottom = 40;
    const pw = W - left - right,
      ph = H - top - bottom;
    const X = (v) => left + v * pw,
      Y = (v) => top + (1 - v) * ph;
    const root = h.svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart reliability', role: 'img', 'aria-label': 'Reliability diagram' });
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      root.append(h.svg('line', { x1: left, x2: left + pw, y1: Y(t), y2: Y(t), class: 'grid' }));
      root.append(h.svg('text', { x: left - 6, y: Y(t) + 4, class: 'tick', 'text-anchor': 'end' }, String(t)));
      root.append(h.svg('text', { x: X(t), y: top + ph + 14, class: 'tick', 'text-anchor': 'middle' }, String(t)));
    }
    const bars = reliabilityBars(r.reliability);
    for (const b of bars) {
      root.append(
        h.svg(
          'rect',
          {
            x: X(b.x) + 1,
            y: Y(b.accuracy),
            width: Math.max(1, b.width * pw - 2),
            height: Math.max(0, Y(0) - Y(b.accuracy)),
            class: 'bar reliability-bin s0',
          },
          h.svg(
            'title',
            {},
            `confidence ${b.x.toFixed(2)}–${(b.x + b.width).toFixed(2)}: ${b.count} ${r.task === 'multilabel' ? 'label decisions' : 'rows'}, mean confidence ${b.confidence.toFixed(3)}, ${r.task === 'multilabel' ? 'present' : 'right'} ${(100 * b.accuracy).toFixed(1)} %`,
          ),
        ),
      );
    }
    // Uncalibrated (T = 1) as points, for comparison.
    for (const b of reliabilityBars(r.reliability_uncalibrated)) {
      root.append(
        h.svg(
          'circle',
          { cx: X(b.confidence), cy: Y(b.accuracy), r: 3.5, class: 'marker s1' },
          h.svg('title', {}, `uncalibrated: confidence ${b.confidence.toFixed(3)}, ${(100 * b.accuracy).toFixed(1)} % (${b.count})`),
        ),
      );
    }
    root.append(h.svg('line', { x1: X(0), y1: Y(0), x2: X(1), y2: Y(1), class: 'axis diagonal-line' }));
    root.append(h.svg('line', { x1: left, x2: left, y1: top, y2: top + ph, class: 'axis' }));
    root.append(h.svg('line', { x1: left, x2: left + pw, y1: top + ph, y2: top + ph, class: 'axis' }));
    root.append(
      h.svg(
        'text',
        { x: left + pw / 2, y: H - 6, class: 'axis-label', 'text-anchor': 'middle' },
        r.task === 'multilabel' ? 'predicted probability' : 'confidence (top probability)',
      ),
    );
    const legend = h.el(
      'div',
      { class: 'legend' },
      h.el(
        'span',
        { class: 'legend-item s0' },
        h.el('span', { class: 'swatch' }),
        `calibrated, T = ${Number(r.temperature).toFixed(2)}: ECE ${Number(r.ece).toFixed(3)}`,
      ),
      h.el(
        'span',
        { class: 'legend-item s1' },
        h.el('span', { class: 'swatch' }),
        `uncalibrated: ECE ${Number(r.ece_uncalibrated).toFixed(3)}`,
      ),
    );
    const fig = h.el('figure', { class: 'chart-figure' }, h.el('figcaption', {}, 'Reliability (15 bins)'), root, legend);
    return { fig, bins: bars.length };
  }

  function perLabelTable(r, h) {
    const table = h.el('table', { class: 'per-label' });
    table.append(
      h.el(
        'tr',
        {},
        h.el('th', {}, 'label'),
        h.el('th', {}, 'precision'),
        h.el('th', {}, 'recall'),
        h.el('th', {}, 'F1'),
        h.el('th', {}, 'support'),
      ),
    );
    for (const [name, s] of Object.entries(r.per_label || {})) {
      table.append(
        h.el(
          'tr',
          {},
          h.el('td', {}, name),
          h.el('td', {}, s.precision.toFixed(3)),
          h.el('td', {}, s.recall.toFixed(3)),
          h.el('td', {}, s.f1.toFixed(3)),
          h.el('td', {}, String(s.support)),
        ),
      );
    }
    return table;
  }

  return { render, rowShares, reliabilityBars };
});
