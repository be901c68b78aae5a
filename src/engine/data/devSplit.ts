/**
 * The held-out dev share of a training file — one function for the CLI's `--dev-share` and the extension's
 * `spartan.training.devShare`, so "share 0.1, seed 42" gives the same dev rows in both.
 *
 * Stratified per label (the extension's behaviour, kept over the CLI's earlier plain shuffle): every label keeps
 * its proportion in the dev set and never loses all its training rows, which a plain shuffle does to rare labels.
 */
import { createRng } from '../util/random';

export interface SplittableRow {
  /** 1-based source line: both halves come back in file order. */
  line: number;
  label: unknown;
}

/**
 * Splits rows into train/dev with `share` of each label (regression: of all rows) held out, at least one dev row
 * when share > 0 and there are ≥ 2 rows, and never all rows of a label. Multi-label rows are grouped by their
 * label set. Seeded (mulberry32 via `createRng`).
 */
export function splitRows<T extends SplittableRow>(rows: T[], share: number, seed: number, regression: boolean): { train: T[]; dev: T[] } {
  if (!(share > 0) || rows.length < 2) return { train: rows.slice(), dev: [] };
  const rng = createRng(seed);
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const key = regression ? '' : Array.isArray(row.label) ? JSON.stringify([...row.label].sort()) : String(row.label);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push(row);
  }
  const dev: T[] = [];
  const train: T[] = [];
  for (const group of groups.values()) {
    const idx = group.map((_, i) => i);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    let n = Math.round(group.length * share);
    if (n >= group.length) n = group.length - 1;
    const take = new Set(idx.slice(0, n));
    group.forEach((row, i) => (take.has(i) ? dev : train).push(row));
  }
  if (dev.length === 0) {
    // Tiny data: move one row so there is something to evaluate on.
    dev.push(train.splice(Math.floor(rng.next() * train.length), 1)[0]);
  }
  const byLine = (a: T, b: T) => a.line - b.line;
  return { train: train.sort(byLine), dev: dev.sort(byLine) };
}
