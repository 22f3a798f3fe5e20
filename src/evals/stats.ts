/**
 * Statistics every eval shares: seeded bootstrap intervals, paired and unpaired differences, rank
 * correlation, Cohen's kappa, F1. Deterministic: the same seed gives the same interval.
 */
import jStat from 'jstat';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { seedState32 } from '../core/seed.js';
import type { Comparison, Interval, Metric } from './summary.js';

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

export function createRng(seed: number): Rng {
  // splitmix64 first: small integer seeds written straight into the state start far from uniform
  const gen = xoroshiro128plusFromState(seedState32(seed | 0));
  return { next: () => uniformFloat64(gen), int: (n) => uniformInt(gen, 0, n - 1) };
}

/** Stable 32-bit hash of a string (FNV-1a), to derive per-item seeds from names. */
export function hashSeed(...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join('\u0000')) {
    h ^= ch.codePointAt(0) ?? 0;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function shuffle<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface BootstrapOptions {
  resamples: number;
  confidence: number;
  seed: number;
}

/** Percentile bootstrap interval of `statistic` over resamples (with replacement) of `items`. */
export function bootstrapInterval<T>(items: readonly T[], statistic: (sample: T[]) => number, o: BootstrapOptions): Interval | null {
  if (items.length === 0) return null;
  const rng = createRng(o.seed);
  const stats: number[] = [];
  const sample: T[] = new Array(items.length);
  for (let b = 0; b < o.resamples; b++) {
    for (let i = 0; i < items.length; i++) sample[i] = items[rng.int(items.length)];
    const s = statistic(sample);
    if (Number.isFinite(s)) stats.push(s);
  }
  if (stats.length === 0) return null;
  stats.sort((a, b) => a - b);
  const alpha = (1 - o.confidence) / 2;
  return { low: quantile(stats, alpha), high: quantile(stats, 1 - alpha) };
}

/** Values grouped by cluster (order of first appearance); without clusters every value is its own. */
function groupByCluster(values: readonly number[], clusters?: readonly string[]): number[][] {
  if (!clusters) return values.map((v) => [v]);
  const groups = new Map<string, number[]>();
  values.forEach((v, i) => {
    const g = groups.get(clusters[i]);
    if (g) g.push(v);
    else groups.set(clusters[i], [v]);
  });
  return [...groups.values()];
}

/** Figures resting on fewer independent clusters than this are flagged: their intervals are rough. */
export const FEW_CLUSTERS = 10;

/** Wilson score interval of a proportion `p` observed on `n` (possibly effective, non-integer) trials; `z` the normal (or t) quantile. */
export function wilson(p: number, n: number, z: number): Interval {
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/** Clopper-Pearson (exact) interval of k successes in n trials. */
export function clopperPearson(k: number, n: number, confidence: number): Interval {
  const alpha = 1 - confidence;
  return { low: k === 0 ? 0 : jStat.beta.inv(alpha / 2, k, n - k + 1), high: k === n ? 1 : jStat.beta.inv(1 - alpha / 2, k + 1, n - k) };
}

/** Cluster-robust variance of a mean (CR1: sums of residuals per cluster, G/(G-1) small-sample factor). */
function clusterVariance(groups: readonly (readonly number[])[], m: number, n: number): number {
  const g = groups.length;
  let sum = 0;
  for (const group of groups) {
    let r = 0;
    for (const v of group) r += v - m;
    sum += r * r;
  }
  return ((g / (g - 1)) * sum) / (n * n);
}

/**
 * The interval of a mean over clustered samples. Proportions (every score 0 or 1): Wilson on the
 * effective sample size (n over the design effect of the clusters), so a rate of 0 or 1 still gets an
 * interval of honest width. Other means: cluster-robust standard error with t quantiles on
 * clusters - 1 degrees of freedom (a percentile bootstrap over 3-10 clusters covers far below its
 * level). No interval on fewer than 3 samples or 2 clusters.
 */
export function meanInterval(groups: readonly (readonly number[])[], confidence: number): Interval | null {
  const values = groups.flat();
  const n = values.length;
  const g = groups.length;
  if (n < 3 || g < 2) return null;
  const m = mean(values);
  const variance = clusterVariance(groups, m, n);
  const clustered = g < n;
  const q = 1 - (1 - confidence) / 2;
  if (values.every((v) => v === 0 || v === 1)) {
    const iid = (m * (1 - m)) / n;
    const deff = iid > 0 ? Math.max(1, variance / iid) : 1;
    return wilson(m, n / deff, clustered ? jStat.studentt.inv(q, g - 1) : jStat.normal.inv(q, 0, 1));
  }
  const half = jStat.studentt.inv(q, g - 1) * Math.sqrt(variance);
  return { low: m - half, high: m + half };
}

/**
 * A metric (mean, n, interval) of per-sample scores; null scores are missing (counted, not averaged).
 * With `clusters` (one id per score), samples that share a prompt, an item or a conversation count
 * as one independent unit: treating them one by one would narrow the interval.
 */
export function metricOf(scores: readonly (number | null)[], o: BootstrapOptions, clusters?: readonly string[]): Metric {
  const kept = scores.map((s, i) => ({ value: s, cluster: clusters?.[i] ?? String(i) })).filter((p): p is { value: number; cluster: string } => p.value !== null && Number.isFinite(p.value));
  const values = kept.map((p) => p.value);
  const groups = groupByCluster(values, kept.map((p) => p.cluster));
  return {
    value: values.length ? mean(values) : null,
    n: values.length,
    ci: meanInterval(groups, o.confidence),
    comparisons: [],
    missing: scores.length - values.length,
    clusters: groups.length,
  };
}

/**
 * Paired difference of means between a subject's and another subject's scores: keys that appear on
 * both sides with a score pair up (same prompt, same sample index), and the interval is of the mean
 * paired difference (cluster-robust, clusters from `clusterOf`). Sides that share no scored
 * key are not compared (difference null, `unpaired` says why): scores of different prompts say
 * nothing about the subjects.
 */
export function compare(against: string, mine: ReadonlyMap<string, number | null>, theirs: ReadonlyMap<string, number | null>, o: BootstrapOptions, clusterOf: (key: string) => string = (k) => k): Comparison {
  const pairs: number[] = [];
  const clusters: string[] = [];
  for (const [key, a] of mine) {
    const b = theirs.get(key);
    if (a !== null && b !== null && b !== undefined) {
      pairs.push(a - b);
      clusters.push(clusterOf(key));
    }
  }
  if (pairs.length === 0) return { against, difference: null, ci: null, n: 0, paired: false, unpaired: `no sample scored on both sides (${mine.size} vs ${theirs.size} samples)` };
  const groups = groupByCluster(pairs, clusters);
  return { against, difference: mean(pairs), ci: differenceInterval(groups, o.confidence), n: pairs.length, paired: true, clusters: groups.length };
}

/** Interval of a mean paired difference: cluster-robust t (differences of 0/1 scores are not proportions). */
function differenceInterval(groups: readonly (readonly number[])[], confidence: number): Interval | null {
  const values = groups.flat();
  if (values.length < 3 || groups.length < 2) return null;
  const m = mean(values);
  const half = jStat.studentt.inv(1 - (1 - confidence) / 2, groups.length - 1) * Math.sqrt(clusterVariance(groups, m, values.length));
  return { low: m - half, high: m + half };
}

/** Average ranks (ties share the mean rank), 1-based. */
export function ranks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    for (let k = i; k <= j; k++) out[order[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

export function pearson(xs: readonly number[], ys: readonly number[]): number | null {
  if (xs.length !== ys.length || xs.length < 2) return null;
  const mx = mean(xs);
  const my = mean(ys);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? null : sxy / Math.sqrt(sxx * syy);
}

/** Spearman's rho: Pearson correlation of average ranks (handles ties). */
export function spearman(xs: readonly number[], ys: readonly number[]): number | null {
  return pearson(ranks(xs), ranks(ys));
}

/** Cohen's kappa of two raters' categorical labels on the same items. */
export function cohenKappa(a: readonly string[], b: readonly string[]): number | null {
  if (a.length !== b.length || a.length === 0) return null;
  const n = a.length;
  const labels = [...new Set([...a, ...b])];
  const observed = a.filter((x, i) => x === b[i]).length / n;
  let expected = 0;
  for (const l of labels) expected += (a.filter((x) => x === l).length / n) * (b.filter((x) => x === l).length / n);
  return expected === 1 ? (observed === 1 ? 1 : null) : (observed - expected) / (1 - expected);
}

/** counts[true][predicted] over `labels`. */
export function confusionCounts(labels: readonly string[], truth: readonly string[], predicted: readonly string[]): number[][] {
  const index = new Map(labels.map((l, i) => [l, i]));
  const counts = labels.map(() => labels.map(() => 0));
  truth.forEach((t, i) => {
    const r = index.get(t);
    const c = index.get(predicted[i]);
    if (r !== undefined && c !== undefined) counts[r][c] += 1;
  });
  return counts;
}

/** Macro-F1 over the classes that occur in the truth (a class never true nor predicted does not count). */
export function macroF1(truth: readonly string[], predicted: readonly string[]): number {
  const classes = [...new Set(truth)];
  if (classes.length === 0) return NaN;
  let sum = 0;
  for (const c of classes) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    truth.forEach((t, i) => {
      const p = predicted[i];
      if (t === c && p === c) tp++;
      else if (p === c) fp++;
      else if (t === c) fn++;
    });
    sum += tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  }
  return sum / classes.length;
}
