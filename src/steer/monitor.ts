/**
 * Monitoring with a persona vector (docs/protocols.md §5). All projections are scalar projections on the unit
 * direction v_l / |v_l| at one layer.
 * - projection vs expression: the last prompt token's activation, projected, against the judged
 *   trait expression of the reply that prompt produced; Pearson r with n and a Fisher-z interval.
 * - fine-tuning shift: (mean activation of the trained model - mean of the base) on the same prompts,
 *   projected, at every layer of the vector.
 * - data screening: per dataset row, the projection of the dataset reply minus that of the base
 *   model's own (greedy) reply to the same prompt; flagged at >= flagFraction * |v_l|, a fraction of
 *   the distance between trait-eliciting and trait-suppressing replies.
 */
import type { Judge } from '../providers/judge.js';
import type { ChatMessage } from '../providers/types.js';
import type { LayerActivations, SteerEngine } from './engine.js';
import { conversation } from './extract.js';
import { scoreReplies } from './judging.js';
import { type Correlation, meanVector, norm, pearsonInterval, project, subtract } from './math.js';
import type { TraitPrompts } from './prompts.js';
import { type LayerVectors, vectorAt } from './vectors.js';

export interface MonitorConversation {
  key: string;
  messages: ChatMessage[];
}

/** Each question with every positive and negative system prompt and with none: a spread of trait levels. */
export function monitorConversations(prompts: TraitPrompts, questions: readonly string[]): MonitorConversation[] {
  const systems: [string, string | undefined][] = [['none', undefined], ...prompts.pairs.flatMap((p, i): [string, string][] => [[`pos${i}`, p.positive], [`neg${i}`, p.negative]])];
  return questions.flatMap((q, qi) => systems.map(([name, system]) => ({ key: `${name}/${qi}`, messages: conversation(system, q) })));
}

export interface ProjectionPoint {
  key: string;
  projection: number;
  expression: number;
}

export interface ProjectionMonitor {
  layer: number;
  points: ProjectionPoint[];
  correlation: Correlation;
  /** Conversations whose reply got no expression score (left out of r). */
  missing: number;
}

export async function projectionVsExpression(input: {
  engine: SteerEngine;
  judge: Judge;
  vector: LayerVectors;
  layer: number;
  conversations: readonly MonitorConversation[];
  temperature?: number;
  maxTokens?: number;
  seed?: number;
  confidence?: number;
  concurrency?: number;
  batchSize?: number;
  minMass?: number;
}): Promise<ProjectionMonitor> {
  const { engine, layer } = input;
  const v = vectorAt(input.vector, layer);
  const prompts = input.conversations.map((c) => engine.render(c.messages));
  const activations = await engine.lastPromptToken(prompts, [layer], input.batchSize);
  const replies = await engine.rollouts(
    input.conversations.map((c) => c.messages),
    { temperature: input.temperature ?? 1, maxTokens: input.maxTokens, seed: input.seed, batchSize: input.batchSize },
  );
  const question = (m: ChatMessage[]) => m.filter((x) => x.role === 'user').at(-1)?.content ?? '';
  const scores = await scoreReplies(
    input.judge,
    input.vector.trait,
    input.conversations.map((c, i) => ({ key: c.key, question: question(c.messages), reply: replies[i][0].text })),
    { concurrency: input.concurrency, minMass: input.minMass },
  );
  const points: ProjectionPoint[] = [];
  input.conversations.forEach((c, i) => {
    const e = scores[i].expression;
    if (e !== null) points.push({ key: c.key, projection: project(activations[i].get(layer)!, v), expression: e });
  });
  const correlation = pearsonInterval(
    points.map((p) => p.projection),
    points.map((p) => p.expression),
    input.confidence,
  );
  return { layer, points, correlation, missing: input.conversations.length - points.length };
}

export interface LayerShift {
  layer: number;
  /** (mean trained - mean base) . v_l / |v_l| */
  shift: number;
  /** The same in units of |v_l| (1 = the whole positive-minus-negative distance). */
  relative: number;
}

/** Mean activation per layer over the given conversations, at the last prompt token or over each model's own greedy reply. */
async function meanActivations(engine: SteerEngine, conversations: readonly ChatMessage[][], layers: number[], position: 'lastPrompt' | 'reply', maxTokens: number, batchSize?: number): Promise<Float32Array[]> {
  let acts: LayerActivations[];
  if (position === 'lastPrompt') acts = await engine.lastPromptToken(conversations.map((c) => engine.render(c)), layers, batchSize);
  else {
    const rollouts = (await engine.rollouts(conversations, { temperature: 0, maxTokens, batchSize })).map((r) => r[0]).filter((r) => r.reply.length > 0);
    if (rollouts.length === 0) throw new Error(`fine-tuning shift: ${engine.modelId} gave only empty replies`);
    acts = await engine.replyMeans(rollouts, layers, batchSize);
  }
  return layers.map((l) => meanVector(acts.map((a) => a.get(l)!)));
}

/** docs/protocols.md §5 fine-tuning shift at every layer of the vector. */
export async function finetuningShift(input: {
  base: SteerEngine;
  trained: SteerEngine;
  vector: LayerVectors;
  conversations: readonly ChatMessage[][];
  position?: 'lastPrompt' | 'reply';
  maxTokens?: number;
  batchSize?: number;
}): Promise<LayerShift[]> {
  const { vector } = input;
  const position = input.position ?? 'lastPrompt';
  const [base, trained] = [
    await meanActivations(input.base, input.conversations, vector.layers, position, input.maxTokens ?? 200, input.batchSize),
    await meanActivations(input.trained, input.conversations, vector.layers, position, input.maxTokens ?? 200, input.batchSize),
  ];
  return vector.layers.map((layer, i) => {
    const shift = project(subtract(trained[i], base[i]), vector.vectors[i]);
    return { layer, shift, relative: shift / norm(vector.vectors[i]) };
  });
}

export interface ScreenRow {
  /** The conversation up to the reply (system and user turns). */
  messages: ChatMessage[];
  /** The dataset's assistant reply. */
  reply: string;
}

export interface ScreenResult {
  datasetProjection: number | null;
  baseProjection: number | null;
  /** datasetProjection - baseProjection; null when either reply is empty. */
  difference: number | null;
  flagged: boolean;
  baseReply: string;
}

/** docs/protocols.md §5 data screening, one result per row (same order). */
export async function screenData(input: {
  engine: SteerEngine;
  vector: LayerVectors;
  layer: number;
  rows: readonly ScreenRow[];
  flagFraction?: number;
  maxTokens?: number;
  batchSize?: number;
}): Promise<{ threshold: number; rows: ScreenResult[] }> {
  const { engine, layer } = input;
  const v = vectorAt(input.vector, layer);
  const threshold = (input.flagFraction ?? 0.5) * norm(v);
  const prompts = input.rows.map((r) => engine.render(r.messages));
  const own = (await engine.rollouts(input.rows.map((r) => r.messages), { temperature: 0, maxTokens: input.maxTokens, batchSize: input.batchSize })).map((r) => r[0]);
  const dataset = input.rows.map((r, i) => ({ prompt: prompts[i], reply: engine.encodeReply(r.reply) }));
  const projections = async (rows: { prompt: number[]; reply: number[] }[]) => {
    const nonEmpty = rows.map((r, i) => ({ r, i })).filter((x) => x.r.reply.length > 0);
    const acts = await engine.replyMeans(nonEmpty.map((x) => x.r), [layer], input.batchSize);
    const out: (number | null)[] = rows.map(() => null);
    nonEmpty.forEach((x, j) => (out[x.i] = project(acts[j].get(layer)!, v)));
    return out;
  };
  const [data, base] = [await projections(dataset), await projections(own.map((r) => ({ prompt: r.prompt, reply: r.reply })))];
  return {
    threshold,
    rows: input.rows.map((_, i) => {
      const difference = data[i] === null || base[i] === null ? null : data[i]! - base[i]!;
      return { datasetProjection: data[i], baseProjection: base[i], difference, flagged: difference !== null && difference >= threshold, baseReply: own[i].text };
    }),
  };
}
