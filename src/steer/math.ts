/** Vector and statistics helpers of the white-box stage, on plain Float32Arrays. */
import { pearson } from '../evals/stats.js';

export { mean } from '../evals/stats.js';

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`dot: lengths ${a.length} and ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a));
}

/** Scalar projection of `x` on the direction of `v` (x . v / |v|). */
export function project(x: ArrayLike<number>, v: ArrayLike<number>): number {
  const n = norm(v);
  if (!(n > 0)) throw new RangeError('project: the direction is zero');
  return dot(x, v) / n;
}

/** Element-wise mean of equally long vectors (accumulated in f64). */
export function meanVector(rows: readonly ArrayLike<number>[]): Float32Array {
  if (rows.length === 0) throw new RangeError('meanVector: no rows');
  const acc = new Float64Array(rows[0].length);
  for (const r of rows) {
    if (r.length !== acc.length) throw new RangeError(`meanVector: lengths ${acc.length} and ${r.length}`);
    for (let i = 0; i < acc.length; i++) acc[i] += r[i];
  }
  return Float32Array.from(acc, (s) => s / rows.length);
}

/** mean(positive) - mean(negative): the persona vector and the assistant axis. */
export function meanDifference(positive: readonly ArrayLike<number>[], negative: readonly ArrayLike<number>[]): Float32Array {
  const p = meanVector(positive);
  const n = meanVector(negative);
  return p.map((x, i) => x - n[i]);
}

export function subtract(a: ArrayLike<number>, b: ArrayLike<number>): Float32Array {
  if (a.length !== b.length) throw new RangeError(`subtract: lengths ${a.length} and ${b.length}`);
  return Float32Array.from(a, (x, i) => x - b[i]);
}

/**
 * The p-th percentile by nearest rank: the k-th smallest value with k = ceil(p/100 * n), at least 1.
 * Always one of the observed values (an order statistic), never an interpolation.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile: no values');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile: ${p} outside (0, 100]`);
  const sorted = [...values].sort((a, b) => a - b);
  const k = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[k - 1];
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: ${p} outside (0, 1)`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

export interface Correlation {
  r: number;
  n: number;
  /** Fisher-z interval at `confidence`; NaN bounds when n <= 3 or r is undefined. */
  low: number;
  high: number;
  confidence: number;
}

/** Pearson r (evals' statistic) with its Fisher-z confidence interval: tanh(atanh r ± z / sqrt(n - 3)). */
export function pearsonInterval(x: readonly number[], y: readonly number[], confidence = 0.95): Correlation {
  if (x.length !== y.length) throw new RangeError(`pearson: ${x.length} and ${y.length} values`);
  const n = x.length;
  const r = pearson(x, y) ?? NaN;
  if (!(n > 3) || !Number.isFinite(r)) return { r, n, low: NaN, high: NaN, confidence };
  const z = Math.atanh(Math.min(Math.max(r, -0.9999999), 0.9999999));
  const half = normalQuantile(1 - (1 - confidence) / 2) / Math.sqrt(n - 3);
  return { r, n, low: Math.tanh(z - half), high: Math.tanh(z + half), confidence };
}
