import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GLUE_TASKS, glueTaskName, importGlueTask, writeJsonl } from '../src/engine/data/glue';
import { inferTask, parseJsonlText } from '../src/engine/data/jsonl';
import { SpartanError } from '../src/engine/types';

const GLUE = path.join(__dirname, '../../shared/data/glue');
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-glue-'));

function tsv(lines: string[][]): string {
  return lines.map((l) => l.join('\t')).join('\n') + '\n';
}

function countLabels(rows: Array<{ label: string | number }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of rows) counts[String(r.label)] = (counts[String(r.label)] ?? 0) + 1;
  return counts;
}

test('SST-2 train and dev import completely', () => {
  const train = importGlueTask('SST-2', path.join(GLUE, 'SST-2/train.tsv'));
  assert.equal(train.rows.length, 67349);
  assert.deepEqual(train.skipped, []);
  assert.deepEqual(countLabels(train.rows), { negative: 29780, positive: 37569 });
  // Texts are verbatim, trailing space included.
  assert.deepEqual(train.rows[0], { text: 'hide new secretions from the parental units ', label: 'negative' });
  const dev = importGlueTask('sst2', path.join(GLUE, 'SST-2/dev.tsv'));
  assert.equal(dev.rows.length, 872);
  assert.deepEqual(dev.rows[0], { text: "it 's a charming and often affecting journey . ", label: 'positive' });
});

test('MRPC: BOM header, quotes kept literally, pairs', () => {
  const train = importGlueTask('MRPC', path.join(GLUE, 'MRPC/train.tsv'));
  assert.equal(train.rows.length, 3668);
  assert.deepEqual(countLabels(train.rows), { not_equivalent: 1194, equivalent: 2474 });
  assert.deepEqual(train.rows[0], {
    text: 'Amrozi accused his brother, whom he called "the witness", of deliberately distorting his evidence.',
    text_pair: 'Referring to him as only "the witness", Amrozi accused his brother of deliberately distorting his evidence.',
    label: 'equivalent',
  });
  const dev = importGlueTask('MRPC', path.join(GLUE, 'MRPC/dev.tsv'));
  assert.equal(dev.rows.length, 408);
  // An unbalanced opening quote must not swallow the following lines.
  assert.equal(dev.rows[0].text_pair, '"The foodservice pie business does not fit our long-term growth strategy.');
});

test('STS-B: columns by header name, numeric scores', () => {
  const train = importGlueTask('STS-B', path.join(GLUE, 'STS-B/train.tsv'));
  assert.equal(train.rows.length, 5749);
  assert.deepEqual(train.rows[1], { text: 'A man is playing a large flute.', text_pair: 'A man is playing a flute.', label: 3.8 });
  assert.ok(train.rows.every((r) => typeof r.label === 'number' && r.label >= 0 && r.label <= 5));
  const dev = importGlueTask('stsb', path.join(GLUE, 'STS-B/dev.tsv'));
  assert.equal(dev.rows.length, 1500);
  assert.equal(dev.rows[0].label, 5);
});

test('CoLA: headerless four columns, bad rows reported and skipped', () => {
  const file = path.join(tmp(), 'train.tsv');
  fs.writeFileSync(
    file,
    tsv([
      ['gj04', '1', '', "Our friends won't buy this analysis, let alone the next one we propose."],
      ['gj04', '0', '*', 'They drank the pub.'],
      ['gj04', '1', ''],
      ['gj04', '7', '', 'A sentence.'],
      ['cj99', '1', '', '"Quoted start'],
    ]),
  );
  const { rows, skipped } = importGlueTask('CoLA', file);
  assert.deepEqual(rows, [
    { text: "Our friends won't buy this analysis, let alone the next one we propose.", label: 'acceptable' },
    { text: 'They drank the pub.', label: 'unacceptable' },
    { text: '"Quoted start', label: 'acceptable' },
  ]);
  assert.deepEqual(
    skipped.map((s) => [s.file, s.line]),
    [
      [file, 3],
      [file, 4],
    ],
  );
  assert.match(skipped[0].message, /expected 4 tab-separated columns, found 3/);
  assert.match(skipped[1].message, /label "7"/);
});

test('QNLI, RTE, WNLI: header columns and label names', () => {
  const dir = tmp();
  const qnli = path.join(dir, 'qnli.tsv');
  fs.writeFileSync(
    qnli,
    tsv([
      ['index', 'question', 'sentence', 'label'],
      ['0', 'What came first?', 'The egg.', 'entailment'],
      ['1', 'Why?', 'Because.', 'not_entailment'],
    ]),
  );
  assert.deepEqual(importGlueTask('QNLI', qnli).rows, [
    { text: 'What came first?', text_pair: 'The egg.', label: 'entailment' },
    { text: 'Why?', text_pair: 'Because.', label: 'not_entailment' },
  ]);
  const rte = path.join(dir, 'rte.tsv');
  // Columns in a different order than usual: found by name, not position.
  fs.writeFileSync(
    rte,
    tsv([
      ['index', 'label', 'sentence2', 'sentence1'],
      ['0', 'not_entailment', 'hyp', 'premise'],
      ['1', 'maybe', 'h', 'p'],
    ]),
  );
  const r = importGlueTask('RTE', rte);
  assert.deepEqual(r.rows, [{ text: 'premise', text_pair: 'hyp', label: 'not_entailment' }]);
  assert.deepEqual(
    r.skipped.map((s) => s.line),
    [3],
  );
  const wnli = path.join(dir, 'wnli.tsv');
  fs.writeFileSync(
    wnli,
    tsv([
      ['index', 'sentence1', 'sentence2', 'label'],
      ['0', 'a', 'b', '1'],
      ['1', 'c', 'd', '0'],
    ]),
  );
  assert.deepEqual(
    importGlueTask('WNLI', wnli).rows.map((x) => x.label),
    ['entailment', 'not_entailment'],
  );
});

test('MNLI: gold_label by header in train (12 columns) and dev (16 columns)', () => {
  const dir = tmp();
  const base = [
    'index',
    'promptID',
    'pairID',
    'genre',
    'sentence1_binary_parse',
    'sentence2_binary_parse',
    'sentence1_parse',
    'sentence2_parse',
    'sentence1',
    'sentence2',
  ];
  const train = path.join(dir, 'train.tsv');
  fs.writeFileSync(
    train,
    tsv([
      [...base, 'label1', 'gold_label'],
      ['0', '1', '1e', 'gov', '( x )', '( y )', '(ROOT x)', '(ROOT y)', 'Premise one.', 'Hypothesis one.', 'neutral', 'neutral'],
      ['1', '2', '2e', 'gov', '( x )', '( y )', '(ROOT x)', '(ROOT y)', 'Premise two.', 'Hypothesis "two.', 'entailment', 'entailment'],
    ]),
  );
  assert.deepEqual(importGlueTask('MNLI', train).rows, [
    { text: 'Premise one.', text_pair: 'Hypothesis one.', label: 'neutral' },
    { text: 'Premise two.', text_pair: 'Hypothesis "two.', label: 'entailment' },
  ]);
  const dev = path.join(dir, 'dev_matched.tsv');
  fs.writeFileSync(
    dev,
    tsv([
      [...base, 'label1', 'label2', 'label3', 'label4', 'label5', 'gold_label'],
      [
        '0',
        '1',
        '1c',
        'fic',
        'a',
        'b',
        'c',
        'd',
        'P.',
        'H.',
        'contradiction',
        'neutral',
        'contradiction',
        'contradiction',
        'neutral',
        'contradiction',
      ],
      ['1', '2', '2c', 'fic', 'a', 'b', 'c', 'd', 'P.', 'H.', 'neutral', 'entailment', 'contradiction', 'neutral', 'entailment', '-'],
    ]),
  );
  const d = importGlueTask('mnli', dev);
  assert.deepEqual(
    d.rows.map((x) => x.label),
    ['contradiction'],
  );
  assert.deepEqual(
    d.skipped.map((s) => s.line),
    [3],
  );
  assert.deepEqual(GLUE_TASKS.MNLI.devFiles, ['dev_matched.tsv', 'dev_mismatched.tsv']);
});

test('QQP: malformed rows skipped with a count, labels mapped', () => {
  const file = path.join(tmp(), 'train.tsv');
  fs.writeFileSync(
    file,
    tsv([
      ['id', 'qid1', 'qid2', 'question1', 'question2', 'is_duplicate'],
      ['0', '1', '2', 'How do I learn?', 'How can I learn?', '1'],
      ['1', '3', '4', 'What is "it"?', 'Who?', '0'],
      ['2', '5', '6', 'A question broken', ''],
      ['3', '7', '8', 'Q?', '', '0'],
    ]).replace(/\n/g, '\r\n'),
  );
  const { rows, skipped } = importGlueTask('QQP', file);
  assert.deepEqual(rows, [
    { text: 'How do I learn?', text_pair: 'How can I learn?', label: 'duplicate' },
    { text: 'What is "it"?', text_pair: 'Who?', label: 'not_duplicate' },
  ]);
  assert.equal(skipped.length, 2);
  assert.deepEqual(
    skipped.map((s) => [s.line, s.message]),
    [
      [4, 'expected 6 tab-separated columns, found 5'],
      [5, 'empty sentence'],
    ],
  );
});

test('errors: unknown task, missing file, missing header column', () => {
  assert.throws(
    () => importGlueTask('SQuAD', 'x.tsv'),
    (e: Error) => e instanceof SpartanError && /unknown GLUE task "SQuAD"/.test(e.message),
  );
  const missing = path.join(tmp(), 'none.tsv');
  assert.throws(
    () => importGlueTask('SST-2', missing),
    (e: Error) => e instanceof SpartanError && e.message === `${missing}: file not found`,
  );
  // SST-2's test split has no label column.
  const unlabelled = path.join(tmp(), 'test.tsv');
  fs.writeFileSync(
    unlabelled,
    tsv([
      ['index', 'sentence'],
      ['0', 'unlabelled'],
    ]),
  );
  assert.throws(
    () => importGlueTask('SST-2', unlabelled),
    (e: Error) => e instanceof SpartanError && e.message.startsWith(`${unlabelled}:1: the SST-2 header has no "label" column`),
  );
  assert.equal(glueTaskName('sts_b'), 'STS-B');
  assert.equal(glueTaskName('cola'), 'CoLA');
});

test('writeJsonl output reads back through parseJsonlText and inferTask', () => {
  const { rows } = importGlueTask('MRPC', path.join(GLUE, 'MRPC/dev.tsv'));
  const out = path.join(tmp(), 'nested/dev.jsonl');
  writeJsonl(out, rows);
  const parsed = parseJsonlText(fs.readFileSync(out, 'utf8'), out);
  assert.deepEqual(parsed.problems, []);
  assert.equal(parsed.rows.length, 408);
  assert.deepEqual(parsed.rows[0], { text: rows[0].text, textPair: rows[0].text_pair, label: rows[0].label, line: 1 });
  const info = inferTask(parsed.rows, out);
  assert.equal(info.pair, true);
  // Sorted names differ from GLUE's order; GLUE_TASKS names the positive class so F1 can find it.
  assert.deepEqual(info.labels, ['equivalent', 'not_equivalent']);
  assert.equal(info.labels.indexOf(GLUE_TASKS.MRPC.positive!), 0);
  assert.deepEqual(fs.readdirSync(path.dirname(out)), ['dev.jsonl']);
});
