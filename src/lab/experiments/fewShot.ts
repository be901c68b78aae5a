/**
 * The paper's few-shot protocol: a small training set drawn from the full one with the run's seed, so each
 * seed sees a different sample (the variance over seeds then includes the variance of the sample).
 *
 * - uniform: a seeded permutation of the rows, first n kept.
 * - stratified: each class gets n × (its share of the rows), rounded by largest remainder so the total is exactly
 *   n (proportional allocation keeps the class prior of the full set, as a uniform sample does on average, but
 *   without its sampling noise); every class present gets at least one row when n allows. Within a class the
 *   rows are again a seeded permutation. Regression has no classes: stratified sampling falls back to uniform.
 *
 * The kept rows stay in their file order, so the sample does not depend on how the trainer shuffles.
 */
import { Example, SpartanError, createRng, shuffleInPlace } from '../../engine';

export interface FewShotOptions {
  size: number;
  seed: number;
  stratified: boolean;
}

export function sampleFewShot<T extends Pick<Example, 'label'>>(rows: T[], opts: FewShotOptions): T[] {
  if (!Number.isInteger(opts.size) || opts.size < 1) throw new SpartanError(`few-shot size must be a positive integer, got ${opts.size}`);
  if (opts.size >= rows.length) return [...rows];
  // A seed distinct from the trainer's own use of `seed` (initialisation), so sample and init are not correlated.
  const rng = createRng((opts.seed * 7919 + 104729) >>> 0);
  const classification = rows.length > 0 && typeof rows[0].label === 'string';
  let picked: number[];
  if (!opts.stratified || !classification) {
    picked = shuffleInPlace(
      rows.map((_, i) => i),
      rng,
    ).slice(0, opts.size);
  } else {
    const byClass = new Map<string, number[]>();
    rows.forEach((r, i) => {
      const k = String(r.label);
      if (!byClass.has(k)) byClass.set(k, []);
      byClass.get(k)!.push(i);
    });
    // Sorted class names: the allocation must not depend on which class happens to come first in the file.
    const classes = [...byClass.keys()].sort();
    const quotas = allocate(
      classes.map((c) => byClass.get(c)!.length),
      opts.size,
    );
    picked = [];
    classes.forEach((c, k) => picked.push(...shuffleInPlace([...byClass.get(c)!], rng).slice(0, quotas[k])));
  }
  return picked.sort((a, b) => a - b).map((i) => rows[i]);
}

/**
 * Splits `n` over groups in proportion to their sizes (largest-remainder / Hamilton method), at least one per
 * group when n ≥ the number of groups, never more than a group holds.
 */
export function allocate(sizes: number[], n: number): number[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  const exact = sizes.map((s) => (s / total) * n);
  const quota = exact.map((e, i) => Math.min(sizes[i], Math.floor(e)));
  if (n >= sizes.length) for (let i = 0; i < sizes.length; i++) if (quota[i] === 0 && sizes[i] > 0) quota[i] = 1;
  let left = n - quota.reduce((a, b) => a + b, 0);
  // Hand out the rest by largest remainder (ties: larger group first), then take back from the largest quotas
  // if the at-least-one rule overshot.
  const order = sizes
    .map((_, i) => i)
    .sort((a, b) => exact[b] - Math.floor(exact[b]) - (exact[a] - Math.floor(exact[a])) || sizes[b] - sizes[a]);
  while (left > 0) {
    let gave = false;
    for (const i of order) {
      if (left === 0) break;
      if (quota[i] < sizes[i]) {
        quota[i]++;
        left--;
        gave = true;
      }
    }
    if (!gave) break;
  }
  while (left < 0) {
    const i = quota.indexOf(Math.max(...quota));
    quota[i]--;
    left++;
  }
  return quota;
}
