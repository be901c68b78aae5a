import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { loadTokenizer, truncatedLengths } from '../src/engine/tokenizers/robertaTokenizer';
import { SpartanError } from '../src/engine/types';

/** The checkpoint ships in the repository's models/ and in ../shared/models/ (CI's layout). */
function modelDir(): string {
  for (const dir of [path.join(__dirname, '../models/roberta-mini'), path.join(__dirname, '../../shared/models/roberta-mini')]) {
    if (fs.existsSync(path.join(dir, 'tokenizer.json'))) return dir;
  }
  throw new Error('roberta-mini not found in models/ or ../shared/models/');
}

/** A directory holding only vocab.json + merges.txt, so loadTokenizer must build tokenizer.json itself. */
function vocabMergesDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-tok-'));
  for (const f of ['vocab.json', 'merges.txt']) fs.copyFileSync(path.join(modelDir(), f), path.join(dir, f));
  return dir;
}

const SAMPLES = [
  'Hello world',
  ' leading space',
  '   several leading spaces and trailing   ',
  "I can't believe it's not butter, we'll see; they've gone, you're right, I'd say",
  "DON'T SHOUT'S",
  'Numbers: 3.14159, 1,000,000 and 2024-01-31 at 10:45pm (#42)',
  'café naïve résumé Zürich — “quotes” and ‘single’ …',
  'emoji 😀👍🏽 and flags 🇫🇷 plus 👨‍👩‍👧',
  'Ελληνικά, русский, 中文字符, 日本語のテキスト, العربية, हिन्दी',
  'tabs\tand\nnewlines\r\n mixed',
  "it 's a charming and often affecting journey . ",
  'URLs https://example.com/a?b=c&d=e and emails a.b@c.org',
  'a <mask> token and <s> markers </s>',
  'x',
];

test('known roberta-base ids', () => {
  const tok = loadTokenizer(modelDir());
  assert.deepEqual(tok.encode('Hello world', undefined, 512), { ids: [0, 31414, 232, 2], truncated: false });
  assert.deepEqual(tok.encode('Hello world', ' How are you?', 512).ids, [0, 31414, 232, 2, 2, 1336, 32, 47, 116, 2]);
  assert.equal(tok.padId, 1);
  assert.equal(tok.bosId, 0);
  assert.equal(tok.eosId, 2);
  // <mask> is 50264, so the embedding table has 50265 rows (config.json's vocab_size).
  assert.equal(tok.vocabSize, 50265);
});

test('vocab.json + merges.txt tokenizes exactly like tokenizer.json', () => {
  const fromJson = loadTokenizer(modelDir());
  const fromFiles = loadTokenizer(vocabMergesDir());
  assert.equal(fromFiles.vocabSize, fromJson.vocabSize);
  assert.equal(fromFiles.padId, fromJson.padId);
  for (const text of SAMPLES) {
    assert.deepEqual(fromFiles.encode(text, undefined, 512), fromJson.encode(text, undefined, 512), text);
    assert.deepEqual(fromFiles.encode(text, SAMPLES[3], 512), fromJson.encode(text, SAMPLES[3], 512), text);
  }
  // The mask token strips the space before it, as in the published tokenizer.
  const masked = fromFiles.encode('a <mask> b', undefined, 512).ids;
  assert.ok(masked.includes(50264));
  assert.deepEqual(masked, fromJson.encode('a <mask> b', undefined, 512).ids);
});

test('untruncated encodings equal the library encoding with special tokens', () => {
  const dir = modelDir();
  const lib = new Tokenizer(JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')), {});
  const tok = loadTokenizer(dir);
  for (const text of SAMPLES) {
    assert.deepEqual(tok.encode(text, undefined, 512).ids, lib.encode(text).ids, text);
    assert.deepEqual(tok.encode(text, ' and a pair', 512).ids, lib.encode(text, { text_pair: ' and a pair' }).ids, text);
  }
});

test('truncatedLengths follows the tokenizers LongestFirst table', () => {
  // The cases of huggingface/tokenizers' truncate_encodings_longest_first test (max_length 7; lengths 0, 2, 4, 8).
  const cases: Array<[number, number, number, number]> = [
    [0, 0, 0, 0],
    [0, 2, 0, 2],
    [0, 4, 0, 4],
    [0, 8, 0, 7],
    [2, 0, 2, 0],
    [2, 2, 2, 2],
    [2, 4, 2, 4],
    [2, 8, 2, 5],
    [4, 0, 4, 0],
    [4, 2, 4, 2],
    [4, 4, 3, 4],
    [4, 8, 3, 4],
    [8, 0, 7, 0],
    [8, 2, 5, 2],
    [8, 4, 4, 3],
    [8, 8, 3, 4],
  ];
  for (const [n1, n2, k1, k2] of cases) assert.deepEqual(truncatedLengths(n1, n2, 7), [k1, k2], `${n1},${n2}`);
  assert.deepEqual(truncatedLengths(10, undefined, 7), [7, 0]);
  assert.deepEqual(truncatedLengths(5, undefined, 7), [5, 0]);
});

test('encode truncates to maxLength and keeps the special tokens', () => {
  const tok = loadTokenizer(modelDir());
  const long = 'one two three four five six seven eight nine ten eleven twelve';
  const full = tok.encode(long, undefined, 512);
  assert.equal(full.truncated, false);
  const cut = tok.encode(long, undefined, 6);
  assert.equal(cut.truncated, true);
  assert.equal(cut.ids.length, 6);
  assert.deepEqual(cut.ids, [...full.ids.slice(0, 5), 2]);

  // Pair: 12 + 3 content tokens, budget 10 - 4 = 6 → the short side keeps its 3, the long side gets 3.
  const short = ' a b c';
  const pairFull = tok.encode(long, short, 512).ids;
  const a = pairFull.slice(1, pairFull.indexOf(2));
  assert.equal(a.length, 12);
  const pair = tok.encode(long, short, 10);
  assert.equal(pair.truncated, true);
  assert.deepEqual(pair.ids, [0, ...a.slice(0, 3), 2, 2, ...pairFull.slice(-4, -1), 2]);
  // Both long: budget split evenly.
  const both = tok.encode(long, long, 14);
  assert.deepEqual(both.ids, [0, ...a.slice(0, 5), 2, 2, ...a.slice(0, 5), 2]);
  // Exactly fitting is not truncation.
  assert.equal(tok.encode(long, undefined, full.ids.length).truncated, false);
  assert.throws(() => tok.encode(long, short, 5), SpartanError);
});

test('errors name the file and the problem', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-tok-'));
  assert.throws(
    () => loadTokenizer(empty),
    (e: Error) => e instanceof SpartanError && e.message.includes(`${path.join(empty, 'vocab.json')} is missing`),
  );
  const bad = vocabMergesDir();
  fs.writeFileSync(path.join(bad, 'merges.txt'), '#version: 0.2\nĠ t\nonlyonetoken\n');
  assert.throws(
    () => loadTokenizer(bad),
    (e: Error) => e instanceof SpartanError && e.message.includes(`${path.join(bad, 'merges.txt')}:3:`),
  );
  const badJson = vocabMergesDir();
  fs.writeFileSync(path.join(badJson, 'vocab.json'), '{"<s>": 0,');
  assert.throws(
    () => loadTokenizer(badJson),
    (e: Error) => e instanceof SpartanError && e.message.includes('vocab.json: invalid JSON'),
  );
});
