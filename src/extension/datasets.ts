/**
 * Writing training/dev files for the CLI: keeping only the accepted rows (by their source line) and holding out
 * a seeded, label-stratified dev share. Node-only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface RowRef {
  line: number; // 1-based source line
  label: string | number | string[];
}

/** mulberry32: a small seeded PRNG so a split is reproducible for a given seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Splits rows into train/dev with `share` of each label (regression: of all rows) held out, at least one dev row
 * when share > 0 and there are ≥ 2 rows, and never all rows of a label.
 */
export function splitRows<T extends RowRef>(rows: T[], share: number, seed: number, regression: boolean): { train: T[]; dev: T[] } {
  if (!(share > 0) || rows.length < 2) return { train: rows.slice(), dev: [] };
  const r = rng(seed);
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const k = regression ? '' : String(row.label);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(row);
  }
  const dev: T[] = [];
  const train: T[] = [];
  for (const g of groups.values()) {
    const idx = g.map((_, i) => i);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    let n = Math.round(g.length * share);
    if (n >= g.length) n = g.length - 1;
    const take = new Set(idx.slice(0, n));
    g.forEach((row, i) => (take.has(i) ? dev : train).push(row));
  }
  if (dev.length === 0) {
    // tiny data: move one row so there is something to evaluate on
    dev.push(train.splice(Math.floor(r() * train.length), 1)[0]);
  }
  const byLine = (a: T, b: T) => a.line - b.line;
  return { train: train.sort(byLine), dev: dev.sort(byLine) };
}

/** The source lines of `rows` (1-based line numbers) as JSONL text. */
export function selectLines(text: string, lines: number[]): string {
  const src = text.split(/\r?\n/);
  return lines.map((l) => src[l - 1]).filter((l) => l !== undefined).join('\n') + '\n';
}

/** Writes `rows`' source lines to `dir/name`; returns the path. */
export function writeRows(text: string, rows: RowRef[], dir: string, name: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const p = path.join(dir, name);
  fs.writeFileSync(p, selectLines(text, rows.map((r) => r.line)));
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
