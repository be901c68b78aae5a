import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { checkDevLabels, inferTask, naturalCompare, parseJsonlText, readJsonl, Example } from '../src/engine/data/jsonl';
import { SpartanError } from '../src/engine/types';

/** Problems as "line:message-fragment" pairs, to compare with expectations compactly. */
function problemLines(text: string): Array<[number, string]> {
  return parseJsonlText(text, 'f.jsonl').problems.map((p) => [p.line, p.message]);
}

test('valid rows: blank lines skipped, BOM and CRLF tolerated, line numbers kept', () => {
  const text = '\uFEFF{"text": "good", "label": "pos"}\r\n\r\n   \r\n{"text": "bad", "label": "neg", "id": 7}\r\n';
  const { rows, problems } = parseJsonlText(text, 'f.jsonl');
  assert.deepEqual(problems, []);
  assert.deepEqual(rows, [
    { text: 'good', label: 'pos', line: 1 },
    { text: 'bad', label: 'neg', line: 4 },
  ]);
});

test('every problem kind is reported at its exact line', () => {
  const lines = [
    '{"text": "ok", "label": "a"}', // 1
    '{"text": "ok", "label": }', // 2 invalid JSON
    '[1, 2]', // 3 not an object
    '{"label": "a"}', // 4 missing text
    '{"text": "", "label": "a"}', // 5 empty text
    '{"text": 5, "label": "a"}', // 6 text not a string
    '{"text": "ok", "text_pair": 3, "label": "a"}', // 7 text_pair not a string
    '{"text": "ok"}', // 8 missing label
    '{"text": "ok", "label": true}', // 9 boolean label
    '{"text": "ok", "label": null}', // 10 null label
    '{"text": "ok", "label": {"x": 1}}', // 11 object label
    '{"text": "ok", "label": 1e999}', // 12 infinite label
    '"just a string"', // 13 not an object
    '{"text": "ok", "label": "b"}', // 14
    '{"text": "ok", "label": ""}', // 15 empty label
  ];
  const { rows, problems } = parseJsonlText(lines.join('\n'), 'data/train.jsonl');
  assert.deepEqual(
    rows.map((r) => r.line),
    [1, 14],
  );
  assert.ok(problems.every((p) => p.file === 'data/train.jsonl' && p.severity === 'error'));
  const byLine = new Map(problems.map((p) => [p.line, p]));
  assert.deepEqual([...byLine.keys()], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]);
  assert.match(byLine.get(2)!.message, /^invalid JSON: /);
  assert.match(byLine.get(3)!.message, /expected a JSON object.*got an array/);
  assert.equal(byLine.get(4)!.message, 'missing "text"');
  assert.match(byLine.get(5)!.message, /"text" must be a non-empty string/);
  assert.match(byLine.get(6)!.message, /"text" must be a non-empty string, got number 5/);
  assert.match(byLine.get(7)!.message, /"text_pair" must be a string, got number 3/);
  assert.equal(byLine.get(8)!.message, 'missing "label"');
  assert.match(byLine.get(9)!.message, /"label" must be a string .* or a number .*got boolean true/);
  assert.match(byLine.get(10)!.message, /got null/);
  assert.match(byLine.get(11)!.message, /got an object/);
  assert.match(byLine.get(12)!.message, /finite number/);
  assert.match(byLine.get(13)!.message, /got the string "just a string"/);
  assert.match(byLine.get(15)!.message, /must not be an empty string/);
  // Columns point at the offending key so the editor can underline it.
  assert.equal(byLine.get(6)!.column, 2);
  assert.equal(byLine.get(7)!.column, 16);
});

test('invalid JSON reports the parser message and its column', () => {
  const [problem] = parseJsonlText('{"text": "a", "label": "x"}\n{"text": "a" "label": "x"}', 'f.jsonl').problems;
  assert.equal(problem.line, 2);
  assert.match(problem.message, /^invalid JSON: .+/);
  // Node's JSON.parse names the 0-based position of the unexpected token here (13 → column 14).
  assert.match(problem.message, /position 13/);
  assert.equal(problem.column, 14);
});

test('mixed numeric and string labels: the minority rows are the problems', () => {
  const text = [
    '{"text": "a", "label": "x"}',
    '{"text": "b", "label": 0.5}',
    '{"text": "c", "label": "y"}',
    '{"text": "d", "label": "x"}',
    '{"text": "e", "label": 2}',
  ].join('\n');
  const { rows, problems } = parseJsonlText(text, 'f.jsonl');
  assert.deepEqual(
    rows.map((r) => r.line),
    [1, 3, 4],
  );
  assert.deepEqual(
    problems.map((p) => p.line),
    [2, 5],
  );
  assert.match(problems[0].message, /label 0\.5 is a number, but 3 other rows have string labels/);

  const mostlyNumbers = parseJsonlText('{"text": "a", "label": 1}\n{"text": "b", "label": "x"}\n{"text": "c", "label": 2.5}', 'f.jsonl');
  assert.deepEqual(
    mostlyNumbers.problems.map((p) => [p.line, p.message]),
    [
      [
        2,
        'label "x" is a string, but 2 other rows have numeric labels (a file is either classification with string labels or regression with numeric ones)',
      ],
    ],
  );
});

test('text_pair on some rows only: the minority rows are the problems', () => {
  const text = [
    '{"text": "a", "text_pair": "p", "label": "x"}',
    '{"text": "b", "label": "y"}',
    '{"text": "c", "text_pair": "q", "label": "y"}',
  ].join('\n');
  assert.deepEqual(problemLines(text), [
    [2, 'this row has no "text_pair", but 2 other rows do (either every row is a text pair or none is)'],
  ]);
});

test('readJsonl: missing file, empty file, no valid rows', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-jsonl-'));
  const missing = path.join(dir, 'nope.jsonl');
  assert.throws(
    () => readJsonl(missing),
    (e: Error) => e instanceof SpartanError && e.message === `${missing}: file not found`,
  );
  const empty = path.join(dir, 'F.jsonl');
  fs.writeFileSync(empty, '\n\n');
  assert.throws(
    () => readJsonl(empty),
    (e: Error) => e instanceof SpartanError && e.message === `${empty} has no rows`,
  );
  const allBad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(allBad, '{"text": "a"}\n');
  assert.throws(
    () => readJsonl(allBad),
    (e: Error) =>
      e instanceof SpartanError && e.message.startsWith(`${allBad} has no rows`) && e.message.includes(`${allBad}:1: missing "label"`),
  );
  const good = path.join(dir, 'good.jsonl');
  fs.writeFileSync(good, '{"text": "a", "label": "x"}\nnot json\n');
  const parsed = readJsonl(good);
  assert.equal(parsed.rows.length, 1);
  assert.deepEqual(
    parsed.problems.map((p) => [p.file, p.line]),
    [[good, 2]],
  );
});

const row = (label: string | number, line: number, textPair?: string): Example => ({
  text: 't',
  label,
  line,
  ...(textPair !== undefined ? { textPair } : {}),
});

test('inferTask: classification with naturally sorted labels and counts', () => {
  const info = inferTask([row('10', 1), row('2', 2), row('b', 3), row('B', 4), row('2', 5), row('label1', 6)]);
  assert.equal(info.task, 'classification');
  assert.deepEqual(info.labels, ['2', '10', 'B', 'b', 'label1']);
  assert.deepEqual(info.labelCounts, { '10': 1, '2': 2, b: 1, B: 1, label1: 1 });
  assert.equal(info.pair, false);
});

test('inferTask: regression, pairs, single label, inconsistent rows', () => {
  assert.deepEqual(inferTask([row(0.5, 1, 'p'), row(3, 2, 'q')]), { task: 'regression', labels: [], labelCounts: {}, pair: true });
  assert.throws(
    () => inferTask([row('x', 1), row('x', 2)], 'train.jsonl'),
    (e: Error) => e instanceof SpartanError && /train\.jsonl: every row has the label "x"/.test(e.message),
  );
  assert.throws(
    () => inferTask([row('x', 1, 'p'), row('y', 7)], 'train.jsonl'),
    (e: Error) => e instanceof SpartanError && e.message.startsWith('train.jsonl:7:'),
  );
  assert.throws(
    () => inferTask([row('x', 1), row(2, 3)], 'train.jsonl'),
    (e: Error) => e instanceof SpartanError && e.message.startsWith('train.jsonl:3:'),
  );
  assert.throws(() => inferTask([], 'train.jsonl'), SpartanError);
});

test('naturalCompare orders numbers by value and is case-sensitive', () => {
  assert.deepEqual(['10', '9', '1', '100', '09'].sort(naturalCompare), ['1', '09', '9', '10', '100']);
  assert.deepEqual(['item10', 'item2', 'Item3'].sort(naturalCompare), ['Item3', 'item2', 'item10']);
  assert.ok(naturalCompare('a', 'a') === 0);
});

test('checkDevLabels flags labels unknown to training, with file:line', () => {
  const problems = checkDevLabels([row('pos', 1), row('neutral', 4), row(1, 6)], ['neg', 'pos'], 'dev.jsonl');
  assert.deepEqual(
    problems.map((p) => [p.file, p.line]),
    [
      ['dev.jsonl', 4],
      ['dev.jsonl', 6],
    ],
  );
  assert.equal(problems[0].message, 'label "neutral" does not occur in the training file');
  assert.match(problems[1].message, /label 1 is a number/);
  assert.deepEqual(
    checkDevLabels([row(0.3, 2), row('x', 3)], [], 'dev.jsonl').map((p) => p.line),
    [3],
  );
});
