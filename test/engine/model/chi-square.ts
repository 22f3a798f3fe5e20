/**
 * Pearson's chi-square goodness of fit for sampler tests. Categories expected fewer than 5 times are
 * pooled into one (the usual validity rule); the critical values are the p = 0.001 upper quantiles
 * of the chi-square distribution (standard tables), so a correct sampler fails about once in 1000 runs.
 */
const CRITICAL_P001 = [10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588, 31.264, 32.909, 34.528, 36.123, 37.697, 39.252, 40.79, 42.312, 43.82, 45.315];

export interface ChiSquare {
  statistic: number;
  df: number;
  critical: number;
}

/** counts[i] observed, probs[i] expected probability (sums to 1); categories with probability 0 must never occur. */
export function chiSquare(counts: readonly number[], probs: ArrayLike<number>): ChiSquare {
  const n = counts.reduce((s, c) => s + c, 0);
  const bins: { observed: number; expected: number }[] = [];
  const pooled = { observed: 0, expected: 0 };
  for (let i = 0; i < counts.length; i++) {
    if (probs[i] === 0) {
      if (counts[i] > 0) throw new Error(`category ${i} has probability 0 but was drawn ${counts[i]} times`);
      continue;
    }
    const expected = n * probs[i];
    if (expected < 5) {
      pooled.observed += counts[i];
      pooled.expected += expected;
    } else bins.push({ observed: counts[i], expected });
  }
  if (pooled.expected > 0) bins.push(pooled);
  const statistic = bins.reduce((s, b) => s + (b.observed - b.expected) ** 2 / b.expected, 0);
  const df = bins.length - 1;
  if (df < 1 || df > CRITICAL_P001.length) throw new Error(`chi-square with ${df} degrees of freedom is outside the table`);
  return { statistic, df, critical: CRITICAL_P001[df - 1] };
}

/**
 * The warpers written out plainly, as the reference for the sampler: softmax at temperature, keep the
 * k largest, then the smallest prefix whose mass reaches topP, then those at least minP times the
 * largest. Logits in any order; returns probabilities in the same order.
 */
export function warpedSoftmax(l: ArrayLike<number>, o: { temperature: number; topK?: number; topP?: number; minP?: number }): number[] {
  const order = Array.from(l, (_, i) => i).sort((a, b) => l[b] - l[a]);
  const max = l[order[0]];
  const e = Array.from(l, (x) => Math.exp((x - max) / o.temperature));
  const keep = e.map(() => true);
  if (o.topK) order.forEach((i, rank) => (keep[i] &&= rank < o.topK!));
  if (o.topP !== undefined) {
    const total = order.reduce((s, i) => s + (keep[i] ? e[i] : 0), 0);
    let mass = 0;
    for (const i of order) {
      if (mass / total >= o.topP) keep[i] = false;
      if (keep[i]) mass += e[i];
    }
  }
  if (o.minP !== undefined) e.forEach((x, i) => (keep[i] &&= x >= o.minP! * e[order[0]]));
  const total = e.reduce((s, x, i) => s + (keep[i] ? x : 0), 0);
  return e.map((x, i) => (keep[i] ? x / total : 0));
}
