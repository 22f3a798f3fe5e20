/**
 * GRPO rewards (docs/protocols.md §3): several weighted signals, each a judge rubric scored by any ChatModel at a
 * configurable granularity, a regular expression, or a classifier registered in code. Every signal
 * is brought to [0, 1] (score / max; inverted when asked) before weighting, so the weights mean the
 * same whatever the scale; advantages are normalised per group anyway.
 */
import { scoreWithLogprobs } from '../providers/judge.js';
import type { ChatModel } from '../providers/types.js';
import type { RewardSignal } from './options.js';

/** A classifier or code reward: the prompt and the reply in, a score in [0, 1] out. */
export type Classifier = (prompt: string, reply: string) => number | Promise<number>;

export interface RewardContext {
  /** The judge for `judge` signals (any provider: an endpoint or the local engine). */
  judge?: ChatModel;
  classifiers?: Record<string, Classifier>;
  /** Default granularity of judge signals. */
  granularity: 'binary' | number;
}

export interface Reward {
  total: number;
  /** Per signal, in [0, 1] (NaN when a judge gave no usable score). */
  components: Record<string, number>;
  /** Signals without a usable score: the total is renormalised over the others, never penalised. */
  missing: number;
}

/** What a reply answers: one user message, or a conversation (its last turn the user's) without system turns. */
export type RewardPrompt = string | readonly { role: string; content: string }[];

export type RewardFunction = (prompt: RewardPrompt, reply: string) => Promise<Reward>;

/** The turns of a prompt other than system ones. */
const turnsOf = (prompt: RewardPrompt) => (typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : prompt.filter((m) => m.role !== 'system'));

/**
 * A prompt as text for classifiers and judges: the user's message alone, or, when earlier turns came
 * before it, the conversation with its speakers (a consistency judge must see the earlier lines).
 */
export function promptText(prompt: RewardPrompt): string {
  const turns = turnsOf(prompt);
  if (turns.length === 1) return turns[0].content;
  return turns.map((m) => `${m.role === 'assistant' ? 'Assistant' : 'User'}: ${m.content}`).join('\n\n');
}

/** The judge's prompt for one signal: the rubric, then the exchange (or the conversation so far), then the scale. */
export function judgePrompt(rubric: string, prompt: RewardPrompt, reply: string, max: number): string {
  const scale = max === 1 ? 'Answer 1 if the reply satisfies the criterion, 0 if it does not.' : `Score it from 0 (not at all) to ${max} (completely).`;
  const tag = turnsOf(prompt).length === 1 ? 'user_message' : 'conversation';
  return `Criterion: ${rubric}\n\n<${tag}>\n${promptText(prompt)}\n</${tag}>\n\n<reply>\n${reply}\n</reply>\n\n${scale}`;
}

export function makeRewardFunction(signals: readonly RewardSignal[], ctx: RewardContext): RewardFunction {
  for (const s of signals) {
    if (s.kind === 'judge' && !ctx.judge) throw new Error(`reward signal ${s.name}: a judge signal needs a judge model (models.judge)`);
    if (s.kind === 'classifier' && !ctx.classifiers?.[s.classifier!]) {
      throw new Error(`reward signal ${s.name}: no classifier registered as "${s.classifier}" (have: ${Object.keys(ctx.classifiers ?? {}).join(', ') || 'none'})`);
    }
  }
  const patterns = new Map(signals.filter((s) => s.kind === 'regex').map((s) => [s.name, new RegExp(s.pattern!, 'i')]));
  const scoreOne = async (s: RewardSignal, prompt: RewardPrompt, reply: string): Promise<number> => {
    switch (s.kind) {
      case 'regex':
        return patterns.get(s.name)!.test(reply) ? 1 : 0;
      case 'classifier':
        return Math.min(1, Math.max(0, await ctx.classifiers![s.classifier!](promptText(prompt), reply)));
      case 'judge': {
        const g = s.granularity ?? ctx.granularity;
        const max = g === 'binary' ? 1 : g;
        const r = await scoreWithLogprobs(ctx.judge!, judgePrompt(s.rubric!, prompt, reply, max), { min: 0, max, temperature: 0 });
        return r.score === undefined ? Number.NaN : r.score / max;
      }
    }
  };
  return async (prompt, reply) => {
    const values = await Promise.all(signals.map((s) => scoreOne(s, prompt, reply)));
    const components: Record<string, number> = {};
    let total = 0;
    let present = 0;
    let missing = 0;
    signals.forEach((s, i) => {
      const v = s.invert && !Number.isNaN(values[i]) ? 1 - values[i] : values[i];
      components[s.name] = v;
      if (Number.isNaN(v)) missing++;
      else {
        total += s.weight * v;
        present += s.weight;
      }
    });
    // A missing score is not a zero: the weights of the signals present are scaled back to their sum.
    // With none present the total is NaN, and the rollout gets no advantage (groupAdvantages).
    const weights = signals.reduce((a, s) => a + s.weight, 0);
    return { total: present > 0 ? (total * weights) / present : missing > 0 ? Number.NaN : total, components, missing };
  };
}

/**
 * Group-normalised advantages (r - mean) / (std + eps), std the sample standard deviation (as TRL).
 * A reward that could not be scored (NaN) is left out of the group's statistics and gets advantage 0.
 */
export function groupAdvantages(rewards: readonly number[], eps: number): number[] {
  const scored = rewards.filter((r) => !Number.isNaN(r));
  const n = scored.length;
  const mean = n ? scored.reduce((a, b) => a + b, 0) / n : 0;
  const variance = n > 1 ? scored.reduce((a, r) => a + (r - mean) ** 2, 0) / (n - 1) : 0;
  const std = Math.sqrt(variance);
  return rewards.map((r) => (Number.isNaN(r) ? 0 : (r - mean) / (std + eps)));
}
