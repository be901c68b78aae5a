// Spartan benchmark panel. Runs in the webview under a strict CSP: no inline code, no remote content.
// Draws inline SVG charts from the data the extension posts ({type:'update', curves, bench, routing}); keeps that data
// with setState so the panel redraws at once when shown again.
// @ts-check
(function () {
  'use strict';
  const vscode = acquireVsCodeApi();
  const SVG = 'http://www.w3.org/2000/svg';
  const HM = /** @type {any} */ (window).SpartanHeatmap;
  const EV = /** @type {any} */ (window).SpartanEvaluation;
  /** @type {import('../src/protocol/webview').PanelState} */
  let state = Object.assign(
    { curves: [], bench: null, live: null, routing: null, routingView: 'counts', evaluation: null },
    vscode.getState() || {},
  );

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children) if (c !== undefined && c !== null) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
    return e;
  }
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    for (const c of children) if (c !== undefined && c !== null) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
    return e;
  }
  function niceTicks(min, max, count) {
    if (!(max > min)) {
      max = min + 1;
    }
    const span = max - min;
    const step0 = Math.pow(10, Math.floor(Math.log10(span / count)));
    const err = (count / span) * step0;
    const step = step0 * (err <= 0.15 ? 10 : err <= 0.35 ? 5 : err <= 0.75 ? 2 : 1);
    const lo = Math.floor(min / step) * step;
    const hi = Math.ceil(max / step) * step;
    const ticks = [];
    for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
    return { lo, hi, ticks };
  }
  function fmt(v) {
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
  // The units of the engine's formatBytes (src/engine/util/format.ts): binary, named as such.
  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }

  const W = 640,
    H = 260,
    M = { l: 56, r: 16, t: 12, b: 44 };

  /** Line chart: series [{name, points: [[x, y], ...], markers?: [[x, y, label]]}] */
  function lineChart(title, series, xLabel, yLabel) {
    const pts = series.flatMap((s) => s.points.concat((s.markers || []).map((m) => [m[0], m[1]])));
    const xs = pts.map((p) => p[0]),
      ys = pts.map((p) => p[1]);
    const xt = niceTicks(Math.min(...xs, 0), Math.max(...xs, 1), 6);
    const yt = niceTicks(Math.min(...ys, 0), Math.max(...ys), 5);
    const X = (x) => M.l + ((x - xt.lo) / (xt.hi - xt.lo)) * (W - M.l - M.r);
    const Y = (y) => H - M.b - ((y - yt.lo) / (yt.hi - yt.lo)) * (H - M.t - M.b);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart line-chart', role: 'img', 'aria-label': title });
    root.append(svg('title', {}, title));
    for (const t of yt.ticks) {
      root.append(svg('line', { x1: M.l, x2: W - M.r, y1: Y(t), y2: Y(t), class: 'grid' }));
      root.append(svg('text', { x: M.l - 6, y: Y(t) + 4, class: 'tick', 'text-anchor': 'end' }, fmt(t)));
    }
    for (const t of xt.ticks) root.append(svg('text', { x: X(t), y: H - M.b + 16, class: 'tick', 'text-anchor': 'middle' }, fmt(t)));
    root.append(svg('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis' }));
    root.append(svg('line', { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, class: 'axis' }));
    root.append(svg('text', { x: (M.l + W - M.r) / 2, y: H - 6, class: 'axis-label', 'text-anchor': 'middle' }, xLabel));
    root.append(
      svg(
        'text',
        { x: 12, y: (M.t + H - M.b) / 2, class: 'axis-label', 'text-anchor': 'middle', transform: `rotate(-90 12 ${(M.t + H - M.b) / 2})` },
        yLabel,
      ),
    );
    series.forEach((s, i) => {
      if (s.points.length) {
        const d = s.points.map((p, j) => (j ? 'L' : 'M') + X(p[0]).toFixed(1) + ' ' + Y(p[1]).toFixed(1)).join(' ');
        root.append(svg('path', { d, class: `series s${i % 6}` }));
      }
      for (const m of s.markers || []) {
        const c = svg('circle', { cx: X(m[0]), cy: Y(m[1]), r: 4, class: `marker s${i % 6}` });
        c.append(svg('title', {}, m[2]));
        root.append(c);
      }
    });
    return figure(
      title,
      root,
      series.map((s) => s.name),
    );
  }

  /** Grouped bar chart: categories on x, one bar per series. */
  function barChart(title, categories, series, yLabel, format) {
    const vals = series.flatMap((s) => s.values.filter((v) => typeof v === 'number' && isFinite(v)));
    const yt = niceTicks(0, Math.max(...vals, 0) || 1, 5);
    const Y = (y) => H - M.b - ((y - yt.lo) / (yt.hi - yt.lo)) * (H - M.t - M.b);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart bar-chart', role: 'img', 'aria-label': title });
    root.append(svg('title', {}, title));
    for (const t of yt.ticks) {
      root.append(svg('line', { x1: M.l, x2: W - M.r, y1: Y(t), y2: Y(t), class: 'grid' }));
      root.append(svg('text', { x: M.l - 6, y: Y(t) + 4, class: 'tick', 'text-anchor': 'end' }, (format || fmt)(t)));
    }
    const band = (W - M.l - M.r) / Math.max(categories.length, 1);
    const bw = Math.min(36, (band * 0.8) / Math.max(series.length, 1));
    categories.forEach((c, ci) => {
      const x0 = M.l + ci * band + (band - bw * series.length) / 2;
      series.forEach((s, si) => {
        const v = s.values[ci];
        if (typeof v !== 'number' || !isFinite(v)) return;
        const r = svg('rect', {
          x: x0 + si * bw,
          y: Y(v),
          width: Math.max(bw - 2, 1),
          height: Math.max(Y(0) - Y(v), 0.5),
          class: `bar s${si % 6}`,
        });
        r.append(svg('title', {}, `${s.name} · ${c}: ${(format || fmt)(v)}`));
        root.append(r);
      });
      root.append(svg('text', { x: M.l + ci * band + band / 2, y: H - M.b + 16, class: 'tick', 'text-anchor': 'middle' }, c));
    });
    root.append(svg('line', { x1: M.l, x2: W - M.r, y1: Y(0), y2: Y(0), class: 'axis' }));
    root.append(
      svg(
        'text',
        { x: 12, y: (M.t + H - M.b) / 2, class: 'axis-label', 'text-anchor': 'middle', transform: `rotate(-90 12 ${(M.t + H - M.b) / 2})` },
        yLabel,
      ),
    );
    return figure(
      title,
      root,
      series.map((s) => s.name),
    );
  }

  function figure(title, chart, names) {
    const legend = el('div', { class: 'legend' });
    names.forEach((n, i) => legend.append(el('span', { class: 'legend-item' }, el('span', { class: `swatch s${i % 6}` }), n)));
    return el('figure', { class: 'chart-figure' }, el('figcaption', {}, title), chart, legend);
  }

  function renderCurves(target) {
    const curves = (state.curves || []).slice(-5);
    const live =
      state.live && state.live.steps.length
        ? [{ task: 'running…', memory: '', startedAt: '', steps: state.live.steps, evals: state.live.evals }]
        : [];
    const all = curves.concat(live);
    target.replaceChildren();
    if (!all.length) {
      target.append(el('p', { class: 'empty' }, 'No training yet. Fine-tune a memory to see its loss curve here.'));
      return 0;
    }
    let n = 0;
    target.append(
      lineChart(
        'Training loss',
        all.map((c) => ({ name: `${c.task}${c.startedAt ? ' · ' + new Date(c.startedAt).toLocaleTimeString() : ''}`, points: c.steps })),
        'step',
        'loss',
      ),
    );
    n++;
    const evalSeries = all
      .filter((c) => c.evals && c.evals.length)
      .map((c) => {
        const key = Object.keys(c.evals[0].metrics || {})[0];
        return {
          name: `${c.task} · dev ${key}`,
          points: c.evals.map((e) => [e.step, e.metrics[key]]),
          markers: c.evals.map((e) => [
            e.step,
            e.metrics[key],
            `epoch ${e.epoch}: ${Object.entries(e.metrics)
              .map(([k, v]) => k + ' ' + Number(v).toFixed(3))
              .join(', ')}`,
          ]),
        };
      });
    if (evalSeries.length) {
      target.append(lineChart('Dev metric per epoch', evalSeries, 'step', 'metric'));
      n++;
    }
    return n;
  }

  function renderBench(target) {
    target.replaceChildren();
    const b = state.bench;
    const rows = b && Array.isArray(b.rows) ? b.rows : [];
    if (!rows.length) {
      target.append(
        el(
          'p',
          { class: 'empty' },
          'No benchmark report yet. Run the benchmark to measure throughput, memory and storage on this machine.',
        ),
      );
      return { charts: 0, rows: 0 };
    }
    const meta = [];
    if (b.ranAt) meta.push(`Measured ${new Date(b.ranAt).toLocaleString()}`);
    if (b.machine)
      meta.push(
        typeof b.machine === 'string'
          ? b.machine
          : Object.entries(b.machine)
              .filter(([, v]) => typeof v !== 'object')
              .map(([k, v]) => `${k} ${v}`)
              .join(', '),
      );
    if (b.backbone) meta.push(`backbone ${String(b.backbone).split('/').pop()}`);
    if (b.source) meta.push(`from ${b.source}`);
    if (typeof b.note === 'string') meta.push(b.note);
    if (meta.length) target.append(el('p', { class: 'meta' }, meta.join(' · ')));
    let charts = 0;
    const profiles = [...new Set(rows.map((r) => r.profile))];
    for (const p of profiles) {
      const pr = rows.filter((r) => r.profile === p);
      const methods = [...new Set(pr.map((r) => r.method))];
      const cats = [...new Set(pr.map((r) => `b${r.batch} · s${r.seq}`))];
      const sec = el('section', { class: 'profile' }, el('h3', {}, `Profile: ${p}`));
      const info = Array.isArray(b.profiles) ? b.profiles.find((x) => x && x.profile === p) : undefined;
      if (info && (info.label || info.rationale))
        sec.append(
          el(
            'p',
            { class: 'meta' },
            [info.label, info.rationale, info.threads ? `${info.threads} threads` : ''].filter(Boolean).join(' · '),
          ),
        );
      const metric = (key) =>
        methods.map((m) => ({
          name: m,
          values: cats.map((c) => {
            const r = pr.find((x) => x.method === m && `b${x.batch} · s${x.seq}` === c);
            return r ? r[key] : undefined;
          }),
        }));
      const grid = el('div', { class: 'grid-charts' });
      const add = (key, title, unit, f) => {
        const s = metric(key);
        if (s.some((x) => x.values.some((v) => typeof v === 'number'))) {
          grid.append(barChart(title, cats, s, unit, f));
          charts++;
        }
      };
      add('instancesPerMinute', 'Inference throughput', 'instances / min');
      add('trainExamplesPerSecond', 'Training throughput', 'examples / s');
      add('peakRssMB', 'Peak memory (RSS)', 'MB');
      const maxStorage = Math.max(0, ...pr.map((r) => Number(r.storageBytes) || 0));
      const [unitName, unitSize] = maxStorage >= 1048576 ? ['MiB', 1048576] : ['KiB', 1024];
      const storage = metric('storageBytes').map((x) => ({
        name: x.name,
        values: x.values.map((v) => (typeof v === 'number' ? v / unitSize : v)),
      }));
      if (storage.some((x) => x.values.some((v) => typeof v === 'number'))) {
        grid.append(barChart('Storage per task', cats, storage, unitName));
        charts++;
      }
      sec.append(grid);
      const c = b.constraints && b.constraints[p];
      if (c) {
        const dl = el('dl', { class: 'constraints' });
        for (const [k, v] of Object.entries(c)) {
          let text;
          if (v && typeof v === 'object') {
            text = v.detail || JSON.stringify(v);
            if ('enforced' in v) text += v.enforced ? ' (enforced)' : v.requested == null ? '' : ' (NOT enforced)';
          } else text = String(v);
          dl.append(el('dt', {}, k), el('dd', {}, text));
        }
        sec.append(el('h4', {}, 'Constraints'), dl);
      }
      const ratio = (v) => (typeof v === 'number' && isFinite(v) ? '×' + v.toFixed(2) : '–');
      const table = el(
        'table',
        {},
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ...['method', 'batch', 'seq', 'inst/min', '× plain', 'train ex/s', '× plain', 'peak RSS', 'storage'].map((h) =>
              el('th', {}, h),
            ),
          ),
        ),
      );
      const tb = el('tbody');
      for (const r of pr)
        tb.append(
          el(
            'tr',
            {},
            ...[
              r.method,
              r.batch,
              r.seq,
              r.instancesPerMinute != null ? fmt(r.instancesPerMinute) : '–',
              ratio(r.inferenceVsPlain),
              r.trainExamplesPerSecond != null ? fmt(r.trainExamplesPerSecond) : '–',
              ratio(r.trainingVsPlain),
              r.peakRssMB != null ? fmt(r.peakRssMB) + ' MB' : '–',
              r.storageBytes != null ? bytes(r.storageBytes) : '–',
            ].map((v) => el('td', {}, String(v))),
          ),
        );
      table.append(tb);
      sec.append(table);
      target.append(sec);
    }
    return { charts, rows: rows.length };
  }

  /**
   * Heat map of a labels × parents matrix (the paper's Figure 2): colour intensity from 0 to the matrix's maximum,
   * the value in each cell where it fits and in its tooltip, labels on the rows, parent indices on the columns.
   */
  function heatMap(title, rowLabels, matrix, unit, describe) {
    const rows = rowLabels.length,
      cols = matrix[0] ? matrix[0].length : 0;
    const L = HM.heatLayout({ rows, cols, labels: rowLabels });
    const sc = HM.heatScale(matrix);
    const root = svg('svg', { viewBox: `0 0 ${L.W} ${L.H}`, class: 'chart heatmap', role: 'img', 'aria-label': title });
    root.append(svg('title', {}, title));
    rowLabels.forEach((label, r) => {
      const y = L.top + r * L.cellH;
      const short = HM.shortLabel(label, L.maxChars);
      const t = svg('text', { x: L.left - 6, y: y + L.cellH / 2 + 4, class: 'tick row-label', 'text-anchor': 'end' }, short);
      if (short !== String(label)) t.append(svg('title', {}, String(label)));
      root.append(t);
      for (let c = 0; c < cols; c++) {
        const v = matrix[r][c],
          t01 = sc.t[r][c];
        const x = L.left + c * L.cellW;
        const cell = svg('rect', {
          x: x.toFixed(2),
          y: y.toFixed(2),
          width: L.cellW.toFixed(2),
          height: L.cellH.toFixed(2),
          class: 'heat-cell',
          'fill-opacity': HM.cellOpacity(t01),
          'data-row': r,
          'data-col': c,
        });
        cell.append(svg('title', {}, describe(r, c, v)));
        root.append(cell);
        if (L.showNumbers)
          root.append(
            svg(
              'text',
              {
                x: (x + L.cellW / 2).toFixed(2),
                y: (y + L.cellH / 2 + 3.5).toFixed(2),
                class: 'heat-num' + (HM.isHot(t01) ? ' hot' : ''),
                'text-anchor': 'middle',
              },
              HM.cellText(v),
            ),
          );
      }
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
    root.append(
      svg(
        'text',
        {
          x: 12,
          y: L.top + (rows * L.cellH) / 2,
          class: 'axis-label',
          'text-anchor': 'middle',
          transform: `rotate(-90 12 ${L.top + (rows * L.cellH) / 2})`,
        },
        'label',
      ),
    );
    // colour scale: 0 … max in ten steps
    const steps = 10,
      sw = 16;
    const x0 = L.W - L.right - steps * sw - 90;
    root.append(svg('text', { x: x0 - 6, y: L.legendY + 11, class: 'tick', 'text-anchor': 'end' }, '0'));
    for (let i = 0; i < steps; i++) {
      root.append(
        svg('rect', {
          x: x0 + i * sw,
          y: L.legendY,
          width: sw,
          height: 14,
          class: 'heat-cell legend-cell',
          'fill-opacity': HM.cellOpacity((i + 0.5) / steps),
        }),
      );
    }
    root.append(
      svg('text', { x: x0 + steps * sw + 6, y: L.legendY + 11, class: 'tick', 'text-anchor': 'start' }, `${fmt(sc.max)} ${unit}`),
    );
    const fig = el('figure', { class: 'chart-figure heatmap-figure' }, el('figcaption', {}, title), root);
    return { fig, cells: rows * cols };
  }

  function renderRouting(section) {
    const target = section.querySelector('.content');
    const h = section.querySelector('h2');
    target.replaceChildren();
    const r = state.routing;
    if (!r || !Array.isArray(r.labels) || !Array.isArray(r.counts) || !HM) {
      section.hidden = true;
      return null;
    }
    section.hidden = false;
    h.textContent = `Parent routing (layer ${r.layer})`;
    const total = (r.tokens || []).reduce((a, b) => a + b, 0);
    const perLabel = r.labels.map((l, k) => `${l} ${r.tokens[k]}`).join(', ');
    const meta = [`Memory ${r.memoryName}`, `on ${r.dataName}`, `${total} tokens (${perLabel})`, `top-${r.topK} of ${r.parents} parents`];
    if (r.ranAt) meta.push(new Date(r.ranAt).toLocaleString());
    target.append(el('p', { class: 'meta' }, meta.join(' · ')));
    const view = state.routingView === 'gate' ? 'gate' : 'counts';
    const toggle = el('div', { class: 'toggle', role: 'group', 'aria-label': 'Value shown' });
    /** @type {['counts' | 'gate', string][]} */
    const views = [
      ['counts', `Top-${r.topK} share`],
      ['gate', 'Mean gate'],
    ];
    for (const [key, text] of views) {
      const b = el(
        'button',
        { type: 'button', class: key === view ? 'toggle-on' : 'secondary', 'data-view': key, 'aria-pressed': String(key === view) },
        text,
      );
      b.addEventListener('click', () => {
        if (state.routingView !== key) {
          state.routingView = key;
          vscode.setState(state);
          scheduleRender();
        }
      });
      toggle.append(b);
    }
    const again = el('button', { type: 'button', class: 'secondary', id: 'routing-layer' }, 'Other layer…');
    again.addEventListener('click', () => vscode.postMessage({ type: 'showRouting', memory: r.memory, data: r.data }));
    target.append(el('div', { class: 'routing-actions' }, toggle, again));
    const pct = (v) => (100 * v).toFixed(1) + ' %';
    const describe = (k, p, _v) =>
      `${r.labels[k]} · parent ${p}: in the top-${r.topK} of ${pct(r.counts[k][p])} of ${r.tokens[k]} tokens · mean gate ${Number(r.meanGate[k][p]).toFixed(3)}`;
    const hm =
      view === 'gate'
        ? heatMap(`Mean gate weight per label and parent (each row sums to 1)`, r.labels, r.meanGate, 'gate', describe)
        : heatMap(
            `Share of each label's tokens routed to each parent (top-${r.topK} of ${r.parents}; each row sums to ${r.topK})`,
            r.labels,
            r.counts,
            'share',
            describe,
          );
    target.append(hm.fig);
    // the parents each label uses most: the specialisation the map shows
    const m = view === 'gate' ? r.meanGate : r.counts;
    const top = r.labels.map(
      (l, k) =>
        `${l}: ${m[k]
          .map((v, p) => [v, p])
          .sort((a, b) => b[0] - a[0] || a[1] - b[1])
          .slice(0, 3)
          .map((x) => 'p' + x[1])
          .join(', ')}`,
    );
    target.append(el('p', { class: 'meta' }, `Most used parents · ${top.join(' · ')}`));
    return { layer: r.layer, cells: hm.cells, labels: r.labels.length, parents: r.parents, view: /** @type {'counts' | 'gate'} */ (view) };
  }

  function render() {
    const nc = renderCurves(document.querySelector('#curves .content'));
    const nb = renderBench(document.querySelector('#bench .content'));
    const nr = renderRouting(document.getElementById('routing'));
    const ne = EV ? EV.render(document.getElementById('evaluation'), state.evaluation, { el, svg }, (m) => vscode.postMessage(m)) : null;
    vscode.postMessage({
      type: 'rendered',
      charts: document.querySelectorAll('svg.chart').length,
      curves: nc,
      benchRows: nb.rows,
      routing: nr,
      evaluation: ne,
      heatCells: document.querySelectorAll('svg.heatmap:not(.confusion) rect.heat-cell:not(.legend-cell)').length,
    });
  }

  let pending = false;
  /** @type {string | false} the id of the section to scroll to after the next render */
  let reveal = false;
  function scheduleRender() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      render();
      if (reveal) {
        const sec = document.getElementById(reveal);
        reveal = false;
        if (sec && !sec.hidden) sec.scrollIntoView({ block: 'start' });
      }
    });
  }

  window.addEventListener('message', (/** @type {MessageEvent<import('../src/protocol/webview').ToWebview>} */ ev) => {
    const m = ev.data;
    if (m.type === 'update') {
      state = {
        curves: m.curves || [],
        bench: m.bench || null,
        live: null,
        routing: m.routing || null,
        routingView: state.routingView || 'counts',
        evaluation: m.evaluation || null,
      };
      if (m.reveal === 'routing' || m.reveal === 'evaluation') reveal = m.reveal;
    } else if (m.type === 'event' && m.command === 'train') {
      const e = m.event || {};
      if (e.event === 'start') state.live = { steps: [], evals: [], totalSteps: e.steps };
      else if (e.event === 'step' && state.live) state.live.steps.push([Number(e.step), Number(e.loss)]);
      else if (e.event === 'eval' && state.live)
        state.live.evals.push({
          step: (state.live.steps[state.live.steps.length - 1] || [0])[0],
          epoch: e.epoch,
          metrics: e.metrics || {},
        });
      else return;
    } else return;
    vscode.setState(state);
    scheduleRender();
  });
  document.getElementById('run-bench')?.addEventListener('click', () => vscode.postMessage({ type: 'runBench' }));
  document.getElementById('open-report')?.addEventListener('click', () => vscode.postMessage({ type: 'openReport' }));
  document.getElementById('fine-tune')?.addEventListener('click', () => vscode.postMessage({ type: 'fineTune' }));
  document.getElementById('show-log')?.addEventListener('click', () => vscode.postMessage({ type: 'showLog' }));
  render();
  vscode.postMessage({ type: 'ready' });
})();
