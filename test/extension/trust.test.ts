/**
 * The vscode-free parts of Find Suspect Labels and the panel's evaluation section: where a row's label value is
 * (the quick fix replaces exactly it), line remapping of a held-out dev file, and the webview's pure helpers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { labelValueRange } from '../../src/extension/labelRange';
import { remapLines } from '../../src/extension/evaluationView';
import type { ClassificationEval } from '../../src/protocol/results';

test('labelValueRange finds the top-level "label" value, whatever its kind and spacing', () => {
  const at = (line: string) => {
    const r = labelValueRange(line);
    return r && line.slice(r.start, r.end);
  };
  assert.equal(at('{"text": "a", "label": "sports"}'), '"sports"');
  assert.equal(at('{"label":"x\\"y","text":"t"}'), '"x\\"y"');
  assert.equal(at('{"text": "the \\"label\\": \\"no\\"", "label" :  ["a", "b"] }'), '["a", "b"]');
  assert.equal(at('{"meta": {"label": "inner"}, "label": 3.5}'), '3.5');
  assert.equal(at('{"text": "no label here"}'), undefined);
  // Replacing the range with another label keeps the rest of the line byte for byte.
  const line = '{"text": "Stocks fell", "label": "sports", "id": 7}';
  const r = labelValueRange(line)!;
  assert.equal(
    line.slice(0, r.start) + JSON.stringify('business') + line.slice(r.end),
    '{"text": "Stocks fell", "label": "business", "id": 7}',
  );
});

test("remapLines points a held-out dev file's confusion rows at the source file's lines", () => {
  const result = {
    task: 'classification',
    confusion: {
      labels: ['a', 'b'],
      matrix: [
        [1, 1],
        [0, 1],
      ],
      lines: [
        [[1], [2]],
        [[], [3]],
      ],
    },
  } as unknown as ClassificationEval;
  const mapped = remapLines(result, [10, 20, 35]) as ClassificationEval;
  assert.deepEqual(mapped.confusion.lines, [
    [[10], [20]],
    [[], [35]],
  ]);
  assert.deepEqual(
    result.confusion.lines,
    [
      [[1], [2]],
      [[], [3]],
    ],
    'the input is not modified',
  );
});

test('evaluation.js helpers: row shares of a confusion matrix, non-empty reliability bars', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ev = require(path.join(__dirname, '..', '..', 'media', 'evaluation.js'));
  assert.deepEqual(
    ev.rowShares([
      [3, 1],
      [0, 0],
    ]),
    [
      [0.75, 0.25],
      [0, 0],
    ],
  );
  const bars = ev.reliabilityBars([
    { lo: 0, hi: 0.5, count: 0, confidence: 0, accuracy: 0 },
    { lo: 0.5, hi: 1, count: 2, confidence: 0.8, accuracy: 0.5 },
  ]);
  assert.deepEqual(bars, [{ x: 0.5, width: 0.5, accuracy: 0.5, confidence: 0.8, count: 2 }]);
});

/** Just enough DOM for evaluation.js: elements with attributes, children, text and click listeners. */
class FakeNode {
  children: FakeNode[] = [];
  attrs: Record<string, string> = {};
  listeners: Record<string, (() => void)[]> = {};
  className = '';
  hidden = false;
  constructor(
    readonly tag: string,
    public text = '',
  ) {}
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
  querySelector(sel: string): FakeNode | undefined {
    return sel === '.content' ? this.children.find((c) => c.className === 'content') : undefined;
  }
  all(pred: (n: FakeNode) => boolean): FakeNode[] {
    return [...(pred(this) ? [this] : []), ...this.children.flatMap((c) => c.all(pred))];
  }
}

test('evaluation.js draws the confusion matrix (a cell lists its rows, a row opens its line) and the reliability bars', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ev = require(path.join(__dirname, '..', '..', 'media', 'evaluation.js'));
  const make = (tag: string, attrs: Record<string, unknown>, ...children: (FakeNode | string)[]) => {
    const n = new FakeNode(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') n.className = String(v);
      else n.setAttribute(k, String(v));
    }
    for (const c of children) n.append(typeof c === 'string' ? new FakeNode('#text', c) : c);
    return n;
  };
  const section = new FakeNode('section');
  const content = new FakeNode('div');
  content.className = 'content';
  section.append(content);
  const bins = Array.from({ length: 15 }, (_, i) => ({
    lo: i / 15,
    hi: (i + 1) / 15,
    count: i === 14 ? 3 : i === 9 ? 1 : 0,
    confidence: i === 14 ? 0.97 : 0.63,
    accuracy: i === 14 ? 2 / 3 : 1,
  }));
  const result = {
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
  const posted: Record<string, unknown>[] = [];
  const drawn = ev.render(
    section,
    { memoryName: 'm', data: '/w/data.jsonl', dataName: 'data.jsonl', result },
    { el: make, svg: make },
    (m: Record<string, unknown>) => posted.push(m),
  );
  assert.deepEqual(drawn, { confusionCells: 4, reliabilityBins: 2, perLabel: 2 });
  assert.equal(section.hidden, false);
  const cells = section.all((n) => n.className.includes('confusion-cell'));
  assert.equal(cells.length, 4);
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
  assert.equal(
    ev.render(section, { result: { task: 'regression' } }, { el: make, svg: make }, () => {}),
    null,
  );
  assert.equal(section.hidden, true);
});
