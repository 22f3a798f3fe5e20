/**
 * Seeds pooled, formats and methods contrasted. A trained cell (persona, method, format) is trained
 * once per seed; each seed is one replicate of the whole pipeline, so a cell's value is the mean of
 * its seeds' means, its spread the between-seed SD, and its interval comes from a two-level bootstrap
 * (resample seeds, then prompt clusters within each drawn seed). With k seeds the bootstrap's
 * standard error is widened by sqrt(k / (k - 1)) and used with t quantiles on k - 1 degrees of freedom:
 * a percentile interval over three seeds has only ten distinct resamples and covers far too rarely.
 * Contrasts (format - format, method - method, cell - baseline) are of paired differences on the same
 * prompt keys, seed by seed, pooled the same way.
 */
import jStat from 'jstat';
import type { CellIdentity } from '../core/cell.js';
import type { MetricTable } from './metrics.js';
import { cellOf } from './subjects.js';
import { createRng, hashSeed, mean } from './stats.js';
import type { Contrast, PooledCell, PooledEstimate, PooledSteering } from './summary.js';
import { baselinesOf, type EvalContext, type Subject } from './types.js';

/** Replicate (seed) -> sample key -> score (null = missing). */
export type Replicates = Map<number, ReadonlyMap<string, number | null>>;

const sd = (xs: readonly number[]): number | null => {
  if (xs.length < 2) return null;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
};

/** Scored values of one replicate grouped by cluster. */
function clustered(values: ReadonlyMap<string, number | null>, clusterOf: (key: string) => string): number[][] {
  const groups = new Map<string, number[]>();
  for (const [key, v] of values) {
    if (v === null || !Number.isFinite(v)) continue;
    const c = clusterOf(key);
    groups.set(c, [...(groups.get(c) ?? []), v]);
  }
  return [...groups.values()];
}

export interface PoolOptions {
  resamples: number;
  confidence: number;
  seed: number;
}

/**
 * The pooled estimate of replicates: mean of replicate means, between-replicate SD, and the
 * two-level bootstrap interval (one replicate: the cluster bootstrap within it, percentile).
 */
export function poolReplicates(replicates: Replicates, clusterOf: (key: string) => string, o: PoolOptions): PooledEstimate {
  const seeds = [...replicates.keys()].sort((a, b) => a - b);
  const groups = seeds.map((s) => clustered(replicates.get(s)!, clusterOf)).map((g, i) => ({ seed: seeds[i], groups: g, values: g.flat() })).filter((r) => r.values.length > 0);
  const perSeed = groups.map((r) => ({ seed: r.seed, value: mean(r.values), n: r.values.length }));
  const k = perSeed.length;
  const n = perSeed.reduce((s, r) => s + r.n, 0);
  if (k === 0) return { value: null, betweenSeedSd: null, ci: null, seeds: 0, n: 0, perSeed: [] };
  const value = mean(perSeed.map((r) => r.value));
  const rng = createRng(o.seed);
  const stats: number[] = [];
  for (let b = 0; b < o.resamples; b++) {
    let total = 0;
    for (let i = 0; i < k; i++) {
      const { groups: g } = groups[rng.int(k)];
      let sum = 0;
      let count = 0;
      for (let j = 0; j < g.length; j++) {
        const cluster = g[rng.int(g.length)];
        for (const v of cluster) sum += v;
        count += cluster.length;
      }
      total += sum / count;
    }
    stats.push(total / k);
  }
  let ci: PooledEstimate['ci'] = null;
  if (k >= 2) {
    const se = sd(stats)! * Math.sqrt(k / (k - 1));
    const half = jStat.studentt.inv(1 - (1 - o.confidence) / 2, k - 1) * se;
    ci = { low: value - half, high: value + half };
  } else if (n >= 3) {
    stats.sort((a, b) => a - b);
    const at = (q: number) => stats[Math.min(stats.length - 1, Math.max(0, Math.round(q * (stats.length - 1))))];
    ci = { low: at((1 - o.confidence) / 2), high: at(1 - (1 - o.confidence) / 2) };
  }
  // A rate (every score 0 or 1), or a paired difference of rates, cannot leave [0, 1] or [-1, 1]: nor does its interval.
  const all = groups.flatMap((r) => r.values);
  const bounds = all.every((v) => v === 0 || v === 1) ? [0, 1] : all.every((v) => v === 0 || v === 1 || v === -1) ? [-1, 1] : null;
  if (ci && bounds) ci = { low: Math.max(bounds[0], ci.low), high: Math.min(bounds[1], ci.high) };
  return { value, betweenSeedSd: sd(perSeed.map((r) => r.value)), ci, seeds: k, n, perSeed };
}

/**
 * Paired differences a - b on shared keys, replicate by replicate. Replicates pair by seed when both
 * sides have the same seeds, else in seed order (seeds are exchangeable replicates); a side with one
 * replicate (a baseline) pairs with every replicate of the other.
 */
export function pairedReplicates(a: Replicates, b: Replicates): Replicates {
  const as = [...a.keys()].sort((x, y) => x - y);
  const bs = [...b.keys()].sort((x, y) => x - y);
  const sameSeeds = as.length === bs.length && as.every((s, i) => s === bs[i]);
  const out: Replicates = new Map();
  as.forEach((seed, i) => {
    const other = bs.length === 1 ? b.get(bs[0]) : sameSeeds ? b.get(seed) : b.get(bs[i]);
    if (!other) return;
    const diffs = new Map<string, number>();
    for (const [key, x] of a.get(seed)!) {
      const y = other.get(key);
      if (x !== null && y !== null && y !== undefined) diffs.set(key, x - y);
    }
    if (diffs.size > 0) out.set(seed, diffs);
  });
  return out;
}

type CellKey = Pick<CellIdentity, 'persona' | 'method' | 'format'>;
const cellId = (c: CellKey) => `${c.persona}\u0000${c.method}\u0000${c.format ?? ''}`;

/** Trained subjects grouped by cell (persona, method, format), each cell's seeds in order. */
export function trainedCells(subjects: readonly Subject[]): { cell: CellKey; seeds: { seed: number; subject: Subject }[] }[] {
  const cells = new Map<string, { cell: CellKey; seeds: { seed: number; subject: Subject }[] }>();
  for (const subject of subjects) {
    if (subject.kind !== undefined && subject.kind !== 'trained') continue;
    const c = cellOf(subject);
    if (!c) continue;
    const id = cellId(c);
    if (!cells.has(id)) cells.set(id, { cell: { persona: c.persona, method: c.method, format: c.format }, seeds: [] });
    cells.get(id)!.seeds.push({ seed: c.seed, subject });
  }
  for (const c of cells.values()) c.seeds.sort((x, y) => x.seed - y.seed);
  return [...cells.values()];
}

/** A steered or capped condition: its kind, persona and trait, and the name its subjects share less the seed. */
type SteeringKey = Pick<PooledSteering, 'kind' | 'persona' | 'trait' | 'traitIndex' | 'condition'>;

/**
 * Steered and capped subjects grouped by condition (kind, persona, trait), each condition's seeds in
 * order: the steer stage makes one of each per seed, pooled as a trained cell's seeds are.
 */
export function steeringConditions(subjects: readonly Subject[]): { condition: SteeringKey; seeds: { seed: number; subject: Subject }[] }[] {
  const groups = new Map<string, { condition: SteeringKey; seeds: { seed: number; subject: Subject }[] }>();
  for (const subject of subjects) {
    const s = subject.steering;
    if ((subject.kind !== 'steered' && subject.kind !== 'capped') || !s || s.seed === undefined) continue;
    const id = `${subject.kind}\u0000${s.persona ?? ''}\u0000${s.traitIndex ?? ''}`;
    const condition = subject.name.replace(new RegExp(`\\.seed-${s.seed}$`), '');
    if (!groups.has(id)) groups.set(id, { condition: { kind: subject.kind, persona: s.persona, trait: s.trait, traitIndex: s.traitIndex, condition }, seeds: [] });
    groups.get(id)!.seeds.push({ seed: s.seed, subject });
  }
  for (const g of groups.values()) g.seeds.sort((x, y) => x.seed - y.seed);
  return [...groups.values()];
}

/**
 * Every metric of every trained cell pooled over seeds, with pooled paired differences from the
 * base and the persona's own prompted subject; and the paired contrasts between the formats of one
 * method and between the methods of one persona.
 */
export function poolCells(ctx: EvalContext, evalId: string, table: MetricTable): { pooled: PooledCell[]; contrasts: Contrast[]; pooledSteering?: PooledSteering[] } {
  const cells = trainedCells(ctx.subjects);
  const steering = steeringConditions(ctx.subjects);
  const pooledSteering: PooledSteering[] = [];
  const pooled: PooledCell[] = [];
  const contrasts: Contrast[] = [];
  const opts = (...parts: string[]): PoolOptions => ({ resamples: ctx.options.bootstrap, confidence: ctx.options.confidence, seed: hashSeed(ctx.seed, evalId, ...parts) });
  const replicatesOf = (metric: string, seeds: { seed: number; subject: Subject }[]): Replicates => new Map(seeds.filter((s) => table.values.get(metric)?.has(s.subject.name)).map((s) => [s.seed, table.get(metric, s.subject.name)]));
  const label = (c: CellKey) => (c.format ? `${c.method}/${c.format}` : c.method);
  for (const metric of table.values.keys()) {
    for (const { cell, seeds } of cells) {
      const mine = replicatesOf(metric, seeds);
      if (mine.size === 0) continue;
      const estimate = poolReplicates(mine, table.clusterOf, opts(metric, label(cell), cell.persona));
      const comparisons = baselinesOf(ctx, seeds[0].subject)
        .filter((b) => table.values.get(metric)?.has(b.name))
        .map((b) => ({ against: b.name, ...poolReplicates(pairedReplicates(mine, new Map([[0, table.get(metric, b.name)]])), table.clusterOf, opts(metric, label(cell), cell.persona, b.name)) }));
      pooled.push({ ...cell, metric, subjects: seeds.map((s) => s.subject.name), ...estimate, comparisons });
    }
    for (const { condition, seeds } of steering) {
      const mine = replicatesOf(metric, seeds);
      if (mine.size === 0) continue;
      const parts = [metric, condition.condition];
      const comparisons = baselinesOf(ctx, seeds[0].subject)
        .filter((b) => table.values.get(metric)?.has(b.name))
        .map((b) => ({ against: b.name, ...poolReplicates(pairedReplicates(mine, new Map([[0, table.get(metric, b.name)]])), table.clusterOf, opts(...parts, b.name)) }));
      pooledSteering.push({ ...condition, metric, subjects: seeds.map((s) => s.subject.name), ...poolReplicates(mine, table.clusterOf, opts(...parts)), comparisons });
    }
    for (const [i, a] of cells.entries()) {
      for (const b of cells.slice(i + 1)) {
        if (a.cell.persona !== b.cell.persona) continue;
        const kind = a.cell.method === b.cell.method ? (a.cell.format !== b.cell.format ? 'format' : undefined) : 'method';
        if (!kind) continue;
        const ra = replicatesOf(metric, a.seeds);
        const rb = replicatesOf(metric, b.seeds);
        if (ra.size === 0 || rb.size === 0) continue;
        const diff = poolReplicates(pairedReplicates(ra, rb), table.clusterOf, opts(metric, label(a.cell), label(b.cell), a.cell.persona));
        contrasts.push({ persona: a.cell.persona, metric, kind, a: { method: a.cell.method, format: a.cell.format }, b: { method: b.cell.method, format: b.cell.format }, ...diff, ...(diff.seeds === 0 ? { unpaired: 'no sample scored on both sides' } : {}) });
      }
    }
  }
  return { pooled, contrasts, ...(pooledSteering.length ? { pooledSteering } : {}) };
}
