/**
 * Persona vector extraction (docs/protocols.md §5): for every contrastive pair of system prompts and every
 * extraction question, `rollouts` replies under the positive and under the negative prompt, judged for trait expression and coherence; a (pair, question, rollout) is kept when the
 * positive reply scores >= 50, the negative < 50 and both are coherent (>= 50). The vector at each
 * layer is the mean over kept positive replies minus the mean over kept negative replies of the
 * residual stream averaged over the reply tokens.
 */
import { z } from 'zod';
import type { Judge } from '../providers/judge.js';
import type { LayerActivations, SteerEngine } from './engine.js';
import { replyScoreSchema, runKeyed, scoreReplies, type RunSettings } from './judging.js';
import { meanDifference } from './math.js';
import type { ExtractOptions, FilterOptions } from './options.js';
import { splitQuestions, type TraitPrompts } from './prompts.js';
import type { LayerVectors } from './vectors.js';

export type Sign = 'positive' | 'negative';

export interface ScoredRollout {
  pair: number;
  question: number;
  rollout: number;
  sign: Sign;
  text: string;
  /** Generated token ids (the prompt is re-rendered from the pair and question). */
  reply: number[];
  expression: number | null;
  coherence: number | null;
}

export interface KeptPair {
  positive: ScoredRollout;
  negative: ScoredRollout;
}

/** Why rollouts were left out, for the report. */
export interface FilterCounts {
  candidates: number;
  kept: number;
  positiveTooWeak: number;
  negativeTooStrong: number;
  incoherent: number;
  missingScore: number;
  emptyReply: number;
}

/** docs/protocols.md §5's filter over matched positive/negative rollouts (first failing reason counted). */
export function keepPairs(rollouts: readonly ScoredRollout[], f: FilterOptions): { kept: KeptPair[]; counts: FilterCounts } {
  const bySlot = new Map<string, Partial<Record<Sign, ScoredRollout>>>();
  for (const r of rollouts) {
    const key = `${r.pair}/${r.question}/${r.rollout}`;
    bySlot.set(key, { ...bySlot.get(key), [r.sign]: r });
  }
  const counts: FilterCounts = { candidates: 0, kept: 0, positiveTooWeak: 0, negativeTooStrong: 0, incoherent: 0, missingScore: 0, emptyReply: 0 };
  const kept: KeptPair[] = [];
  for (const { positive, negative } of bySlot.values()) {
    if (!positive || !negative) continue;
    counts.candidates++;
    if (positive.reply.length === 0 || negative.reply.length === 0) counts.emptyReply++;
    else if ([positive.expression, negative.expression, positive.coherence, negative.coherence].some((s) => s === null)) counts.missingScore++;
    else if (positive.expression! < f.positiveMin) counts.positiveTooWeak++;
    else if (negative.expression! >= f.negativeBelow) counts.negativeTooStrong++;
    else if (positive.coherence! < f.coherenceMin || negative.coherence! < f.coherenceMin) counts.incoherent++;
    else kept.push({ positive, negative });
  }
  counts.kept = kept.length;
  return { kept, counts };
}

/** Per layer, mean(positive) - mean(negative) of the given activations. */
export function vectorsFromActivations(positive: readonly LayerActivations[], negative: readonly LayerActivations[], layers: readonly number[]): Float32Array[] {
  return layers.map((l) =>
    meanDifference(
      positive.map((a) => a.get(l)!),
      negative.map((a) => a.get(l)!),
    ),
  );
}

const rolloutGroupSchema = z.object({ positive: z.array(z.object({ text: z.string(), reply: z.array(z.number().int()) })), negative: z.array(z.object({ text: z.string(), reply: z.array(z.number().int()) })) });

export interface ExtractInput extends RunSettings {
  engine: SteerEngine;
  judge: Judge;
  prompts: TraitPrompts;
  options: ExtractOptions;
  onProgress?: (phase: 'rollouts' | 'judge' | 'activations', done: number, total: number) => void;
}

export interface ExtractResult {
  vector: LayerVectors;
  rollouts: ScoredRollout[];
  kept: KeptPair[];
  counts: FilterCounts;
  /** The evaluation questions (not used to extract). */
  evaluate: string[];
}

export function conversation(system: string | undefined, question: string) {
  return [...(system === undefined ? [] : [{ role: 'system' as const, content: system }]), { role: 'user' as const, content: question }];
}

export async function extractPersonaVector(input: ExtractInput): Promise<ExtractResult> {
  const { engine, prompts, options: o } = input;
  const { extract, evaluate } = splitQuestions(prompts, o.extractQuestions);
  const prefix = input.journalPrefix ?? 'steer';
  const seed = input.seed ?? 1;

  const groups = prompts.pairs.flatMap((pair, p) => extract.map((question, q) => ({ p, q, pair, question })));
  const generated = await runKeyed(
    groups,
    (g) => `${g.p}/${g.q}`,
    async (g) => {
      const opts = { n: o.rollouts, temperature: o.temperature, maxTokens: o.maxTokens, seed: seed * 1_000_003 + (g.p * extract.length + g.q) * 2 * o.rollouts, batchSize: input.batchSize };
      const [positive, negative] = await engine.rollouts([conversation(g.pair.positive, g.question), conversation(g.pair.negative, g.question)], opts);
      const keep = (rs: typeof positive) => rs.map((r) => ({ text: r.text, reply: r.reply }));
      return { positive: keep(positive), negative: keep(negative) };
    },
    { concurrency: 1, journal: input.runDir?.journal(`${prefix}/rollouts`, rolloutGroupSchema), onProgress: (d, t) => input.onProgress?.('rollouts', d, t) },
  );

  const unscored = groups.flatMap((g, i) =>
    (['positive', 'negative'] as const).flatMap((sign) => generated[i][sign].map((r, rollout) => ({ pair: g.p, question: g.q, rollout, sign, text: r.text, reply: r.reply, questionText: g.question }))),
  );
  const scores = await scoreReplies(
    input.judge,
    prompts.trait,
    unscored.map((r) => ({ key: `${r.pair}/${r.question}/${r.rollout}/${r.sign}`, question: r.questionText, reply: r.text })),
    {
      concurrency: input.concurrency,
      minMass: input.minMass,
      journal: input.runDir?.journal(`${prefix}/scores`, replyScoreSchema),
      onProgress: (d, t) => input.onProgress?.('judge', d, t),
    },
  );
  const rollouts: ScoredRollout[] = unscored.map(({ questionText: _q, ...r }, i) => ({ ...r, ...scores[i] }));
  const { kept, counts } = keepPairs(rollouts, o.filter);
  if (kept.length === 0) {
    throw new Error(
      `no contrastive pair passed the filter for the trait "${prompts.trait}" (${JSON.stringify(counts)}): the positive prompts must elicit the trait (>= ${o.filter.positiveMin}), the negative ones suppress it (< ${o.filter.negativeBelow}), both coherently (>= ${o.filter.coherenceMin})`,
    );
  }

  const rowOf = (r: ScoredRollout) => ({ prompt: engine.render(conversation(prompts.pairs[r.pair][r.sign], extract[r.question])), reply: r.reply });
  const layers = engine.allLayers;
  input.onProgress?.('activations', 0, kept.length);
  const pos = await engine.replyMeans(kept.map((k) => rowOf(k.positive)), layers, input.batchSize);
  const neg = await engine.replyMeans(kept.map((k) => rowOf(k.negative)), layers, input.batchSize);
  input.onProgress?.('activations', kept.length, kept.length);
  const vector: LayerVectors = {
    kind: 'persona',
    trait: prompts.trait,
    modelId: engine.modelId,
    layers,
    vectors: vectorsFromActivations(pos, neg, layers),
    nPositive: kept.length,
    nNegative: kept.length,
    meta: { pairs: prompts.pairs.length, extractQuestions: extract.length, rollouts: o.rollouts, candidates: counts.candidates, temperature: o.temperature },
  };
  return { vector, rollouts, kept, counts, evaluate };
}
