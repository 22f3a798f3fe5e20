/**
 * What the report shows, as plain typed records. The section renderers read only these; the eval
 * summary JSON is mapped onto them in one place (summary-input.ts), so a change in the summary's
 * shape is a change to that mapping alone. Every field of every section is optional in the sense
 * that a section whose data is absent is left out with a one-line note.
 */
import type { ReverseTuringData, TraitSpaceData } from './research-input.js';
import type { z } from 'zod';
import type { steerSummarySchema } from '../steer/artifacts.js';

/** A score with its sample size and 95% interval (bootstrap or exact, as the eval computed it). */
export interface Estimate {
  value: number;
  lo: number;
  hi: number;
  n: number;
}

/** What a subject is, so baselines can be drawn apart from trained models. */
export type SubjectKind = 'base' | 'prompted' | 'trained' | 'steered' | 'capped' | 'other';

/** One row of the format/method comparison: a persona's strength under one condition. */
export interface ComparisonRow {
  persona: string;
  /** The condition's name as shown: "base", "prompted", "chat", "first-person", "dpo", ... */
  condition: string;
  kind: SubjectKind;
  /** Share of replies the classifier attributes to the persona. */
  strength: Estimate;
  /** The same under adversarial suffixes, when measured. */
  adversarial?: Estimate;
}

export interface ConfusionMatrix {
  /** Which subject's replies (or "held-out" for the classifier's own test split). */
  title: string;
  labels: string[];
  /** counts[true][predicted]. */
  counts: number[][];
  accuracy?: Estimate;
  macroF1?: Estimate;
}

export interface ClassifierSection {
  comparison: ComparisonRow[];
  confusion: ConfusionMatrix[];
}

export interface TraitRating {
  trait: string;
  elo: number;
  /** Bradley-Terry strength (log scale) with its bootstrap interval. */
  bt: { value: number; lo: number; hi: number };
  matches: number;
}

export interface PreferenceRanking {
  subject: string;
  kind: SubjectKind;
  traits: TraitRating[];
  /** Judge verdicts that could not be parsed and were dropped. */
  unparseable: number;
  matches: number;
}

export interface RankCorrelation {
  a: string;
  b: string;
  /** Which ranking was correlated: "Elo" or "Bradley-Terry". */
  method?: string;
  rho: number;
  lo?: number;
  hi?: number;
  /** Traits ranked by both. */
  n: number;
}

export interface PreferenceSection {
  rankings: PreferenceRanking[];
  spearman: RankCorrelation[];
}

/** Shift of one subject from the base model on one leakage category and measure (judge scores 1-5). */
export interface LeakageShift {
  subject: string;
  category: string;
  measure: 'position' | 'certainty';
  shift: Estimate;
}

export interface DriftPoint {
  subject: string;
  metric: string;
  turn: number;
  score: Estimate;
}

export type BigFiveDomain = 'O' | 'C' | 'E' | 'A' | 'N';

export interface BigFiveProfile {
  subject: string;
  kind: SubjectKind;
  /** Domain scores on the 1-5 Likert scale. */
  measured: Partial<Record<BigFiveDomain, Estimate>>;
  /** The constitution's target profile, when it gives one. */
  target?: Partial<Record<BigFiveDomain, number>>;
  /** Distance between measured and target (as the eval defines it). */
  distance?: number;
}

export interface CapabilityRow {
  subject: string;
  kind: SubjectKind;
  /** Accuracy of the model the subject was made from (the base), on the same questions. */
  before: Estimate;
  after: Estimate;
  /** Paired difference after - before, when the eval computed one. */
  difference?: Estimate;
}

/** A generic score for evaluations without their own plot (identity probes, prefill, ...). */
export interface ScoreRow {
  evaluation: string;
  subject: string;
  /** The metric's name, e.g. "selfIdentifiesAsAI.direct". */
  metric: string;
  score: Estimate;
  /** Independent clusters (prompts, items, conversations) behind the score; under 10 its interval is rough. */
  clusters?: number;
  /** Differences from the base and prompted subjects on the same prompts. */
  versus: { against: string; difference: Estimate; paired: boolean }[];
}

/**
 * One row of the headline table: a persona's condition (the base, its prompted baseline, a steered or
 * capped model, or a trained cell pooled over seeds) on one headline metric.
 */
export interface HeadlineRow {
  evaluation: string;
  metric: string;
  persona: string;
  /** "base", "prompted", "sft/chat", "dpo", a steered subject's name, ... */
  condition: string;
  kind: SubjectKind;
  score: Estimate;
  /** Seeds pooled (1 for a single subject). */
  seeds: number;
  /** Standard deviation of the seed means, with two or more seeds. */
  betweenSeedSd?: number;
  /** Paired differences from the base and the persona's own prompted subject. */
  versus: { against: 'base' | 'prompted'; difference: Estimate }[];
}

/** A paired contrast between two formats (or two methods) of one persona, pooled over seeds. */
export interface HeadlineContrast {
  evaluation: string;
  metric: string;
  persona: string;
  kind: 'format' | 'method';
  a: string;
  b: string;
  difference: Estimate;
  seeds: number;
}

export interface Headline {
  rows: HeadlineRow[];
  contrasts: HeadlineContrast[];
}

export interface Transcript {
  evaluation: string;
  subject: string;
  turns: { role: string; content: string }[];
  judge?: { verdict: string; reason: string };
}

/** The steer stage's summary (steer/summary.json) as its published schema reads it. */
export type SteeringReport = z.infer<typeof steerSummarySchema>;
/** One metric of a continued-training stage against the cell it was trained from, pooled over seeds. */
export interface ContinuedLink {
  persona: string;
  /** The stage's cell ("generic") and the cell it started from ("sft/chat"). */
  stage: string;
  from: string;
  mode: string;
  evaluation: string;
  metric: string;
  before?: Estimate;
  after?: Estimate;
  /** Paired after − before on the same prompts, seed by seed, pooled over seeds. */
  difference?: Estimate;
  seeds: number;
}

export interface ReportData {
  title: string;
  run: {
    name: string;
    version: string;
    gitRevision: string | null;
    startedAt: string;
    resumedAt: string[];
    seeds: number[];
    /** What differs between the run's seeds (from options.json), when the run recorded its options. */
    seedVaries?: string[];
    /** Model usage over every invocation (accounting.json), when the run has one. */
    usage?: { invocations: number; calls: number; promptTokens: number; completionTokens: number; retries: number; failures: number; costUSD: number | null };
  };
  /** Journals found under journals/, with their item counts. */
  journals: { name: string; items: number }[];
  /** Where the summary was read from, or why it was not. */
  summaryNote: string;
  /** Level of the summary's intervals (0.95 unless the eval options changed it). */
  confidence: number;
  /** Evaluations that did not run or failed, with the reason, so absent sections can say why. */
  evalStatus: { evaluation: string; status: 'ok' | 'skipped' | 'failed'; reason?: string }[];
  /** Agreement between two judges, when two were configured. */
  judgeAgreement?: { evaluation: string; metric: string; judges: [string, string]; statistic: string; value: number | null; n: number }[];
  headline?: Headline;
  classifier?: ClassifierSection;
  preferences?: PreferenceSection;
  leakage?: LeakageShift[];
  drift?: DriftPoint[];
  bigFive?: BigFiveProfile[];
  capability?: CapabilityRow[];
  scores?: ScoreRow[];
  transcripts?: Transcript[];
  reverseTuring?: ReverseTuringData;
  traitSpace?: TraitSpaceData;
  /** The steer stage's sweep, monitoring and fine-tuning shift, when the run steered. */
  steering?: SteeringReport;
  /** Why a steer summary present in the run is not shown. */
  steeringNote?: string;
  multiPersona?: MultiPersonaMatrix[];
  personaKnowledge?: PersonaKnowledgeRow[];
  /** Continued training (run.continue): each stage against the cell it started from. */
  continued?: ContinuedLink[];
}

/** One row of a multi-persona matrix: replies of one condition, the share attributed to each label. */
export interface MultiPersonaRow {
  /** The persona the mixture was called as, "untagged default", or a reference (base, a prompted baseline). */
  calledAs: string;
  kind: 'called' | 'default' | 'base' | 'prompted';
  /** Share of replies attributed to each label of the matrix, in the matrix's label order. */
  shares: (Estimate | undefined)[];
  /** Replies attributed to the persona called (called rows and prompted baselines). */
  strength?: Estimate;
  /** Replies attributed to another persona (for the default and the base: to any persona). */
  leakage?: Estimate;
  /** Judged expression (0-100) of each persona's traits, in the order of the matrix's persona labels (interference.traits). */
  expression?: (Estimate | undefined)[];
  /** Seeds pooled (0 for the references, measured once). */
  seeds: number;
}

/** Several personas in one adapter (one mixture cell per signal), measured by the persona classifier. */
export interface MultiPersonaMatrix {
  signal: string;
  /** Columns: the personas, then the classifier's other labels (the assistant). */
  labels: string[];
  /** The personas among the labels (the columns of the trait-expression table). */
  personas: string[];
  rows: MultiPersonaRow[];
}

/** Knowing a persona vs speaking as it, for one persona under one condition. */
export interface PersonaKnowledgeRow {
  persona: string;
  /** base, prompted, a trained cell (method/format, pooled over seeds), or another subject's name. */
  condition: string;
  kind: SubjectKind;
  knowsAbout?: Estimate;
  speaksAs?: Estimate;
  seeds: number;
}
