/**
 * Turning per-sample scores into summary metrics: mean, n, bootstrap interval and comparisons with the
 * base and prompted subjects (paired on sample keys), and the agreement of two judges.
 */
import { baselinesOf, bootstrapOptions, type EvalContext, type Subject } from './types.js';
import { poolCells } from './pooling.js';
import { cohenKappa, compare, hashSeed, metricOf, spearman } from './stats.js';
import type { JudgeAgreement, Metric, SubjectMetrics } from './summary.js';

/** metric -> subject -> sample key -> score (null = missing). */
export class MetricTable {
  readonly values = new Map<string, Map<string, Map<string, number | null>>>();

  /**
   * `clusterOf(key)`: samples with the same cluster are resampled together by the bootstrap (replies
   * to one prompt under several suffixes, repeats of one item, turns of one conversation).
   */
  constructor(readonly clusterOf: (key: string) => string = (key) => key) {}

  add(metric: string, subject: string, key: string, value: number | null | undefined): void {
    let bySubject = this.values.get(metric);
    if (!bySubject) this.values.set(metric, (bySubject = new Map()));
    let byKey = bySubject.get(subject);
    if (!byKey) bySubject.set(subject, (byKey = new Map()));
    byKey.set(key, value ?? null);
  }

  get(metric: string, subject: string): Map<string, number | null> {
    return this.values.get(metric)?.get(subject) ?? new Map();
  }
}

/** Cluster = the key without its last "/" segment (a question's samples, an item's repeats, a conversation's turns). */
export const clusterByPrefix = (key: string): string => key.slice(0, key.lastIndexOf('/'));

/**
 * One metric with its comparisons against the base and the subject's own persona's prompted baseline,
 * paired on sample keys (a comparison without shared keys says so and has no difference).
 */
export function metricWithComparisons(ctx: EvalContext, evalId: string, metric: string, subject: Subject, table: MetricTable): Metric {
  const mine = table.get(metric, subject.name);
  const m = metricOf([...mine.values()], bootstrapOptions(ctx, hashSeed(ctx.seed, evalId, metric, subject.name)), [...mine.keys()].map(table.clusterOf));
  m.comparisons = baselinesOf(ctx, subject)
    .filter((other) => table.values.get(metric)?.has(other.name))
    .map((other) => compare(other.name, mine, table.get(metric, other.name), bootstrapOptions(ctx, hashSeed(ctx.seed, evalId, metric, subject.name, other.name)), table.clusterOf));
  return m;
}

/** Every metric of every subject in the table, and of every trained cell pooled over seeds (see poolCells). */
export function assembleAll(ctx: EvalContext, evalId: string, table: MetricTable): { subjects: Record<string, SubjectMetrics> } & ReturnType<typeof poolCells> {
  return { subjects: assemble(ctx, evalId, table), ...poolCells(ctx, evalId, table) };
}

/** Every metric of every subject in the table. */
export function assemble(ctx: EvalContext, evalId: string, table: MetricTable): Record<string, SubjectMetrics> {
  const out: Record<string, SubjectMetrics> = {};
  for (const subject of ctx.subjects) {
    const metrics: SubjectMetrics = {};
    for (const [metric, bySubject] of table.values) if (bySubject.has(subject.name)) metrics[metric] = metricWithComparisons(ctx, evalId, metric, subject, table);
    out[subject.name] = metrics;
  }
  return out;
}

/**
 * Agreement of the first two judges over items both scored: Cohen's kappa for categorical verdicts,
 * Spearman for numeric scores. `rows` holds one {judge name -> verdict} per item.
 */
export function judgeAgreement(ctx: EvalContext, metric: string, statistic: 'kappa' | 'spearman', rows: Record<string, string | number | boolean | null | undefined>[]): JudgeAgreement[] {
  if (ctx.judges.length < 2) return [];
  const [a, b] = [ctx.judges[0].name, ctx.judges[1].name];
  const both = rows.filter((r) => r[a] !== null && r[a] !== undefined && r[b] !== null && r[b] !== undefined);
  const value = statistic === 'kappa' ? cohenKappa(both.map((r) => String(r[a])), both.map((r) => String(r[b]))) : spearman(both.map((r) => Number(r[a])), both.map((r) => Number(r[b])));
  return [{ metric, judges: [a, b], statistic, value, n: both.length }];
}
