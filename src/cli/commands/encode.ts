/**
 * `spartan encode`: a JSONL file's rows as the engine's token ids, for trainers that cannot run the engine's
 * tokenizer (the PyTorch trainer in python/spartan_torch where Hugging Face `tokenizers` is not installed).
 *
 * The rows are read and checked by the same code as `spartan train` (so a bad row gets the same file:line
 * message) and tokenized by the same tokenizer and truncation. Output: JSON lines, a header object first
 *   {"format": "spartan-encoded", "version": 1, "source", "tokenizer_hash", "max_length", "pad_id", "rows",
 *    "truncated", "task": {task, labels, labelCounts, pair} | null, "task_error"?: message}
 * then one `{"line", "ids", "label", "truncated"}` per row (label as written in the file). `task` is what
 * `spartan train` would infer from this file as training data; null (with the reason) when it could not be one,
 * e.g. a dev file with a single label.
 */
import * as path from 'node:path';
import { Command } from 'commander';
import {
  inferTask,
  TaskInfo,
  embeddedTokenizerDir,
  parseSyntheticSpec,
  tokenizerHashOf,
  loadTokenizer,
  writeFileAtomic,
  SpartanError,
} from '../../engine';
import { makeOutput } from '../output';
import { intOption, resolveBackboneSpec } from '../options';
import { readRows } from '../rows';

export const ENCODED_FORMAT = 'spartan-encoded';
export const ENCODED_VERSION = 1;

/** The tokenizer folder of a backbone spec, without loading its weights (synthetic backbones use the embedded one). */
function tokenizerDirOf(spec: string): string {
  if (spec.startsWith('synthetic:')) {
    parseSyntheticSpec(spec);
    return embeddedTokenizerDir();
  }
  return path.resolve(spec);
}

export function registerEncode(program: Command): void {
  program
    .command('encode')
    .description("write a JSONL file's rows as the engine's token ids (for the PyTorch trainer, python/spartan_torch)")
    .requiredOption('--data <file>', 'rows (JSONL), checked as `spartan train` checks them')
    .requiredOption('--out <file>', 'where to write the encoded rows (JSON lines); written atomically')
    .option('--backbone <dir|synthetic:NAME|embedded>', 'backbone whose tokenizer to use', 'embedded')
    .option('--max-length <n>', 'tokens per example, longer texts are truncated', intOption(4), 128)
    .option('--skip-invalid', 'encode the valid rows of a file that has invalid ones (they are reported)')
    .option('--json', 'JSON result on stdout')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      const dir = tokenizerDirOf(resolveBackboneSpec(o.backbone));
      const tokenizer = loadTokenizer(dir);
      // Checked as `spartan train` checks them, with train's message: python/spartan_torch relays it as its own.
      const rows = readRows(o.data, Boolean(o.skipInvalid), (l) => process.stderr.write(l + '\n'), 'train on');
      let task: TaskInfo | null = null;
      let taskError: string | undefined;
      try {
        task = inferTask(rows, o.data);
      } catch (e) {
        if (!(e instanceof SpartanError)) throw e;
        taskError = e.message;
      }
      let truncated = 0;
      const lines = rows.map((r) => {
        const enc = tokenizer.encode(r.text, r.textPair, o.maxLength);
        if (enc.truncated) truncated++;
        return JSON.stringify({ line: r.line, ids: enc.ids, label: r.label, truncated: enc.truncated });
      });
      const header = {
        format: ENCODED_FORMAT,
        version: ENCODED_VERSION,
        source: o.data,
        tokenizer_hash: await tokenizerHashOf(dir),
        max_length: o.maxLength,
        pad_id: tokenizer.padId,
        rows: rows.length,
        truncated,
        task,
        ...(taskError ? { task_error: taskError } : {}),
      };
      writeFileAtomic(o.out, [JSON.stringify(header), ...lines].join('\n') + '\n');
      out.result(
        { out: o.out, rows: rows.length, truncated, task },
        `wrote ${o.out}: ${rows.length} rows${truncated ? `, ${truncated} truncated to ${o.maxLength} tokens` : ''}`,
      );
    });
}
