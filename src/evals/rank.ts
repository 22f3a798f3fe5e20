/**
 * Rankings from pairwise matches (revealed preferences, docs/protocols.md §4): sequential Elo as the open recipe
 * ran it, and Bradley-Terry by maximum likelihood (order-independent) with bootstrap intervals.
 */
import { bootstrapInterval, type BootstrapOptions } from './stats.js';
import type { Interval } from './summary.js';

export interface Match {
  a: string;
  b: string;
  /** The player the verdict picked. */
  winner: string;
}

/** Sequential Elo: matches in the order given, every player starting at `start`. */
export function elo(players: readonly string[], matches: readonly Match[], o: { start: number; k: number }): Map<string, number> {
  const rating = new Map(players.map((p) => [p, o.start]));
  for (const m of matches) {
    const ra = rating.get(m.a) ?? o.start;
    const rb = rating.get(m.b) ?? o.start;
    const expectedA = 1 / (1 + 10 ** ((rb - ra) / 400));
    const scoreA = m.winner === m.a ? 1 : 0;
    rating.set(m.a, ra + o.k * (scoreA - expectedA));
    rating.set(m.b, rb + o.k * (1 - scoreA - (1 - expectedA)));
  }
  return rating;
}

/**
 * Bradley-Terry strengths by Hunter's MM algorithm, returned as log-strengths centred on 0.
 * Every player also plays one virtual win and one virtual loss against a fixed reference of strength 1:
 * a weak prior that keeps the estimate finite for a player that never (or always) won, and connects
 * the comparison graph. Its pull vanishes as real games accumulate.
 */
export function bradleyTerry(players: readonly string[], matches: readonly Match[], o: { iterations?: number; tolerance?: number } = {}): Map<string, number> {
  const index = new Map(players.map((p, i) => [p, i]));
  const n = players.length;
  const wins = new Float64Array(n).fill(1);
  const pairs: [number, number][] = [];
  for (const m of matches) {
    const i = index.get(m.a);
    const j = index.get(m.b);
    if (i === undefined || j === undefined || i === j) continue;
    pairs.push([i, j]);
    wins[m.winner === m.a ? i : j] += 1;
  }
  let p = new Float64Array(n).fill(1);
  const iterations = o.iterations ?? 2000;
  const tolerance = o.tolerance ?? 1e-9;
  for (let it = 0; it < iterations; it++) {
    const denom = new Float64Array(n);
    for (let i = 0; i < n; i++) denom[i] = 2 / (p[i] + 1);
    for (const [i, j] of pairs) {
      const d = 1 / (p[i] + p[j]);
      denom[i] += d;
      denom[j] += d;
    }
    const next = new Float64Array(n);
    let change = 0;
    for (let i = 0; i < n; i++) {
      next[i] = wins[i] / denom[i];
      change = Math.max(change, Math.abs(Math.log(next[i]) - Math.log(p[i])));
    }
    p = next;
    if (change < tolerance) break;
  }
  const logs = Array.from(p, Math.log);
  const centre = logs.reduce((a, b) => a + b, 0) / Math.max(1, n);
  return new Map(players.map((pl, i) => [pl, logs[i] - centre]));
}

/** Per-player bootstrap intervals of Bradley-Terry log-strength (matches resampled with replacement). */
export function bradleyTerryIntervals(players: readonly string[], matches: readonly Match[], o: BootstrapOptions): Map<string, Interval | null> {
  return bradleyTerryBootstrap(players, matches, o).intervals;
}

/** The bootstrap fits of Bradley-Terry (one per resample of the matches) and each player's percentile interval. */
export function bradleyTerryBootstrap(players: readonly string[], matches: readonly Match[], o: BootstrapOptions): { fits: Map<string, number>[]; intervals: Map<string, Interval | null> } {
  const fits: Map<string, number>[] = [];
  // One resample loop shared by all players: each statistic call records its fit.
  bootstrapInterval(matches, (sample) => (fits.push(bradleyTerry(players, sample, { iterations: 300, tolerance: 1e-6 })), 0), o);
  const alpha = (1 - o.confidence) / 2;
  const intervals = new Map(
    players.map((pl) => {
      const xs = fits.map((f) => f.get(pl) as number).sort((a, b) => a - b);
      return [pl, xs.length === 0 ? null : { low: percentile(xs, alpha), high: percentile(xs, 1 - alpha) }] as const;
    }),
  );
  return { fits, intervals };
}

/** Linear-interpolated quantile of sorted values. */
export function percentile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  return sorted[lo] + (sorted[Math.ceil(pos)] - sorted[lo]) * (pos - lo);
}
