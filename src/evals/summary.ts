import { z } from 'zod';
import { cellSchema, steeringSchema } from '../core/cell.js';
import { evalIdSchema } from './options.js';

/**
 * The evaluation summary (runs/<name>/evals/summary.json): what the report reads. Stable contract:
 * per eval, per subject, per metric a value with n, a 95% bootstrap interval and comparisons with the
 * base and prompted subjects; plus what the plots need (confusion matrices, rankings, leakage shifts,
 * drift per turn, Big Five profiles). Fields are only ever added.
 */

export const intervalSchema = z.object({ low: z.number(), high: z.number() }).strict().describe('Interval at the summary\'s confidence: Wilson (effective n) for proportions, cluster-robust t for means and paired differences, bootstrap where the figure says so.');

export const comparisonSchema = z
  .object({
    against: z.string().describe('The subject compared with (the base or the prompted baseline).'),
    difference: z.number().nullable().describe('This subject minus the other.'),
    ci: intervalSchema.nullable(),
    n: z.number().int().nonnegative().describe('Pairs: samples scored on both sides (same prompt, same sample index).'),
    paired: z.boolean().describe('True when samples pair up: the difference and interval are of the paired differences. False: no shared samples, no difference.'),
    unpaired: z.string().optional().describe('Why there is no difference: the two sides share no scored sample.'),
    clusters: z.number().int().nonnegative().optional().describe('Independent clusters (prompts, items, conversations) the pairs come from; under 10 the interval is rough.'),
  })
  .strict();

export const metricSchema = z
  .object({
    value: z.number().nullable().describe('Mean over samples (a rate for 0/1 scores); null with n = 0.'),
    n: z.number().int().nonnegative(),
    ci: intervalSchema.nullable(),
    comparisons: z.array(comparisonSchema).default([]),
    /** Items whose score was missing (unparsed verdicts, < 0.25 numeric mass): dropped and counted. */
    missing: z.number().int().nonnegative().default(0),
    clusters: z.number().int().nonnegative().optional().describe('Independent clusters (prompts, items, conversations) the samples come from; under 10 the interval is rough.'),
  })
  .strict();

/** metric name -> metric. Names are dotted paths, e.g. "selfIdentifiesAsAI.direct", "accuracy.suffix3". */
export const subjectMetricsSchema = z.record(z.string(), metricSchema);

export const judgeAgreementSchema = z
  .object({
    metric: z.string(),
    judges: z.tuple([z.string(), z.string()]),
    statistic: z.enum(['kappa', 'spearman']),
    value: z.number().nullable(),
    n: z.number().int().nonnegative(),
  })
  .strict();

export const confusionSchema = z
  .object({
    condition: z.string().describe('"heldOut" (the classifier\'s own test split), "none" (no suffix) or a suffix id.'),
    labels: z.array(z.string()),
    /** counts[true][predicted], indexed like labels. */
    counts: z.array(z.array(z.number().int().nonnegative())),
  })
  .strict();

export const rankingEntrySchema = z
  .object({
    trait: z.string(),
    elo: z.number(),
    bt: z.number().describe('Bradley-Terry strength, log scale, mean 0.'),
    btCi: intervalSchema.nullable(),
    wins: z.number().int().nonnegative(),
    games: z.number().int().nonnegative(),
  })
  .strict();

export const rankingSchema = z
  .object({
    subject: z.string(),
    variant: z.string(),
    matches: z.number().int().nonnegative(),
    unparsed: z.number().int().nonnegative(),
    traits: z.array(rankingEntrySchema).describe('Sorted by Bradley-Terry strength, strongest first.'),
  })
  .strict();

export const rankCorrelationSchema = z
  .object({
    a: z.string(),
    b: z.string(),
    variant: z.string(),
    method: z.enum(['elo', 'bt']),
    spearman: z.number().nullable(),
    n: z.number().int().nonnegative(),
    ci: intervalSchema.optional().describe('Bradley-Terry only: percentile interval over bootstrap fits of both rankings (matches resampled).'),
  })
  .strict();

export const leakageShiftSchema = z
  .object({
    subject: z.string(),
    category: z.string(),
    measure: z.enum(['position', 'certainty']),
    shift: metricSchema.describe('Mean of (subject - base) on the same question and sample index.'),
  })
  .strict();

export const driftPointSchema = z
  .object({
    subject: z.string(),
    turn: z.number().int().positive(),
    promptToLine: metricSchema,
    lineToLine: metricSchema,
    qa: metricSchema,
  })
  .strict();

export const bigFiveProfileSchema = z
  .object({
    subject: z.string(),
    domains: z.record(z.string(), metricSchema).describe('openness, conscientiousness, extraversion, agreeableness, neuroticism on 1-5.'),
    facets: z.record(z.string(), metricSchema).describe('IPIP-NEO facet codes (N1..C6) on 1-5.'),
    target: z.record(z.string(), z.number()).nullable(),
    distance: z.number().nullable().describe('Euclidean distance between measured domains and the target on 1-5.'),
  })
  .strict();

export const pooledEstimateSchema = z
  .object({
    value: z.number().nullable().describe('Mean over seeds of each seed\'s mean.'),
    betweenSeedSd: z.number().nullable().describe('Standard deviation of the seed means (null with fewer than two seeds).'),
    ci: intervalSchema.nullable().describe('Two or more seeds: two-level bootstrap (seeds, then prompt clusters within seed) standard error widened by sqrt(k/(k-1)), t quantiles with k-1 degrees of freedom. One seed: percentile interval of the cluster bootstrap within it.'),
    seeds: z.number().int().nonnegative().describe('Seeds (replicates) with at least one score.'),
    n: z.number().int().nonnegative().describe('Scored samples (or pairs) over all seeds.'),
    perSeed: z.array(z.object({ seed: z.number().int(), value: z.number(), n: z.number().int().nonnegative() }).strict()),
  })
  .strict();

export const pooledCellSchema = pooledEstimateSchema
  .extend({
    persona: z.string(),
    method: z.string(),
    format: z.string().nullable(),
    metric: z.string(),
    subjects: z.array(z.string()).describe('The cell\'s subjects, one per seed.'),
    comparisons: z
      .array(pooledEstimateSchema.extend({ against: z.string().describe('The base or the persona\'s own prompted subject.') }).strict())
      .describe('Paired differences (cell - baseline) on the same sample keys, seed by seed, pooled over seeds.'),
  })
  .strict();

export const pooledSteeringSchema = pooledEstimateSchema
  .extend({
    persona: z.string().nullable(),
    kind: z.enum(['steered', 'capped']),
    condition: z.string().describe('The subjects\' name without its seed (`<persona>.steered-t<i>`, `<persona>.capped`).'),
    trait: z.string().nullable(),
    traitIndex: z.number().int().nullable(),
    metric: z.string(),
    subjects: z.array(z.string()).describe('The steered (or capped) subjects, one per seed.'),
    comparisons: z
      .array(pooledEstimateSchema.extend({ against: z.string().describe('The base or the persona\'s own prompted subject.') }).strict())
      .describe('Paired differences (subject - baseline) on the same sample keys, seed by seed, pooled over seeds.'),
  })
  .strict()
  .describe('A steered or capped condition (persona, trait, steering or capping) pooled over the seeds whose steer stage made it, as a trained cell is.');

const cellRefSchema = z.object({ method: z.string(), format: z.string().nullable() }).strict();

export const contrastSchema = pooledEstimateSchema
  .extend({
    persona: z.string(),
    metric: z.string(),
    kind: z.enum(['format', 'method']).describe('format: two formats of one method; method: two methods.'),
    a: cellRefSchema,
    b: cellRefSchema,
    unpaired: z.string().optional().describe('Why there is no difference: the two cells share no scored sample.'),
  })
  .strict()
  .describe('Paired difference a - b on the same sample keys, seed by seed (by seed number, else in seed order), pooled over seeds.');

export const evalPlotsSchema = z
  .object({
    confusion: z.array(confusionSchema).optional(),
    rankings: z.array(rankingSchema).optional(),
    rankCorrelations: z.array(rankCorrelationSchema).optional(),
    leakageShifts: z.array(leakageShiftSchema).optional(),
    drift: z.array(driftPointSchema).optional(),
    bigFive: z.array(bigFiveProfileSchema).optional(),
  })
  .strict();

export const evalResultSchema = z
  .object({
    eval: evalIdSchema,
    status: z.enum(['ok', 'skipped', 'failed']),
    reason: z.string().optional().describe('Why the eval was skipped or failed.'),
    /** subject name -> metrics. */
    subjects: z.record(z.string(), subjectMetricsSchema),
    /** Metrics over all subjects together (the classifier's held-out accuracy, macro-F1 over every subject's replies). */
    overall: subjectMetricsSchema.default({}),
    /** Judge verdicts that never parsed (dropped and counted). */
    unparsed: z.number().int().nonnegative().default(0),
    judgeAgreement: z.array(judgeAgreementSchema).default([]),
    plots: evalPlotsSchema.default({}),
    /** Every metric of every trained cell (persona, method, format) pooled over its seeds. */
    pooled: z.array(pooledCellSchema).default([]),
    /** Paired contrasts between the formats of a method and between methods, pooled over seeds. */
    contrasts: z.array(contrastSchema).default([]),
    /** Every metric of every steered or capped condition pooled over its seeds (present when the run steered). */
    pooledSteering: z.array(pooledSteeringSchema).optional(),
    /** Eval-specific notes: the classifier's backend, the judge used, data files. */
    notes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  })
  .strict();

export const subjectKindSchema = z.enum(['base', 'prompted', 'trained', 'steered', 'capped', 'other']);
export type SubjectKind = z.infer<typeof subjectKindSchema>;

export const evalSummarySchema = z
  .object({
    version: z.literal(1),
    experiment: z.string(),
    createdAt: z.string(),
    seed: z.number().int(),
    confidence: z.number(),
    baseline: z.string().nullable().describe('Name of the base subject, when present.'),
    prompted: z.string().nullable().describe('Name of the first constitution\'s prompted subject, when present.'),
    promptedByPersona: z.record(z.string(), z.string()).default({}).describe('Persona name -> its own prompted subject: the baseline its trained, steered and capped subjects are compared with.'),
    subjects: z.array(
      z
        .object({
          name: z.string(),
          model: z.string(),
          persona: z.string().nullable(),
          hasSystemPrompt: z.boolean(),
          kind: subjectKindSchema.optional().describe('What the subject is: the base model, a persona prompted on it, a trained cell, a steered or capped model, or a run.subjects entry.'),
          cell: cellSchema.nullable().optional().describe('For a trained subject, its cell identity (persona, method, format, seed, backend, options hash).'),
          steering: steeringSchema.optional().describe('For a steered or capped subject: persona, trait, layer, coefficient, capping band and options hash.'),
        })
        .strict(),
    ),
    judges: z.array(z.string()),
    /** Per judge, this invocation's calls: verdicts parsed first time, after re-asks, never; scores by logprobs, by text, missing. */
    judgeTallies: z.record(z.string(), z.record(z.string(), z.number())).default({}),
    judgeProbes: z
      .record(z.string(), z.object({ readable: z.boolean(), scores: z.array(z.number().nullable()) }).strict())
      .default({})
      .describe('Per judge: its scores of three questions with known answers (85, 12, 3) and whether they read right.'),
    evals: z.array(evalResultSchema),
  })
  .strict();

export type Interval = z.infer<typeof intervalSchema>;
export type Comparison = z.infer<typeof comparisonSchema>;
export type Metric = z.infer<typeof metricSchema>;
export type SubjectMetrics = z.infer<typeof subjectMetricsSchema>;
export type JudgeAgreement = z.infer<typeof judgeAgreementSchema>;
export type Confusion = z.infer<typeof confusionSchema>;
export type Ranking = z.infer<typeof rankingSchema>;
export type RankCorrelation = z.infer<typeof rankCorrelationSchema>;
export type LeakageShift = z.infer<typeof leakageShiftSchema>;
export type DriftPoint = z.infer<typeof driftPointSchema>;
export type BigFiveProfile = z.infer<typeof bigFiveProfileSchema>;
export type PooledEstimate = z.infer<typeof pooledEstimateSchema>;
export type PooledCell = z.infer<typeof pooledCellSchema>;
export type PooledSteering = z.infer<typeof pooledSteeringSchema>;
export type Contrast = z.infer<typeof contrastSchema>;
export type EvalPlots = z.infer<typeof evalPlotsSchema>;
export type EvalResult = z.infer<typeof evalResultSchema>;
export type EvalSummary = z.infer<typeof evalSummarySchema>;
