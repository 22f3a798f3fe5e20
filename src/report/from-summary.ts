/**
 * The one mapping from the eval summary (src/evals/summary.ts) onto the report's plain records.
 * Everything eval-specific about metric names lives here.
 */
import type { BigFiveProfile as SummaryBigFive, EvalResult, EvalSummary, Metric } from '../evals/summary.js';
import type {
  BigFiveDomain,
  BigFiveProfile,
  CapabilityRow,
  ClassifierSection,
  ComparisonRow,
  ConfusionMatrix,
  DriftPoint,
  Estimate,
  Headline,
  HeadlineRow,
  LeakageShift,
  PreferenceSection,
  ReportData,
  ScoreRow,
  SubjectKind,
} from './model.js';
import { reverseTuringData, traitSpaceData } from './research-input.js';

/** A summary metric as an estimate; absent when it has no value. */
export function estimateOf(m: Metric | undefined): Estimate | undefined {
  if (!m || m.value === null || m.n === 0) return undefined;
  return { value: m.value, lo: m.ci?.low ?? NaN, hi: m.ci?.high ?? NaN, n: m.n };
}

function resultOf(summary: EvalSummary, id: EvalResult['eval']): EvalResult | undefined {
  return summary.evals.find((r) => r.eval === id && r.status === 'ok');
}

function kindOf(summary: EvalSummary, subject: string): SubjectKind {
  const recorded = summary.subjects.find((s) => s.name === subject)?.kind;
  if (recorded) return recorded;
  if (subject === summary.baseline) return 'base';
  if (subject === summary.prompted) return 'prompted';
  const model = summary.subjects.find((s) => s.name === subject)?.model ?? '';
  return /steer/i.test(model) || /steer/i.test(subject) ? 'steered' : 'trained';
}

/** The persona a subject is measured against: its own, or the only persona of the run (for the base). */
function personaOf(summary: EvalSummary, subject: string): string | undefined {
  const own = summary.subjects.find((s) => s.name === subject)?.persona;
  if (own) return own;
  const personas = [...new Set(summary.subjects.map((s) => s.persona).filter((p): p is string => !!p))];
  return personas.length === 1 ? personas[0] : undefined;
}

/** Classifier metric names (src/evals/persona-classifier.ts): the share of replies attributed to the persona. */
const STRENGTH_METRIC = 'classifiedAsPersona';
const ADVERSARIAL_METRIC = 'classifiedAsPersona.adversarial';
/** Confusion conditions: the classifier's own held-out split, plain prompts, adversarial suffixes. */
const CONDITION_TITLES: Record<string, string> = { heldOut: 'held-out training replies', none: 'subjects\' replies, plain prompts', adversarial: 'subjects\' replies, adversarial suffixes' };

/**
 * Accuracy (with a Wilson 95% interval: a binomial proportion) and macro-F1 (point value) of a
 * confusion matrix, counts[true][predicted].
 */
export function confusionScores(counts: number[][]): Pick<ConfusionMatrix, 'accuracy' | 'macroF1'> {
  const k = counts.length;
  const total = counts.flat().reduce((a, b) => a + b, 0);
  if (total === 0) return {};
  const correct = counts.reduce((sum, row, i) => sum + (row[i] ?? 0), 0);
  const f1s: number[] = [];
  for (let c = 0; c < k; c++) {
    const tp = counts[c][c] ?? 0;
    const actual = counts[c].reduce((a, b) => a + b, 0);
    const predicted = counts.reduce((sum, row) => sum + (row[c] ?? 0), 0);
    if (actual === 0 && predicted === 0) continue; // a class absent from this matrix
    f1s.push(tp === 0 ? 0 : (2 * tp) / (actual + predicted));
  }
  const z = 1.959964;
  const p = correct / total;
  const centre = (p + (z * z) / (2 * total)) / (1 + (z * z) / total);
  const half = (z * Math.sqrt((p * (1 - p)) / total + (z * z) / (4 * total * total))) / (1 + (z * z) / total);
  return {
    accuracy: { value: p, lo: centre - half, hi: centre + half, n: total },
    macroF1: { value: f1s.reduce((a, b) => a + b, 0) / f1s.length, lo: NaN, hi: NaN, n: total },
  };
}

function classifierSection(summary: EvalSummary): ClassifierSection | undefined {
  const result = resultOf(summary, 'classifier');
  if (!result) return undefined;
  const comparison: ComparisonRow[] = [];
  for (const [subject, metrics] of Object.entries(result.subjects)) {
    const strength = estimateOf(metrics[STRENGTH_METRIC]);
    if (!strength) continue;
    const adversarial = estimateOf(metrics[ADVERSARIAL_METRIC]);
    comparison.push({ persona: personaOf(summary, subject) ?? '(no persona)', condition: subject, kind: kindOf(summary, subject), strength, ...(adversarial ? { adversarial } : {}) });
  }
  // Accuracy and macro-F1 with bootstrap intervals come from the eval (overall); counts are the fallback.
  const confusion: ConfusionMatrix[] = (result.plots.confusion ?? []).map((c) => {
    const fromCounts = confusionScores(c.counts);
    return {
      title: CONDITION_TITLES[c.condition] ?? `subjects' replies, suffix ${c.condition}`,
      labels: c.labels,
      counts: c.counts,
      accuracy: estimateOf(result.overall[`accuracy.${c.condition}`]) ?? fromCounts.accuracy,
      macroF1: estimateOf(result.overall[`macroF1.${c.condition}`]) ?? fromCounts.macroF1,
    };
  });
  return comparison.length || confusion.length ? { comparison, confusion } : undefined;
}

function preferencesSection(summary: EvalSummary): PreferenceSection | undefined {
  const result = resultOf(summary, 'preferences');
  const rankings = result?.plots.rankings ?? [];
  if (!result || rankings.length === 0) return undefined;
  const variants = new Set(rankings.map((r) => r.variant));
  const label = (subject: string, variant: string) => (variants.size > 1 ? `${subject} (${variant})` : subject);
  return {
    rankings: rankings.map((r) => ({
      subject: label(r.subject, r.variant),
      kind: kindOf(summary, r.subject),
      matches: r.matches,
      unparseable: r.unparsed,
      traits: r.traits.map((t) => ({ trait: t.trait, elo: t.elo, bt: { value: t.bt, lo: t.btCi?.low ?? NaN, hi: t.btCi?.high ?? NaN }, matches: t.games })),
    })),
    spearman: (result.plots.rankCorrelations ?? [])
      .filter((c) => c.spearman !== null)
      .map((c) => ({ a: label(c.a, c.variant), b: label(c.b, c.variant), rho: c.spearman as number, n: c.n, method: c.method === 'bt' ? 'Bradley-Terry' : 'Elo', ...(c.ci ? { lo: c.ci.low, hi: c.ci.high } : {}) })),
  };
}

function leakageShifts(summary: EvalSummary): LeakageShift[] | undefined {
  const shifts = resultOf(summary, 'leakage')?.plots.leakageShifts ?? [];
  const out = shifts.flatMap((s) => {
    const shift = estimateOf(s.shift);
    return shift ? [{ subject: s.subject, category: s.category, measure: s.measure, shift }] : [];
  });
  return out.length ? out : undefined;
}

const DRIFT_METRICS = [
  ['promptToLine', 'prompt-to-line'],
  ['lineToLine', 'line-to-line'],
  ['qa', 'Q&A consistency'],
] as const;

function driftPoints(summary: EvalSummary): DriftPoint[] | undefined {
  const points = resultOf(summary, 'drift')?.plots.drift ?? [];
  // Metric by metric, so plots and tables keep the order of DRIFT_METRICS.
  const out = DRIFT_METRICS.flatMap(([field, metric]) =>
    points.flatMap((p) => {
      const score = estimateOf(p[field]);
      return score ? [{ subject: p.subject, metric, turn: p.turn, score }] : [];
    }),
  );
  return out.length ? out : undefined;
}

/** Domain keys as the eval writes them (full names or initials), onto O/C/E/A/N. */
function domainOf(key: string): BigFiveDomain | undefined {
  const initial = key.trim().charAt(0).toUpperCase();
  return (['O', 'C', 'E', 'A', 'N'] as const).find((d) => d === initial);
}

function bigFiveProfiles(summary: EvalSummary): BigFiveProfile[] | undefined {
  const profiles: SummaryBigFive[] = resultOf(summary, 'psychometrics')?.plots.bigFive ?? [];
  const out = profiles.map((p): BigFiveProfile => {
    const measured: BigFiveProfile['measured'] = {};
    for (const [key, m] of Object.entries(p.domains)) {
      const d = domainOf(key);
      const e = estimateOf(m);
      if (d && e) measured[d] = e;
    }
    let target: BigFiveProfile['target'];
    if (p.target) {
      target = {};
      for (const [key, v] of Object.entries(p.target)) {
        const d = domainOf(key);
        if (d) target[d] = v;
      }
    }
    return { subject: p.subject, kind: kindOf(summary, p.subject), measured, ...(target ? { target } : {}), ...(p.distance !== null ? { distance: p.distance } : {}) };
  });
  return out.length ? out : undefined;
}

const CAPABILITY_METRIC = 'accuracy';

function capabilityRows(summary: EvalSummary): CapabilityRow[] | undefined {
  const result = resultOf(summary, 'capability');
  const base = summary.baseline;
  if (!result || !base) return undefined;
  const before = estimateOf(result.subjects[base]?.[CAPABILITY_METRIC]);
  if (!before) return undefined;
  const rows = Object.entries(result.subjects).flatMap(([subject, metrics]): CapabilityRow[] => {
    const m = metrics[CAPABILITY_METRIC];
    const after = estimateOf(m);
    if (subject === base || !after) return [];
    const c = m.comparisons.find((x) => x.against === base);
    const difference = c && c.difference !== null ? { value: c.difference, lo: c.ci?.low ?? NaN, hi: c.ci?.high ?? NaN, n: c.n } : undefined;
    return [{ subject, kind: kindOf(summary, subject), before, after, ...(difference ? { difference } : {}) }];
  });
  return rows.length ? rows : undefined;
}

/** Comparisons with the base come before those with the prompted baseline. */
function baselineRank(summary: EvalSummary, subject: string): number {
  return subject === summary.baseline ? 0 : subject === summary.prompted ? 1 : 2;
}

/** Label of metrics computed over all subjects together (EvalResult.overall). */
export const ALL_SUBJECTS = '(all subjects)';

function scoreRows(summary: EvalSummary): ScoreRow[] | undefined {
  const rows = summary.evals
    .filter((r) => r.status === 'ok')
    .flatMap((r) =>
      [...Object.entries(r.overall).map(([metric, m]) => [ALL_SUBJECTS, { [metric]: m }] as const), ...Object.entries(r.subjects)].flatMap(([subject, metrics]) =>
        Object.entries(metrics).flatMap(([metric, m]): ScoreRow[] => {
          const score = estimateOf(m);
          if (!score) return [];
          const versus = [...m.comparisons].sort((a, b) => baselineRank(summary, a.against) - baselineRank(summary, b.against)).flatMap((c) =>
            c.difference === null ? [] : [{ against: c.against, paired: c.paired, difference: { value: c.difference, lo: c.ci?.low ?? NaN, hi: c.ci?.high ?? NaN, n: c.n } }],
          );
          return [{ evaluation: r.eval, subject, metric, score, versus, ...(m.clusters !== undefined ? { clusters: m.clusters } : {}) }];
        }),
      ),
    );
  return rows.length ? rows : undefined;
}

/** The metrics the headline shows, per eval: persona strength, coherence, identity, robustness, capability, the "I am an AI" probe. */
export const HEADLINE_METRICS: Partial<Record<EvalResult['eval'], string[]>> = {
  traitExpression: ['expression', 'coherence'],
  classifier: ['classifiedAsPersona'],
  identity: ['selfIdentifiesAsAI'],
  prefill: ['personaReturns'],
  capability: ['accuracy'],
  aiRepresentation: ['probe.prompt', 'deniesButRepresents'],
};

/** A pooled estimate (or a comparison) as an estimate; absent without a value. */
function pooledEstimate(p: { value: number | null; ci: { low: number; high: number } | null; n: number }): Estimate | undefined {
  return p.value === null || p.n === 0 ? undefined : { value: p.value, lo: p.ci?.low ?? NaN, hi: p.ci?.high ?? NaN, n: p.n };
}

const cellLabel = (c: { method: string; format: string | null }) => (c.format ? `${c.method}/${c.format}` : c.method);

/**
 * The headline: per headline metric and persona, the base, the persona's own prompted baseline, its
 * steered, capped and other subjects, and its trained cells pooled over seeds, each with paired
 * differences from both baselines; and the paired contrasts between formats and between methods.
 */
function headline(summary: EvalSummary): Headline | undefined {
  const rows: HeadlineRow[] = [];
  const contrasts: Headline['contrasts'] = [];
  const personas = distinctPersonas(summary);
  // Pooled differences from the base and the persona's prompted baseline, as the headline shows them.
  const pooledVersus = (comparisons: { against: string; value: number | null; ci: { low: number; high: number } | null; n: number }[]) =>
    comparisons.flatMap((c) => {
      const d = pooledEstimate(c);
      return d ? [{ against: c.against === summary.baseline ? ('base' as const) : ('prompted' as const), difference: d }] : [];
    });
  for (const result of summary.evals.filter((r) => r.status === 'ok')) {
    for (const metric of HEADLINE_METRICS[result.eval] ?? []) {
      const single = (persona: string, subject: string, condition: string) => {
        const m = result.subjects[subject]?.[metric];
        const score = estimateOf(m);
        if (!m || !score) return;
        const versus = m.comparisons.flatMap((c) => {
          const d = pooledEstimate({ value: c.difference, ci: c.ci, n: c.n });
          return d ? [{ against: c.against === summary.baseline ? ('base' as const) : ('prompted' as const), difference: d }] : [];
        });
        rows.push({ evaluation: result.eval, metric, persona, condition, kind: kindOf(summary, subject), score, seeds: 1, versus });
      };
      for (const persona of personas) {
        if (summary.baseline) single(persona, summary.baseline, 'base');
        const prompted = summary.promptedByPersona[persona] ?? (persona === personas[0] ? summary.prompted : null);
        if (prompted) single(persona, prompted, 'prompted');
        // Steered and capped conditions pooled over the seeds that made them, as trained cells are; any other subject alone.
        const conditions = (result.pooledSteering ?? []).filter((p) => p.persona === persona && p.metric === metric);
        const pooledSubjects = new Set(conditions.flatMap((p) => p.subjects));
        for (const s of summary.subjects.filter((x) => x.persona === persona && !pooledSubjects.has(x.name) && ['steered', 'capped', 'other'].includes(kindOf(summary, x.name)))) single(persona, s.name, s.name);
        for (const p of conditions) {
          const score = pooledEstimate(p);
          if (!score) continue;
          rows.push({ evaluation: result.eval, metric, persona, condition: p.condition, kind: p.kind, score, seeds: p.seeds, ...(p.betweenSeedSd !== null ? { betweenSeedSd: p.betweenSeedSd } : {}), versus: pooledVersus(p.comparisons) });
        }
        for (const cell of result.pooled.filter((p) => p.persona === persona && p.metric === metric)) {
          const score = pooledEstimate(cell);
          if (!score) continue;
          rows.push({ evaluation: result.eval, metric, persona, condition: cellLabel(cell), kind: 'trained', score, seeds: cell.seeds, ...(cell.betweenSeedSd !== null ? { betweenSeedSd: cell.betweenSeedSd } : {}), versus: pooledVersus(cell.comparisons) });
        }
      }
      for (const c of result.contrasts.filter((x) => x.metric === metric)) {
        const difference = pooledEstimate(c);
        if (difference) contrasts.push({ evaluation: result.eval, metric, persona: c.persona, kind: c.kind, a: cellLabel(c.a), b: cellLabel(c.b), difference, seeds: c.seeds });
      }
    }
  }
  return rows.length ? { rows, contrasts } : undefined;
}

/** The run's personas, in the order of the summary's subjects. */
function distinctPersonas(summary: EvalSummary): string[] {
  return [...new Set(summary.subjects.map((s) => s.persona).filter((p): p is string => !!p))];
}

/** Fills the summary-derived parts of the report's data. */
export function fromSummary(
  summary: EvalSummary,
): Pick<ReportData, 'headline' | 'classifier' | 'preferences' | 'leakage' | 'drift' | 'bigFive' | 'capability' | 'scores' | 'evalStatus' | 'judgeAgreement' | 'reverseTuring' | 'traitSpace'> {
  return {
    headline: headline(summary),
    classifier: classifierSection(summary),
    preferences: preferencesSection(summary),
    leakage: leakageShifts(summary),
    drift: driftPoints(summary),
    bigFive: bigFiveProfiles(summary),
    capability: capabilityRows(summary),
    scores: scoreRows(summary),
    evalStatus: summary.evals.map((r) => ({ evaluation: r.eval, status: r.status, ...(r.reason ? { reason: r.reason } : {}) })),
    judgeAgreement: summary.evals.flatMap((r) => r.judgeAgreement.map((j) => ({ evaluation: r.eval, ...j }))),
    reverseTuring: reverseTuringData(summary),
    traitSpace: traitSpaceData(summary),
  };
}
