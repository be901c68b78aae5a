/**
 * The benchmark panel's page (src/webview/) under plain Node: the heat-map scale and layout, the evaluation
 * section's helpers, and its drawing into a stand-in document (clicking a confusion cell lists its rows, a row
 * posts the line to open). Type-checked by tsconfig.webview-test.json (DOM lib and Node).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as heat from '../../src/webview/heatmap';
import { cellOpacity } from '../../src/webview/heatmap';
import { reliabilityBars, renderEvaluation, rowShares } from '../../src/webview/evaluation';
import type { ClassificationEval } from '../../src/protocol/results';
import type { PanelEvaluation, ToExtension } from '../../src/protocol/webview';

/** A labels × parents share matrix as `spartan routes` prints it (2 labels, 4 parents, top-2). */
const COUNTS = [
  [0.8, 0.6, 0.4, 0.2],
  [0.1, 0.5, 0.9, 0.5],
];

test('heat map scale: 0 … the maximum, clean values, an all-zero map stays blank', () => {
  const s = heat.heatScale(COUNTS);
  assert.equal(s.max, 0.9);
  assert.equal(s.t[1][2], 1);
  assert.ok(Math.abs(s.t[0][0] - 0.8 / 0.9) < 1e-12);
  assert.ok(s.t.flat().every((v) => v >= 0 && v <= 1));
  const dirty = heat.heatScale([[2, -1, NaN, Infinity]]);
  assert.deepEqual(dirty, { max: 2, t: [[1, 0, 0, 0]] });
  assert.deepEqual(
    heat.heatScale([
      [0, 0],
      [0, 0],
    ]),
    {
      max: 0,
      t: [
        [0, 0],
        [0, 0],
      ],
    },
  );
  // opacity grows with the value, from a faint floor to 1
  assert.equal(heat.cellOpacity(0), 0.04);
  assert.equal(heat.cellOpacity(1), 1);
  assert.equal(heat.cellOpacity(2), 1);
  assert.equal(heat.cellOpacity(NaN), 0.04);
  const ops = [0, 0.1, 0.3, 0.5, 0.9].map((t) => heat.cellOpacity(t));
  assert.ok(ops.every((v, i) => i === 0 || v > ops[i - 1]));
  assert.equal(heat.isHot(0.9), true);
  assert.equal(heat.isHot(0.2), false);
});

test('heat map cell text and labels', () => {
  assert.equal(heat.cellText(0.8307), '.83');
  assert.equal(heat.cellText(1), '1.00');
  assert.equal(heat.cellText(0), '0');
  assert.equal(heat.cellText(0.001), '1e-3');
  assert.equal(heat.cellText(NaN), '0');
  assert.equal(heat.shortLabel('neg', 18), 'neg');
  assert.equal(heat.shortLabel('a-very-long-label-name-indeed', 10), 'a-very-lo…');
  assert.equal(heat.shortLabel('a-very-long-label-name-indeed', 10).length, 10);
});

test('heat map layout: cells fill the width, numbers only where they fit, taller with more labels', () => {
  const l = heat.heatLayout({ rows: 2, cols: 16, labels: ['neg', 'pos'] });
  assert.equal(l.W, 640);
  assert.ok(Math.abs(l.left + 16 * l.cellW + l.right - l.W) < 1e-9, 'the columns span the width');
  assert.equal(l.showNumbers, true);
  assert.equal(l.tickEvery, 1);
  assert.ok(l.cellH >= 16 && l.cellH <= 32);
  assert.ok(l.legendY > l.gridBottom && l.H > l.legendY);
  const tall = heat.heatLayout({ rows: 6, cols: 16, labels: ['0', '1', '2', '3', '4', '5'] });
  assert.ok(tall.H > l.H);
  const wide = heat.heatLayout({ rows: 2, cols: 128, labels: ['neg', 'pos'] });
  assert.equal(wide.showNumbers, false);
  assert.ok(wide.tickEvery > 1);
  assert.ok(wide.cellH >= 16, 'rows stay readable with narrow columns');
  const long = heat.heatLayout({ rows: 1, cols: 16, labels: ['x'.repeat(200)] });
  assert.ok(long.left <= 160, 'long labels are shortened, not given the whole width');
});

test('evaluation helpers: row shares of a confusion matrix, non-empty reliability bars', () => {
  assert.deepEqual(
    rowShares([
      [3, 1],
      [0, 0],
    ]),
    [
      [0.75, 0.25],
      [0, 0],
    ],
  );
  const bars = reliabilityBars([
    { lo: 0, hi: 0.5, count: 0, confidence: 0, accuracy: 0 },
    { lo: 0.5, hi: 1, count: 2, confidence: 0.8, accuracy: 0.5 },
  ]);
  assert.deepEqual(bars, [{ x: 0.5, width: 0.5, accuracy: 0.5, confidence: 0.8, count: 2 }]);
});

/** Just enough DOM for the page's builders: elements with attributes, children, text and listeners. */
class FakeNode {
  children: FakeNode[] = [];
  attrs: Record<string, string> = {};
  listeners: Record<string, (() => void)[]> = {};
  hidden = false;
  constructor(
    readonly tag: string,
    public text = '',
  ) {}
  get className(): string {
    return this.attrs.class ?? '';
  }
  setAttribute(k: string, v: string) {
    this.attrs[k] = v;
  }
  append(...c: FakeNode[]) {
    this.children.push(...c);
  }
  replaceChildren(...c: FakeNode[]) {
    this.children = c;
  }
  addEventListener(type: string, f: () => void) {
    (this.listeners[type] ??= []).push(f);
  }
  querySelector(sel: string): FakeNode | null {
    return sel === '.content' ? (this.children.find((c) => c.className === 'content') ?? null) : null;
  }
  all(pred: (n: FakeNode) => boolean): FakeNode[] {
    return [...(pred(this) ? [this] : []), ...this.children.flatMap((c) => c.all(pred))];
  }
}

const asElement = (n: FakeNode) => n as unknown as HTMLElement;

// The builders (src/webview/dom.ts) call the global document at draw time.
(globalThis as { document?: unknown }).document = {
  createElement: (tag: string) => new FakeNode(tag),
  createElementNS: (_ns: string, tag: string) => new FakeNode(tag),
  createTextNode: (text: string) => new FakeNode('#text', text),
};

test('the evaluation section draws the confusion matrix (a cell lists its rows, a row opens its line) and the reliability bars', () => {
  const section = new FakeNode('section');
  const content = new FakeNode('div');
  content.setAttribute('class', 'content');
  section.append(content);
  const bins = Array.from({ length: 15 }, (_, i) => ({
    lo: i / 15,
    hi: (i + 1) / 15,
    count: i === 14 ? 3 : i === 9 ? 1 : 0,
    confidence: i === 14 ? 0.97 : 0.63,
    accuracy: i === 14 ? 2 / 3 : 1,
  }));
  const result: ClassificationEval = {
    task: 'classification',
    rows: 4,
    truncated: 0,
    seconds: 0.1,
    accuracy: 0.75,
    f1: 0.8,
    mcc: 0.5,
    temperature: 1.4,
    ece: 0.1,
    ece_uncalibrated: 0.2,
    reliability: bins,
    reliability_uncalibrated: bins,
    per_label: { neg: { precision: 1, recall: 0.5, f1: 0.667, support: 2 }, pos: { precision: 0.667, recall: 1, f1: 0.8, support: 2 } },
    confusion: {
      labels: ['neg', 'pos'],
      matrix: [
        [1, 1],
        [0, 2],
      ],
      lines: [
        [[3], [7]],
        [[], [1, 9]],
      ],
    },
  };
  const posted: ToExtension[] = [];
  const drawn = renderEvaluation(
    asElement(section),
    { memoryName: 'm', data: '/w/data.jsonl', dataName: 'data.jsonl', result, ranAt: '' },
    (m) => posted.push(m),
  );
  assert.deepEqual(drawn, { confusionCells: 4, reliabilityBins: 2, perLabel: 2 });
  assert.equal(section.hidden, false);
  const cells = section.all((n) => n.className.includes('confusion-cell'));
  assert.equal(cells.length, 4);
  // The confusion cells are the heat map's cells: shaded by the row share with the same scale.
  assert.equal(cells[0].attrs['fill-opacity'], String(cellOpacity(0.5)));
  assert.equal(cells[3].attrs['fill-opacity'], String(cellOpacity(1)));
  assert.ok(section.all((n) => n.attrs.class === 'heat-num hot').length >= 1, 'the full diagonal cell has its number in the hot colour');
  const offDiagonal = cells.find((c) => c.attrs['data-true'] === 'neg' && c.attrs['data-predicted'] === 'pos')!;
  offDiagonal.listeners.click[0]();
  assert.deepEqual(posted.at(-1), { type: 'listedRows', count: 1 });
  const rowButtons = section.all((n) => n.className.includes('row-link'));
  assert.deepEqual(
    rowButtons.map((b) => b.attrs['data-line']),
    ['7'],
  );
  rowButtons[0].listeners.click[0]();
  assert.deepEqual(posted.at(-1), { type: 'openRow', file: '/w/data.jsonl', line: 7 });
  // A regression evaluation hides the section.
  const regression: PanelEvaluation['result'] = { task: 'regression', rows: 1, truncated: 0, seconds: 0, pearson: 1, spearman: 1, mse: 0 };
  assert.equal(
    renderEvaluation(asElement(section), { memoryName: 'm', data: '', dataName: '', result: regression, ranAt: '' }, () => {}),
    null,
  );
  assert.equal(section.hidden, true);
});
