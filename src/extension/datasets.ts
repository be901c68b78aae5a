/**
 * Writing training/dev files for the CLI: keeping only the accepted rows (by their source line) and holding out
 * the seeded, label-stratified dev share of the engine (the CLI's `--dev-share` is the same function). Node-only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export { splitRows } from '../engine/light';

export interface RowRef {
  line: number; // 1-based source line
  label: string | number | string[];
}

/** The source lines of `rows` (1-based line numbers) as JSONL text. */
export function selectLines(text: string, lines: number[]): string {
  const src = text.split(/\r?\n/);
  return (
    lines
      .map((l) => src[l - 1])
      .filter((l) => l !== undefined)
      .join('\n') + '\n'
  );
}

/** Writes `rows`' source lines to `dir/name`; returns the path. */
export function writeRows(text: string, rows: RowRef[], dir: string, name: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const p = path.join(dir, name);
  fs.writeFileSync(
    p,
    selectLines(
      text,
      rows.map((r) => r.line),
    ),
  );
  return p;
}

/** `data/x.jsonl` → `data/x.dev.jsonl` (also `x.train.jsonl` → `x.dev.jsonl`) when it exists. */
export function siblingDevFile(file: string): string | undefined {
  const dir = path.dirname(file);
  const base = path.basename(file).replace(/\.jsonl$/i, '');
  const cands = [path.join(dir, base + '.dev.jsonl')];
  const m = /^(.*)[._-](train|training)$/i.exec(base);
  if (m) cands.push(path.join(dir, m[1] + '.dev.jsonl'), path.join(dir, m[1] + '.validation.jsonl'));
  for (const c of cands) if (c !== file && fs.existsSync(c)) return c;
  return undefined;
}
