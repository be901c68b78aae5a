/**
 * The vscode-free parts of Find Suspect Labels and the panel's evaluation section: where a row's label value is
 * (the quick fix replaces exactly it) and line remapping of a held-out dev file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
