/**
 * Which traits move together: the shift of every measured trait from the base model, one row per
 * subject (persona prompted, trained seed, steered model), and a principal-component analysis of that
 * shift matrix with its stability. Read from the eval summary alone (trait expression and IPIP domains,
 * each as a paired difference from the base with its interval), so it can run on any finished run.
 *
 * - Shifts are put on one footing by their scale's range (expression 0-100, IPIP 1-5): a shift of 0.1
 *   is a tenth of the scale, whichever measure it comes from.
 * - Components: eigenvectors of the covariance of the (centred, by default) rows, by cyclic Jacobi.
 * - Stability, two ways: resampling cells (rows with replacement) and redrawing every shift from its
 *   own measurement error (normal, standard error from its interval). For each component: the
 *   variance it explains with a percentile interval, and the |Tucker congruence| of the resampled
 *   loadings with the full-sample ones (0.95 and above: the same component; under 0.85: not stable).
 * - Dimension: parallel analysis, components explaining more than the 95th percentile of what the
 *   largest component of their residual explains when every column is permuted independently (no
 *   structure between traits); see sequentialNull.
 */
import jStat from 'jstat';
import { createRng, hashSeed, mean, shuffle, type Rng } from './stats.js';
import type { EvalSummary, Metric } from './summary.js';

export interface ShiftColumn {
  /** "expression.<persona>.<trait>" or "ipip.<domain>". */
  name: string;
  /** The range of the measure's scale the shift is divided by (100 for expression, 4 for IPIP 1-5). */
  range: number;
}

/** cells x traits: each value the shift from the base as a share of the scale's range; `se` its standard error (NaN: unknown). */
export interface ShiftMatrix {
  rows: string[];
  columns: ShiftColumn[];
  values: number[][];
  se: number[][];
  /** Columns left out because some row lacks them (every row must have every column). */
  droppedColumns: string[];
  /** Shifts without an interval (too few samples), given their column's median standard error. */
  seImputed?: number;
}

export interface Spread {
  value: number;
  low: number;
  high: number;
}

export interface TraitComponent {
  /** 1-based. */
  index: number;
  /** Share of the total variance (0-1) with its percentile interval over cell resamples. */
  explained: Spread;
  /** 95th percentile of the share explained under independent column permutations (parallel analysis). */
  nullExplained: number;
  retained: boolean;
  /** Unit loadings, signed so the largest one is positive. */
  loadings: { trait: string; value: number }[];
  /** |congruence| with the full-sample loadings: median and percentile interval over resamples. */
  stability: { cells: Spread | null; measurement: Spread | null };
}

export interface TraitSpace {
  cells: number;
  traits: string[];
  centred: boolean;
  components: TraitComponent[];
  /** Components retained by parallel analysis (consecutive from the first). */
  dimensions: number;
  /** Each cell's coordinates on the first two components. */
  scores: { cell: string; pc1: number; pc2: number | null }[];
  droppedColumns: string[];
  seImputed: number;
  resamples: number;
}

export interface TraitSpaceOptions {
  resamples: number;
  confidence: number;
  seed: number;
  /** Centre the rows on their mean before the analysis (covariance PCA); false: around the base (the origin). */
  centre: boolean;
  /** Components reported (at most the matrix's rank). */
  components: number;
}

export const DEFAULT_TRAIT_SPACE: TraitSpaceOptions = { resamples: 1000, confidence: 0.95, seed: 0, centre: true, components: 3 };

/**
 * Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: eigenvalues in decreasing
 * order, `vectors[k]` the unit eigenvector of `values[k]`.
 */
export function symmetricEigen(matrix: readonly (readonly number[])[]): { values: number[]; vectors: number[][] } {
  const n = matrix.length;
  const a = matrix.map((r) => [...r]);
  const v: number[][] = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  const scale = Math.max(1e-300, Math.sqrt(a.flat().reduce((s, x) => s + x * x, 0)));
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] * a[p][q];
    if (Math.sqrt(off) <= 1e-13 * scale) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p][q]) <= 1e-16 * scale) continue;
        // The rotation that zeroes a[p][q] (the smaller of the two angles, for stability).
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p];
          const akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k];
          const aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = a.map((row, i) => [row[i], i] as const).sort((x, y) => y[0] - x[0]);
  return { values: order.map(([value]) => value), vectors: order.map(([, i]) => v.map((row) => row[i])) };
}

export interface Pca {
  /** Eigenvalues of the (co)variance, decreasing. */
  variances: number[];
  /** Share of the total each explains (NaN when the total is 0). */
  explained: number[];
  /** Unit loadings per component, signed so the largest is positive. */
  loadings: number[][];
  /** Rows' coordinates on each component. */
  scores: number[][];
}

/** Principal components of the rows of `x` (n x p): covariance (n - 1) of the centred rows, or second moments around 0. */
export function pca(x: readonly (readonly number[])[], centre: boolean): Pca {
  const n = x.length;
  const p = x[0]?.length ?? 0;
  const means = Array.from({ length: p }, (_, j) => (centre ? mean(x.map((r) => r[j])) : 0));
  const z = x.map((r) => r.map((v, j) => v - means[j]));
  const divisor = centre ? Math.max(1, n - 1) : Math.max(1, n);
  const cov = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  for (const r of z) for (let i = 0; i < p; i++) for (let j = i; j < p; j++) cov[i][j] += r[i] * r[j];
  for (let i = 0; i < p; i++) for (let j = i; j < p; j++) cov[j][i] = cov[i][j] /= divisor;
  const { values, vectors } = symmetricEigen(cov);
  const variances = values.map((v) => Math.max(0, v));
  const total = variances.reduce((s, v) => s + v, 0);
  const loadings = vectors.map((vec) => {
    const big = vec.reduce((best, v, j) => (Math.abs(v) > Math.abs(vec[best]) ? j : best), 0);
    return vec[big] < 0 ? vec.map((v) => -v) : vec;
  });
  return {
    variances,
    explained: variances.map((v) => (total > 0 ? v / total : NaN)),
    loadings,
    scores: z.map((r) => loadings.map((l) => r.reduce((s, v, j) => s + v * l[j], 0))),
  };
}

/** Tucker's congruence coefficient of two loading vectors (the cosine of the uncentred vectors). */
export function congruence(a: readonly number[], b: readonly number[]): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa === 0 || bb === 0 ? NaN : ab / Math.sqrt(aa * bb);
}

function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function spread(values: number[], confidence: number, centre?: number): Spread | null {
  const kept = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (kept.length === 0) return null;
  const alpha = (1 - confidence) / 2;
  return { value: centre ?? quantile(kept, 0.5), low: quantile(kept, alpha), high: quantile(kept, 1 - alpha) };
}

/** A standard normal draw (Box-Muller). */
function normal(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

/**
 * Parallel analysis, sequentially: component k is compared with the largest component of its residual
 * (the centred rows less components 1..k-1) with every column permuted independently and projected
 * back off components 1..k-1 (so the null has as many dimensions as the residual), as a share of the
 * residual's variance times the residual's share of the total; the 95th percentile of that is the share it must beat. (Plain Horn's analysis on the
 * whole matrix misses weaker components next to a dominant one.)
 */
function orthogonalTo(row: number[], directions: readonly (readonly number[])[]): number[] {
  let out = row;
  for (const d of directions) {
    const dot = out.reduce((s, v, j) => s + v * d[j], 0);
    out = out.map((v, j) => v - dot * d[j]);
  }
  return out;
}

/** Permutations per component of the parallel analysis (a 95th percentile needs a few hundred; each is one eigen-decomposition). */
const PERMUTATIONS = 300;

function sequentialNull(values: readonly (readonly number[])[], full: Pca, k: number, o: TraitSpaceOptions): number[] {
  const p = values[0].length;
  const means = Array.from({ length: p }, (_, j) => (o.centre ? mean(values.map((r) => r[j])) : 0));
  const total = full.variances.reduce((s, v) => s + v, 0);
  const rng = createRng(hashSeed(o.seed, 'trait-space', 'permutation'));
  const out: number[] = [];
  for (let c = 0; c < k; c++) {
    const residual = values.map((r, i) => r.map((v, j) => v - means[j] - full.scores[i].slice(0, c).reduce((s, score, l) => s + score * full.loadings[l][j], 0)));
    const residualShare = full.variances.slice(c).reduce((s, v) => s + v, 0) / total;
    const tops: number[] = [];
    for (let b = 0; b < Math.min(o.resamples, PERMUTATIONS); b++) {
      const columns = Array.from({ length: p }, (_, j) => shuffle(residual.map((r) => r[j]), rng));
      const permuted = residual.map((_, i) => orthogonalTo(columns.map((col) => col[i]), full.loadings.slice(0, c)));
      const shuffledPca = pca(permuted, o.centre);
      // As a share of the residual's own variance (the projection removes some of the permuted variance), times the residual's share.
      tops.push((shuffledPca.variances[0] / shuffledPca.variances.reduce((s, v) => s + v, 0)) * residualShare);
    }
    out.push(spread(tops, 0.9)?.high ?? NaN);
  }
  return out;
}

/** The principal components of a shift matrix with their stability and parallel-analysis dimension; null under 3 cells or 2 traits. */
export function traitSpace(m: ShiftMatrix, options: Partial<TraitSpaceOptions> = {}): TraitSpace | null {
  const o = { ...DEFAULT_TRAIT_SPACE, ...options };
  const n = m.rows.length;
  const p = m.columns.length;
  if (n < 3 || p < 2) return null;
  const full = pca(m.values, o.centre);
  const k = Math.min(o.components, p, o.centre ? n - 1 : n);
  const resampled = (draw: (rng: Rng) => number[][], salt: string) => {
    const rng = createRng(hashSeed(o.seed, 'trait-space', salt));
    const explained: number[][] = Array.from({ length: k }, () => []);
    const congruences: number[][] = Array.from({ length: k }, () => []);
    for (let b = 0; b < o.resamples; b++) {
      const r = pca(draw(rng), o.centre);
      for (let c = 0; c < k; c++) {
        explained[c].push(r.explained[c]);
        if (r.variances[c] > 0) congruences[c].push(Math.abs(congruence(r.loadings[c], full.loadings[c])));
      }
    }
    return { explained, congruences };
  };
  const byCells = resampled((rng) => Array.from({ length: n }, () => m.values[rng.int(n)]), 'cells');
  const hasSe = m.se.every((row) => row.every(Number.isFinite));
  const byMeasurement = hasSe ? resampled((rng) => m.values.map((row, i) => row.map((v, j) => v + m.se[i][j] * normal(rng))), 'measurement') : undefined;
  const nulls = sequentialNull(m.values, full, k, o);
  const components: TraitComponent[] = [];
  let retaining = true;
  for (let c = 0; c < k; c++) {
    const nullExplained = nulls[c];
    const retained: boolean = retaining && full.explained[c] > nullExplained;
    retaining = retained;
    components.push({
      index: c + 1,
      explained: { ...(spread(byCells.explained[c], o.confidence, full.explained[c]) ?? { low: NaN, high: NaN }), value: full.explained[c] },
      nullExplained,
      retained,
      loadings: m.columns.map((col, j) => ({ trait: col.name, value: full.loadings[c][j] })),
      stability: { cells: spread(byCells.congruences[c], o.confidence), measurement: byMeasurement ? spread(byMeasurement.congruences[c], o.confidence) : null },
    });
  }
  return {
    cells: n,
    traits: m.columns.map((c) => c.name),
    centred: o.centre,
    components,
    dimensions: components.filter((c) => c.retained).length,
    scores: m.rows.map((cell, i) => ({ cell, pc1: full.scores[i][0], pc2: p > 1 ? full.scores[i][1] : null })),
    droppedColumns: m.droppedColumns,
    seImputed: m.seImputed ?? 0,
    resamples: o.resamples,
  };
}

/**
 * |cosine| between the first component mapped into activation space and the assistant axis: the
 * component's loadings weight each trait's unit persona vector (same layer as the axis). Comparable
 * only when every trait column has a vector; `randomBaseline` is the mean |cosine| of random unit
 * loadings through the same vectors (what alignment by chance looks like).
 */
export function axisAlignment(loadings: readonly number[], traitVectors: readonly (readonly number[])[], axis: readonly number[], seed = 0): { cosine: number; randomBaseline: number } {
  const unit = traitVectors.map((v) => {
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return v.map((x) => x / norm);
  });
  const through = (w: readonly number[]) => axis.map((_, d) => unit.reduce((s, v, j) => s + w[j] * v[d], 0));
  const rng = createRng(hashSeed(seed, 'axis-alignment'));
  const random = Array.from({ length: 200 }, () => Math.abs(congruence(through(loadings.map(() => normal(rng))), axis)));
  return { cosine: Math.abs(congruence(through(loadings), axis)), randomBaseline: mean(random) };
}

const EXPRESSION_RANGE = 100;
const IPIP_RANGE = 4;
const IPIP_DOMAINS = ['openness', 'conscientiousness', 'extraversion', 'agreeableness', 'neuroticism'];

/** The shift from the base of one metric: the paired difference and its standard error (from the interval at the summary's level). */
function shiftOf(m: Metric | undefined, base: string, z: number): { value: number; se: number } | undefined {
  const c = m?.comparisons.find((x) => x.against === base);
  if (!c || c.difference === null) return undefined;
  return { value: c.difference, se: c.ci ? (c.ci.high - c.ci.low) / (2 * z) : NaN };
}

/**
 * The shift matrix of a summary: one row per subject other than the base, one column per trait
 * expression (`expression.<persona>.<trait>`) and IPIP domain measured on every row. Columns some
 * row lacks are dropped (named in the result): with several personas, measure every subject on every
 * persona's traits (eval.traitExpression.traits: all) to keep them.
 */
export function shiftMatrix(summary: EvalSummary): ShiftMatrix | undefined {
  const base = summary.baseline;
  if (!base) return undefined;
  const z = jStat.normal.inv(1 - (1 - summary.confidence) / 2, 0, 1); // the interval read as normal: half-width = z * se
  const found = new Map<string, Map<string, { value: number; se: number; range: number }>>();
  const put = (subject: string, column: string, range: number, s: { value: number; se: number } | undefined) => {
    if (!s) return;
    if (!found.has(subject)) found.set(subject, new Map());
    found.get(subject)!.set(column, { value: s.value / range, se: s.se / range, range });
  };
  const ok = (id: string) => summary.evals.find((r) => r.eval === id && r.status === 'ok');
  for (const [subject, metrics] of Object.entries(ok('traitExpression')?.subjects ?? {})) {
    if (subject === base) continue;
    for (const [metric, m] of Object.entries(metrics)) if (/^expression\..+\..+$/.test(metric)) put(subject, metric, EXPRESSION_RANGE, shiftOf(m, base, z));
  }
  for (const [subject, metrics] of Object.entries(ok('psychometrics')?.subjects ?? {})) {
    if (subject === base) continue;
    for (const d of IPIP_DOMAINS) put(subject, `ipip.${d}`, IPIP_RANGE, shiftOf(metrics[d], base, z));
  }
  const rows = summary.subjects.map((s) => s.name).filter((s) => found.has(s));
  if (rows.length === 0) return undefined;
  const all = [...new Set(rows.flatMap((r) => [...found.get(r)!.keys()]))];
  const kept = all.filter((c) => rows.every((r) => found.get(r)!.has(c)));
  const cell = (r: string, c: string) => found.get(r)!.get(c)!;
  const se = rows.map((r) => kept.map((c) => cell(r, c).se));
  let seImputed = 0;
  kept.forEach((_, j) => {
    const finite = se.map((row) => row[j]).filter(Number.isFinite).sort((a, b) => a - b);
    if (finite.length === 0) return;
    const median = finite[Math.floor((finite.length - 1) / 2)];
    for (const row of se) {
      if (Number.isFinite(row[j])) continue;
      row[j] = median;
      seImputed++;
    }
  });
  return {
    rows,
    columns: kept.map((c) => ({ name: c, range: cell(rows[0], c).range })),
    values: rows.map((r) => kept.map((c) => cell(r, c).value)),
    se,
    droppedColumns: all.filter((c) => !kept.includes(c)),
    seImputed,
  };
}
