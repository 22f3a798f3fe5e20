/**
 * The research questions' report data, mapped from the eval summary: the reverse Turing test's
 * accuracies against chance, and the trait-space analysis (computed here from the summary's shifts).
 */
import type { EvalSummary, Metric, PooledCell } from '../evals/summary.js';
import { shiftMatrix, traitSpace, type TraitSpace } from '../evals/trait-space.js';
import type { Estimate, SubjectKind } from './model.js';

export interface ReverseTuringData {
  candidates: number;
  chance: number;
  /** Every subject that ran; accuracy absent when none of its picks could be read. */
  subjects: { subject: string; kind: SubjectKind; persona: string | null; accuracy?: Estimate; missing: number }[];
  /** Trained cells pooled over seeds. */
  cells: { persona: string; condition: string; accuracy: Estimate; seeds: number }[];
  personas: { persona: string; accuracy: Estimate }[];
  strategies: { subject: string; strategy: string; share: Estimate; accuracy?: Estimate }[];
  /** Share of a subject's picks that went to each kind of candidate ("twin" = right). */
  picked: { subject: string; kind: string; share: Estimate }[];
  unparsedPicks: number;
}

export interface TraitSpaceData extends TraitSpace {
  /**
   * |cosine| with the assistant axis of the first component's trait-expression loadings through the
   * traits' unit persona vectors (layer: the axis layer; traits: the columns used); when the steer stage wrote them.
   */
  axis?: { cosine: number; randomBaseline: number; layer: number; traits: number };
}

const estimate = (m: { value: number | null; ci: { low: number; high: number } | null; n: number } | undefined): Estimate | undefined =>
  !m || m.value === null || m.n === 0 ? undefined : { value: m.value, lo: m.ci?.low ?? NaN, hi: m.ci?.high ?? NaN, n: m.n };

export function reverseTuringData(summary: EvalSummary): ReverseTuringData | undefined {
  const result = summary.evals.find((r) => r.eval === 'reverseTuring' && r.status === 'ok');
  if (!result) return undefined;
  const info = new Map(summary.subjects.map((s) => [s.name, s]));
  const subjects: ReverseTuringData['subjects'] = [];
  const strategies: ReverseTuringData['strategies'] = [];
  const picked: ReverseTuringData['picked'] = [];
  for (const [subject, metrics] of Object.entries(result.subjects)) {
    if (metrics.accuracy) subjects.push({ subject, kind: info.get(subject)?.kind ?? 'other', persona: info.get(subject)?.persona ?? null, accuracy: estimate(metrics.accuracy), missing: metrics.accuracy.missing });
    for (const [metric, m] of Object.entries(metrics) as [string, Metric][]) {
      const share = estimate(m);
      if (!share) continue;
      if (metric.startsWith('strategy.')) {
        const strategy = metric.slice('strategy.'.length);
        if (share.value > 0) strategies.push({ subject, strategy, share, accuracy: estimate(metrics[`accuracy.strategy.${strategy}`]) });
      } else if (metric.startsWith('picked.')) picked.push({ subject, kind: metric.slice('picked.'.length), share });
    }
  }
  const cells = result.pooled
    .filter((p: PooledCell) => p.metric === 'accuracy')
    .flatMap((p) => {
      const accuracy = estimate(p);
      return accuracy ? [{ persona: p.persona, condition: p.format ? `${p.method}/${p.format}` : p.method, accuracy, seeds: p.seeds }] : [];
    });
  const personas = Object.entries(result.overall).flatMap(([metric, m]) => {
    const accuracy = estimate(m);
    return metric.startsWith('accuracy.persona.') && accuracy ? [{ persona: metric.slice('accuracy.persona.'.length), accuracy }] : [];
  });
  const candidates = Number(result.notes.candidates);
  return { candidates, chance: Number(result.notes.chance), subjects, cells, personas, strategies, picked, unparsedPicks: Number(result.notes.unparsedPicks ?? 0) };
}

/** The trait-space analysis of the summary's shifts from the base; absent under 3 subjects or 2 shared traits. */
export function traitSpaceData(summary: EvalSummary): TraitSpaceData | undefined {
  const matrix = shiftMatrix(summary);
  if (!matrix) return undefined;
  return traitSpace(matrix, { confidence: summary.confidence, seed: summary.seed }) ?? undefined;
}
