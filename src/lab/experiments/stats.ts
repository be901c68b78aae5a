/**
 * Aggregates over seeds, as the paper's tables report them: the mean and the *sample* standard deviation
 * (n − 1 in the denominator, numpy's `std(ddof=1)`), because three seeds are a sample of the seed distribution.
 */

export function mean(values: number[]): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Sample standard deviation; 0 for a single value (nothing to spread), NaN for none. */
export function sampleStd(values: number[]): number {
  if (values.length === 0) return NaN;
  if (values.length === 1) return 0;
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return Math.sqrt(ss / (values.length - 1));
}

export interface Summary {
  mean: number;
  std: number;
  n: number;
}

export function summarize(values: number[]): Summary {
  return { mean: mean(values), std: sampleStd(values), n: values.length };
}
