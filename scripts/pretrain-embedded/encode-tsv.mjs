// Encodes the `sentence` column of a GLUE-style TSV with the roberta-base BPE (<s> text </s>, at most 128 ids)
// for probe.py, which has no tokenizer of its own:  node encode-tsv.mjs FILE.tsv TOKENIZER_DIR MAX_ROWS > ids.jsonl
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

const [file, tokDir, maxRows] = process.argv.slice(2);
const tok = new Tokenizer(JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8')),
  JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer_config.json'), 'utf8')));
const [header, ...lines] = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length);
const cols = header.split('\t');
const ti = cols.indexOf('sentence');
const li = cols.indexOf('label');
for (const line of lines.slice(0, Number(maxRows) || undefined)) {
  const f = line.split('\t');
  const ids = tok.encode(f[ti], { add_special_tokens: false }).ids.slice(0, 126);
  process.stdout.write(JSON.stringify({ ids: [0, ...ids, 2], label: Number(f[li]) }) + '\n');
}
