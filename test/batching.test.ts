import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { encodeExamples, makeBatches, padBatch, padToLength, EncodedExample } from '../src/engine/data/batching';
import { importGlueTask } from '../src/engine/data/glue';
import type { Example } from '../src/engine/data/jsonl';
import { loadTokenizer } from '../src/engine/tokenizers/robertaTokenizer';
import { SpartanError } from '../src/engine/types';

const SHARED = path.join(__dirname, '../../shared');

function modelDir(): string {
  for (const dir of [path.join(__dirname, '../models/roberta-mini'), path.join(SHARED, 'models/roberta-mini')]) {
    if (fs.existsSync(path.join(dir, 'tokenizer.json'))) return dir;
  }
  throw new Error('roberta-mini not found in models/ or ../shared/models/');
}

const ex = (ids: number[], label: number, line: number): EncodedExample => ({ ids: Int32Array.from(ids), label, line });

test('padBatch right-pads to the longest row with RoBERTa position ids', () => {
  const b = padBatch([ex([0, 5, 6, 2], 1, 1), ex([0, 7, 2], 0, 2)], 1);
  assert.equal(b.batch, 2);
  assert.equal(b.seqLen, 4);
  assert.deepEqual([...b.inputIds], [0n, 5n, 6n, 2n, 0n, 7n, 2n, 1n]);
  assert.deepEqual([...b.attentionMask], [1, 1, 1, 1, 1, 1, 1, 0]);
  // padding_idx + cumsum(mask) for real tokens, padding_idx for padding: 1+1.. and 1.
  assert.deepEqual([...b.positionIds], [2n, 3n, 4n, 5n, 2n, 3n, 4n, 1n]);
  assert.deepEqual([...b.labels], [1, 0]);
});

test('padToLength pads every row to the fixed length; a longer row is an error', () => {
  const b = padToLength([ex([0, 9, 2], 0.25, 3)], 1, 6);
  assert.equal(b.seqLen, 6);
  assert.deepEqual([...b.inputIds], [0n, 9n, 2n, 1n, 1n, 1n]);
  assert.deepEqual([...b.attentionMask], [1, 1, 1, 0, 0, 0]);
  assert.deepEqual([...b.positionIds], [2n, 3n, 4n, 1n, 1n, 1n]);
  assert.deepEqual([...b.labels], [0.25]);
  // A pad id other than 1 shifts the positions (the rule is pad + index, not a fixed offset of 2).
  assert.deepEqual([...padBatch([ex([5, 6], 0, 1)], 3, 3).positionIds], [4n, 5n, 3n]);
  assert.throws(
    () => padToLength([ex([0, 1, 2, 3], 0, 9)], 1, 3),
    (e: Error) => e instanceof SpartanError && e.message.startsWith('line 9:'),
  );
  assert.throws(() => padBatch([], 1), SpartanError);
});

test('position ids match a direct transcription of create_position_ids_from_input_ids', () => {
  const rows = [ex([0, 11, 12, 13, 2], 0, 1), ex([0, 2], 1, 2), ex([0, 14, 15, 2], 1, 3)];
  const padId = 1;
  const b = padBatch(rows, padId);
  for (let r = 0; r < b.batch; r++) {
    let cumsum = 0;
    for (let t = 0; t < b.seqLen; t++) {
      const id = Number(b.inputIds[r * b.seqLen + t]);
      const mask = id !== padId ? 1 : 0;
      cumsum += mask;
      assert.equal(Number(b.positionIds[r * b.seqLen + t]), cumsum * mask + padId);
    }
  }
});

function assertPartition(batches: number[][], n: number, batchSize: number): void {
  const seen = batches.flat().sort((a, b) => a - b);
  assert.deepEqual(
    seen,
    Array.from({ length: n }, (_, i) => i),
  );
  assert.ok(batches.every((b) => b.length >= 1 && b.length <= batchSize));
  assert.equal(batches.filter((b) => b.length < batchSize).length <= Math.ceil(n / (batchSize * 50)), true);
}

test('makeBatches: every index exactly once, deterministic by seed', () => {
  const lengths = Array.from({ length: 1037 }, (_, i) => 3 + ((i * 7919) % 61));
  for (const bucket of [false, true]) {
    const a = makeBatches(lengths, 16, { shuffle: true, seed: 5, bucket });
    assertPartition(a, lengths.length, 16);
    assert.deepEqual(makeBatches(lengths, 16, { shuffle: true, seed: 5, bucket }), a);
    assert.notDeepEqual(makeBatches(lengths, 16, { shuffle: true, seed: 6, bucket }), a);
  }
  // No shuffle, no bucket: in order.
  assert.deepEqual(makeBatches([5, 4, 3, 2, 1], 2, { shuffle: false, seed: 0, bucket: false }), [[0, 1], [2, 3], [4]]);
  // No shuffle with bucket: sorted within the chunk, no seed involved.
  const sorted = makeBatches([5, 4, 3, 2, 1], 2, { shuffle: false, seed: 0, bucket: true });
  assert.deepEqual(sorted, [[4, 3], [2, 1], [0]]);
  assert.deepEqual(makeBatches([], 4, { shuffle: true, seed: 1, bucket: true }), []);
  assert.throws(() => makeBatches([1], 0, { shuffle: false, seed: 0, bucket: false }), SpartanError);
});

test('bucketing cuts padded tokens on SST-2 train rows', () => {
  const glue = path.join(SHARED, 'data/glue/SST-2/train.tsv');
  const tokenizer = loadTokenizer(modelDir());
  // 4,000 rows keep the test fast (the tokenizer runs at ~5k sentences/s) and span several 32×50 chunks.
  const rows: Example[] = importGlueTask('SST-2', glue)
    .rows.slice(0, 4000)
    .map((r, i) => ({ text: r.text, label: r.label, line: i + 2 }));
  const { examples, truncated } = encodeExamples(rows, tokenizer, 'classification', ['negative', 'positive'], 128);
  assert.equal(truncated, 0);
  const lengths = examples.map((e) => e.ids.length);
  const padded = (batches: number[][]): number => batches.reduce((sum, b) => sum + b.length * Math.max(...b.map((i) => lengths[i])), 0);
  const plain = makeBatches(lengths, 32, { shuffle: true, seed: 1, bucket: false });
  const bucketed = makeBatches(lengths, 32, { shuffle: true, seed: 1, bucket: true });
  assertPartition(bucketed, lengths.length, 32);
  const real = lengths.reduce((a, b) => a + b, 0);
  const wastePlain = padded(plain) - real;
  const wasteBucketed = padded(bucketed) - real;
  assert.ok(wasteBucketed < wastePlain / 4, `padding tokens: bucketed ${wasteBucketed}, plain ${wastePlain}`);
  // The padded batch agrees with the lengths it was built from.
  const first = padBatch(
    bucketed[0].map((i) => examples[i]),
    tokenizer.padId,
  );
  assert.equal(first.seqLen, Math.max(...bucketed[0].map((i) => lengths[i])));
});

test('encodeExamples maps labels and counts truncations', () => {
  const fake = {
    encode: (text: string, pair: string | undefined, maxLength: number) => {
      const ids = [0, ...text.split(' ').map((w) => w.length), ...(pair ? [2, 2, pair.length] : []), 2];
      return { ids: ids.slice(0, maxLength), truncated: ids.length > maxLength };
    },
  };
  const rows: Example[] = [
    { text: 'aa bbb', label: 'pos', line: 3 },
    { text: 'c d e f g h', label: 'neg', line: 5 },
  ];
  const out = encodeExamples(rows, fake, 'classification', ['neg', 'pos'], 6);
  assert.equal(out.truncated, 1);
  assert.deepEqual(
    out.examples.map((e) => [[...e.ids], e.label, e.line]),
    [
      [[0, 2, 3, 2], 1, 3],
      [[0, 1, 1, 1, 1, 1], 0, 5],
    ],
  );
  const reg = encodeExamples([{ text: 'x', textPair: 'yy', label: 3.5, line: 1 }], fake, 'regression', [], 10);
  assert.deepEqual([...reg.examples[0].ids], [0, 1, 2, 2, 2, 2]);
  assert.equal(reg.examples[0].label, 3.5);
  assert.throws(
    () => encodeExamples([{ text: 'x', label: 'other', line: 8 }], fake, 'classification', ['neg', 'pos'], 6, 'dev.jsonl'),
    (e: Error) => e instanceof SpartanError && e.message.startsWith('dev.jsonl:8:'),
  );
  assert.throws(() => encodeExamples([{ text: 'x', label: 'pos', line: 2 }], fake, 'regression', [], 6), SpartanError);
});
