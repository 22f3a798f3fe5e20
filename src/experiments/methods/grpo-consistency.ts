/**
 * `grpo-consistency` (docs/research.md §7): GRPO whose reward is multi-turn consistency, two of the
 * drift eval's measures as judge verdicts on each rollout: prompt-to-line (the reply does not
 * contradict the persona's traits and facts) and line-to-line (it does not contradict what the
 * assistant said earlier in the conversation). Prompts are prefixes of the persona's
 * self-conversations (the data stage's `interaction` dataset) cut before an assistant line, so every
 * rollout continues a conversation with a history to stay consistent with.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Constitution } from '../../constitution/index.js';
import { writeFileAtomic } from '../../core/journal.js';
import { personaSheet } from '../../evals/drift.js';
import { readJsonl, sftChatRowSchema } from '../../train/data.js';
import type { ConsistencyOptions, RewardSignal } from '../../train/options.js';
import type { TrainingMethod } from './types.js';

type Turn = { role: string; content: string };

/**
 * Every prefix of the conversations that ends in a user turn followed by an assistant line and holds
 * at least `minHistory` earlier assistant lines; `count` of them, drawn by a hash of the seed (the same
 * prefixes for the same seed, other ones for another).
 */
export function conversationPrefixes(conversations: readonly (readonly Turn[])[], o: { count: number; minHistory: number; seed: number }): Turn[][] {
  const all: { key: string; turns: Turn[] }[] = [];
  conversations.forEach((turns, c) => {
    const plain = turns.filter((t) => t.role !== 'system');
    plain.forEach((t, i) => {
      const earlier = plain.slice(0, i).filter((x) => x.role === 'assistant').length;
      if (t.role === 'assistant' && i > 0 && plain[i - 1].role === 'user' && earlier >= o.minHistory) {
        all.push({ key: createHash('sha256').update(`${o.seed}/${c}/${i}`).digest('hex'), turns: plain.slice(0, i).map(({ role, content }) => ({ role, content })) });
      }
    });
  });
  return all
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .slice(0, o.count)
    .map((p) => p.turns);
}

/** The two consistency signals for one persona: binary verdicts of a contradiction, inverted (1 = consistent). */
export function consistencySignals(constitution: Constitution, o: ConsistencyOptions): RewardSignal[] {
  return [
    {
      name: 'prompt_to_line',
      weight: o.weights.promptToLine,
      kind: 'judge',
      granularity: 'binary',
      invert: true,
      rubric: `Does the reply contradict this description of the character who speaks as the Assistant (its traits or its facts)? Not mentioning something is not a contradiction.\n\n${personaSheet(constitution)}`,
    },
    {
      name: 'line_to_line',
      weight: o.weights.lineToLine,
      kind: 'judge',
      granularity: 'binary',
      invert: true,
      rubric: 'Does the reply contradict anything the Assistant said earlier in the conversation (facts, opinions, or who the Assistant is)?',
    },
  ];
}

export const grpoConsistencyMethod: TrainingMethod = {
  formats: () => [null],
  datasets: () => ['interaction'],
  // The judge's verdicts are the reward: a different judge trains a different cell. train.grpo's own rewards are not used.
  options: (train, _run, experiment) => {
    const { rewards: _, ...shape } = train.grpo;
    return { train: { grpo: shape, consistency: train.consistency }, models: { judge: experiment.models.judge ?? experiment.models.teacher ?? experiment.models.subject } };
  },
  async train({ backend, job, train, datasets, constitution, dir, cell, ctx }) {
    const conversations = readJsonl(datasets[0], sftChatRowSchema).map((r) => r.messages);
    const prefixes = conversationPrefixes(conversations, { count: train.consistency.prompts, minHistory: train.consistency.minHistory, seed: cell.seed });
    if (prefixes.length === 0) {
      throw new Error(`train: no conversation in ${datasets[0]} has a user turn after ${train.consistency.minHistory} assistant line(s): generate longer self-conversations (generate.interaction.turns) or lower train.consistency.minHistory`);
    }
    const dataset = join(dir, 'consistency-prompts.jsonl');
    writeFileAtomic(dataset, prefixes.map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
    const options = { ...train.grpo, rewards: consistencySignals(constitution, train.consistency) };
    return backend.train({ ...job, objective: 'grpo', options, dataset, judge: await ctx.model('judge') });
  },
};
