// Tokenizes the pretraining corpus (one paragraph a line, a blank line between documents) with the roberta-base
// byte-level BPE that the product itself uses (@huggingface/tokenizers, the library behind transformers.js), so
// the ids the backbone is pretrained on are exactly the ids the engine feeds it.
// Output: little-endian uint16 ids (the vocabulary has 50,265 < 65,536 entries); paragraphs of a document are
// joined by the newline token "Ċ", documents are separated by </s>.
//   node scripts/pretrain-embedded/tokenize.mjs CORPUS.txt.gz TOKENIZER_DIR OUT.u16
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import zlib from 'node:zlib';
import { Tokenizer } from '@huggingface/tokenizers';

const [corpus, tokDir, out] = process.argv.slice(2);
if (!corpus || !tokDir || !out) {
  console.error('usage: tokenize.mjs CORPUS(.gz) TOKENIZER_DIR OUT.u16');
  process.exit(1);
}
const tj = JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8'));
const cfg = JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer_config.json'), 'utf8'));
const tok = new Tokenizer(tj, cfg);
const NEWLINE = tok.token_to_id('Ċ');
const EOS = tok.token_to_id('</s>');

let input = fs.createReadStream(corpus);
if (corpus.endsWith('.gz')) input = input.pipe(zlib.createGunzip());
const rl = readline.createInterface({ input, crlfDelay: Infinity });

const tmp = `${out}.tmp-${process.pid}`;
const fd = fs.openSync(tmp, 'w');
let buf = new Uint16Array(1 << 20);
let n = 0;
let total = 0;
let docs = 0;
let inDoc = false;
const push = (id) => {
  if (n === buf.length) flush();
  buf[n++] = id;
};
function flush() {
  fs.writeSync(fd, Buffer.from(buf.buffer, 0, n * 2));
  total += n;
  n = 0;
}
const t0 = Date.now();
for await (const line of rl) {
  if (line.trim() === '') {
    if (inDoc) { push(EOS); docs++; inDoc = false; }
    continue;
  }
  if (inDoc) push(NEWLINE);
  for (const id of tok.encode(line, { add_special_tokens: false }).ids) push(id);
  inDoc = true;
}
if (inDoc) { push(EOS); docs++; }
flush();
fs.closeSync(fd);
fs.renameSync(tmp, out);
console.log(JSON.stringify({ tokens: total, documents: docs, seconds: (Date.now() - t0) / 1000 }));
