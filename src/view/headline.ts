/**
 * The dashboard's tables from an eval summary: subjects grouped by what they are (a trained cell's
 * persona x method x format, pooled over seeds; the base; the prompted persona; steered models), each
 * eval's metrics pooled per group, and the difference between two runs with its interval.
 */
import type { EvalSummary, Interval, Metric } from '../evals/summary.js';
import { subjectsOf, trainedCells, type SubjectInfo, type SubjectKind } from './runs.js';

export interface Pooled {
  value: number | null;
  ci: Interval | null;
  /** Samples over all seeds. */
  n: number;
  seeds: number;
  /** Standard deviation of the per-seed values (null under two seeds). */
  seedSd: number | null;
}

/** Two-sided 95% Student t quantiles by degrees of freedom (1..10; beyond, the normal's 1.96 is close). */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];

/**
 * Pools one metric over seeds: the mean of the seeds' values, their SD, and an interval - one seed's
 * own bootstrap interval, or mean +- t * SD / sqrt(seeds) across seeds.
 */
export function pooledOf(metrics: Metric[]): Pooled {
  const withValue = metrics.filter((m): m is Metric & { value: number } => m.value !== null);
  const n = metrics.reduce((sum, m) => sum + m.n, 0);
  const k = withValue.length;
  if (k === 0) return { value: null, ci: null, n, seeds: 0, seedSd: null };
  const mean = withValue.reduce((s, m) => s + m.value, 0) / k;
  if (k === 1) return { value: mean, ci: withValue[0].ci, n, seeds: 1, seedSd: null };
  const sd = Math.sqrt(withValue.reduce((s, m) => s + (m.value - mean) ** 2, 0) / (k - 1));
  const half = (T95[k - 2] ?? 1.96) * (sd / Math.sqrt(k));
  return { value: mean, ci: { low: mean - half, high: mean + half }, n, seeds: k, seedSd: sd };
}

/** Subjects that pool together: one trained cell over seeds, or one untrained subject. */
export interface Group {
  id: string;
  label: string;
  kind: SubjectKind;
  persona: string | null;
  method: string | null;
  format: string | null;
  subjects: string[];
}

export function groupsOf(subjects: SubjectInfo[]): Group[] {
  const groups = new Map<string, Group>();
  for (const s of subjects) {
    const c = s.cell;
    const id = c ? `${c.persona}|${c.method}|${c.format ?? ''}|${c.backend}|${c.optionsHash}` : s.name;
    const label = c ? `${c.persona} · ${c.method}${c.format ? ` · ${c.format}` : ''}` : s.name;
    const group = groups.get(id) ?? { id, label, kind: s.kind, persona: c?.persona ?? s.persona, method: c?.method ?? null, format: c?.format ?? null, subjects: [] };
    group.subjects.push(s.name);
    groups.set(id, group);
  }
  const order: SubjectKind[] = ['base', 'prompted', 'steered', 'capped', 'trained', 'other'];
  return [...groups.values()].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || a.label.localeCompare(b.label));
}

export interface MetricTable {
  eval: string;
  status: string;
  reason?: string;
  metric: string;
  rows: { group: string; pooled: Pooled; perSubject: { subject: string; metric: Metric }[] }[];
}

/** Every eval's metrics, pooled per group (the headline shows each eval's first metric). */
export function metricTables(summary: EvalSummary, groups: Group[]): MetricTable[] {
  const tables: MetricTable[] = [];
  for (const result of summary.evals) {
    const names = [...new Set(Object.values(result.subjects).flatMap((m) => Object.keys(m)))];
    if (names.length === 0) tables.push({ eval: result.eval, status: result.status, reason: result.reason, metric: '', rows: [] });
    for (const metric of names) {
      const rows = groups.flatMap((g) => {
        const perSubject = g.subjects.flatMap((subject) => {
          const m = result.subjects[subject]?.[metric];
          return m ? [{ subject, metric: m }] : [];
        });
        if (perSubject.length === 0) return [];
        // a trained cell's pooled estimate as the eval stage made it (two-level bootstrap over seeds and prompts), when the summary has it
        const cell = g.kind === 'trained' ? result.pooled.find((p) => p.metric === metric && p.persona === g.persona && p.method === g.method && p.format === g.format) : undefined;
        const pooled: Pooled = cell ? { value: cell.value, ci: cell.ci, n: cell.n, seeds: cell.seeds, seedSd: cell.betweenSeedSd } : pooledOf(perSubject.map((p) => p.metric));
        return [{ group: g.id, pooled, perSubject }];
      });
      tables.push({ eval: result.eval, status: result.status, reason: result.reason, metric, rows });
    }
  }
  return tables;
}

export interface ComparisonRow {
  eval: string;
  metric: string;
  group: string;
  a: Pooled;
  b: Pooled;
  /** b minus a. */
  difference: number | null;
  /** Independent runs: half-widths add in quadrature (normal approximation of each interval). */
  ci: Interval | null;
}

/** Two runs side by side: every (eval, metric, group label) both have, with b - a and its interval. */
export function compareRuns(a: { tables: MetricTable[]; groups: Group[] }, b: { tables: MetricTable[]; groups: Group[] }): ComparisonRow[] {
  const label = (groups: Group[], id: string) => groups.find((g) => g.id === id)?.label ?? id;
  const index = (run: typeof a) => new Map(run.tables.flatMap((t) => t.rows.map((r) => [`${t.eval}\u0000${t.metric}\u0000${label(run.groups, r.group)}`, r.pooled] as const)));
  const inB = index(b);
  const rows: ComparisonRow[] = [];
  for (const [key, pa] of index(a)) {
    const pb = inB.get(key);
    if (!pb) continue;
    const [evaluation, metric, group] = key.split('\u0000');
    const difference = pa.value !== null && pb.value !== null ? pb.value - pa.value : null;
    const half = (p: Pooled) => (p.ci && p.value !== null ? (p.ci.high - p.ci.low) / 2 : null);
    const ha = half(pa);
    const hb = half(pb);
    const ci = difference !== null && ha !== null && hb !== null ? { low: difference - Math.hypot(ha, hb), high: difference + Math.hypot(ha, hb) } : null;
    rows.push({ eval: evaluation, metric, group, a: pa, b: pb, difference, ci });
  }
  return rows;
}

/**
 * The headline as a plain-text table for the terminal: one row per group (a trained cell pooled over
 * seeds, or a baseline), one column per eval's first metric, "value [low, high] n=".
 */
export function headlineTable(summary: EvalSummary, groups: Group[]): string {
  const tables = metricTables(summary, groups);
  const firsts = tables.filter((t, i) => t.metric && tables.findIndex((u) => u.eval === t.eval && u.metric) === i);
  if (firsts.length === 0) return '';
  const num = (x: number | null) => (x === null ? '-' : x.toFixed(3));
  const cell = (p: Pooled | undefined) => (p ? `${num(p.value)} ${p.ci ? `[${num(p.ci.low)}, ${num(p.ci.high)}]` : '[-]'} n=${p.n}` : '-');
  const header = ['subject', 'seeds', ...firsts.map((t) => `${t.eval} ${t.metric}`)];
  const rows = groups.map((g) => [g.label, String(g.subjects.length), ...firsts.map((t) => cell(t.rows.find((r) => r.group === g.id)?.pooled))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), `(pooled over seeds; intervals at ${Math.round(summary.confidence * 100)}%)`].join('\n');
}

/** The terminal headline of a run directory's eval summary (cells from the summary or the train journal). */
export async function headlineOfRun(runDir: string, summary: EvalSummary): Promise<string> {
  return headlineTable(summary, groupsOf(subjectsOf(summary, await trainedCells(runDir))));
}
