/**
 * The summary's research results as the report's records: the multi-persona matrices (interference
 * eval, src/evals/interference.ts) and knows-about vs speaks-as (personaKnowledge eval).
 */
import type { EvalResult, EvalSummary, Metric, PooledCell } from '../evals/summary.js';
import { estimateOf } from './from-summary.js';
import type { Estimate, MultiPersonaMatrix, MultiPersonaRow, PersonaKnowledgeRow, SubjectKind } from './model.js';

const MIXTURE_METHOD = 'mixture';
const SHARE_PREFIX = 'classifiedAs.';
const EXPRESSION_PREFIX = 'expressionOf.';

const ok = (summary: EvalSummary, id: EvalResult['eval']) => summary.evals.find((r) => r.eval === id && r.status === 'ok');
const pooledOf = (p: PooledCell | undefined): Estimate | undefined => (!p || p.value === null || p.n === 0 ? undefined : { value: p.value, lo: p.ci?.low ?? NaN, hi: p.ci?.high ?? NaN, n: p.n });
const personasOf = (summary: EvalSummary) => [...new Set(summary.subjects.filter((s) => s.kind === 'prompted' && s.persona).map((s) => s.persona!))];

/** One matrix per mixture signal: the mixture called as each persona, its untagged default, then the base and each persona's prompted baseline. */
export function multiPersonaMatrices(summary: EvalSummary): MultiPersonaMatrix[] | undefined {
  const result = ok(summary, 'interference');
  if (!result) return undefined;
  const personas = personasOf(summary);
  const mixture = result.pooled.filter((p) => p.method === MIXTURE_METHOD);
  if (mixture.length === 0) return undefined;
  const labels = [...personas, ...[...new Set(mixture.filter((p) => p.metric.startsWith(SHARE_PREFIX)).map((p) => p.metric.slice(SHARE_PREFIX.length)))].filter((l) => !personas.includes(l))];
  const signals = [...new Set(mixture.map((p) => p.format ?? ''))];
  return signals.map((signal) => {
    const cells = mixture.filter((p) => (p.format ?? '') === signal);
    const judged = cells.some((p) => p.metric.startsWith(EXPRESSION_PREFIX));
    const find = (persona: string, metric: string) => pooledOf(cells.find((p) => p.persona === persona && p.metric === metric));
    const called = personas.filter((p) => cells.some((c) => c.persona === p));
    const defaults = [...new Set(cells.map((c) => c.persona))].filter((p) => !personas.includes(p));
    const pooledRow = (persona: string, kind: 'called' | 'default'): MultiPersonaRow => ({
      calledAs: kind === 'called' ? persona : 'untagged default',
      kind,
      shares: labels.map((l) => find(persona, SHARE_PREFIX + l)),
      strength: kind === 'called' ? find(persona, 'strength') : undefined,
      leakage: find(persona, 'leakage'),
      ...(judged ? { expression: personas.map((p) => find(persona, EXPRESSION_PREFIX + p)) } : {}),
      seeds: Math.max(0, ...cells.filter((c) => c.persona === persona).map((c) => c.seeds)),
    });
    const subjectRow = (name: string | null | undefined, calledAs: string, kind: 'base' | 'prompted'): MultiPersonaRow[] => {
      const metrics: Record<string, Metric> | undefined = name ? result.subjects[name] : undefined;
      if (!metrics) return [];
      const expression = judged ? { expression: personas.map((p) => estimateOf(metrics[EXPRESSION_PREFIX + p])) } : {};
      return [{ calledAs, kind, shares: labels.map((l) => estimateOf(metrics[SHARE_PREFIX + l])), strength: estimateOf(metrics.strength), leakage: estimateOf(metrics.leakage), ...expression, seeds: 0 }];
    };
    const members = called.length > 0 ? called : personas;
    return {
      signal,
      labels,
      personas,
      rows: [
        ...called.map((p) => pooledRow(p, 'called')),
        ...defaults.map((p) => pooledRow(p, 'default')),
        ...subjectRow(summary.baseline, 'base', 'base'),
        ...members.flatMap((p) => subjectRow(summary.promptedByPersona?.[p], `prompted ${p}`, 'prompted')),
      ],
    };
  });
}

/** Per persona: the base, its prompted baseline, each trained cell pooled over seeds, and any other subject of that persona. */
export function personaKnowledgeRows(summary: EvalSummary): PersonaKnowledgeRow[] | undefined {
  const result = ok(summary, 'personaKnowledge');
  if (!result) return undefined;
  const rows: PersonaKnowledgeRow[] = [];
  for (const persona of personasOf(summary)) {
    const [knows, speaks] = [`knowsAbout.${persona}`, `speaksAs.${persona}`];
    const fromSubject = (name: string, condition: string, kind: SubjectKind) => {
      const m = result.subjects[name];
      if (m && (m[knows] || m[speaks])) rows.push({ persona, condition, kind, knowsAbout: estimateOf(m[knows]), speaksAs: estimateOf(m[speaks]), seeds: 0 });
    };
    if (summary.baseline) fromSubject(summary.baseline, 'base', 'base');
    const prompted = summary.promptedByPersona?.[persona];
    if (prompted) fromSubject(prompted, 'prompted', 'prompted');
    const cells = result.pooled.filter((p) => p.persona === persona && (p.metric === knows || p.metric === speaks));
    for (const label of [...new Set(cells.map((c) => (c.format ? `${c.method}/${c.format}` : c.method)))]) {
      const of = (metric: string) => cells.find((c) => c.metric === metric && (c.format ? `${c.method}/${c.format}` : c.method) === label);
      rows.push({ persona, condition: label, kind: 'trained', knowsAbout: pooledOf(of(knows)), speaksAs: pooledOf(of(speaks)), seeds: Math.max(of(knows)?.seeds ?? 0, of(speaks)?.seeds ?? 0) });
    }
    for (const s of summary.subjects.filter((x) => x.persona === persona && x.kind !== 'trained' && x.kind !== 'prompted' && x.kind !== 'base')) fromSubject(s.name, s.name, s.kind ?? 'other');
  }
  return rows.length > 0 ? rows : undefined;
}
