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
  assert.equal(line.slice(0, r.start) + JSON.stringify('business') + line.slice(r.end), '{"text": "Stocks fell", "label": "business", "id": 7}');
});

test('remapLines points a held-out dev file\'s confusion rows at the source file\'s lines', () => {
  const result = { task: 'classification', confusion: { labels: ['a', 'b'], matrix: [[1, 1], [0, 1]], lines: [[[1], [2]], [[], [3]]] } } as unknown as ClassificationEval;
  const mapped = remapLines(result, [10, 20, 35]) as ClassificationEval;
  assert.deepEqual(mapped.confusion.lines, [[[10], [20]], [[], [35]]]);
  assert.deepEqual(result.confusion.lines, [[[1], [2]], [[], [3]]], 'the input is not modified');
});

test('evaluation.js helpers: row shares of a confusion matrix, non-empty reliability bars', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ev = require(path.join(__dirname, '..', '..', 'media', 'evaluation.js'));
  assert.deepEqual(ev.rowShares([[3, 1], [0, 0]]), [[0.75, 0.25], [0, 0]]);
  const bars = ev.reliabilityBars([{ lo: 0, hi: 0.5, count: 0, confidence: 0, accuracy: 0 }, { lo: 0.5, hi: 1, count: 2, confidence: 0.8, accuracy: 0.5 }]);
  assert.deepEqual(bars, [{ x: 0.5, width: 0.5, accuracy: 0.5, confidence: 0.8, count: 2 }]);
});
