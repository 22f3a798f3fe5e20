/**
 * Trait expression and coherence of replies (docs/protocols.md §4), with the evals' judge prompts: 0-100,
 * log-probability weighted where the judge returns log-probabilities, missing (null) under the
 * minimum mass on numbers. Optionally journaled, so a killed run re-asks nothing it already has.
 */
import pLimit from 'p-limit';
import { z } from 'zod';
import type { Journal, RunDir } from '../core/journal.js';
import { coherenceJudgePrompt, expressionJudgePrompt } from '../evals/trait-expression.js';
import type { Judge } from '../providers/judge.js';

export const replyScoreSchema = z.object({ expression: z.number().nullable(), coherence: z.number().nullable() }).strict();
export type ReplyScore = z.infer<typeof replyScoreSchema>;

/** What every judged step of the stage takes besides its own inputs. */
export interface RunSettings {
  seed?: number;
  /** Judge calls in flight. */
  concurrency?: number;
  /** Rows per engine batch. */
  batchSize?: number;
  /** docs/protocols.md §4: 0.25. */
  minMass?: number;
  /** With a run directory, rollouts and scores are journaled under journals/<journalPrefix>/. */
  runDir?: RunDir;
  journalPrefix?: string;
}

export interface ScoreSettings {
  concurrency?: number;
  /** docs/protocols.md §4: 0.25. */
  minMass?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Runs `work` on every item, `concurrency` at a time; with a journal, items already journaled are not run again. */
export async function runKeyed<I, T>(
  items: readonly I[],
  keyOf: (item: I) => string,
  work: (item: I) => Promise<T>,
  o: { concurrency?: number; journal?: Journal<T>; onProgress?: (done: number, total: number) => void } = {},
): Promise<T[]> {
  if (o.journal) return o.journal.runAll(items, keyOf, work, { concurrency: o.concurrency, onProgress: o.onProgress });
  const limit = pLimit(o.concurrency ?? 8);
  let done = 0;
  return Promise.all(
    items.map((item) =>
      limit(async () => {
        const value = await work(item);
        o.onProgress?.(++done, items.length);
        return value;
      }),
    ),
  );
}

export interface ReplyToScore {
  key: string;
  question: string;
  reply: string;
}

/** Expression of `trait` and coherence for every reply (journaled under the item keys when a journal is given). */
export function scoreReplies(judge: Judge, trait: string, items: readonly ReplyToScore[], s: ScoreSettings & { journal?: Journal<ReplyScore> } = {}): Promise<ReplyScore[]> {
  const minMass = s.minMass ?? 0.25;
  return runKeyed(
    items,
    (it) => it.key,
    async (it) => {
      const [expression, coherence] = await Promise.all([
        judge.score(expressionJudgePrompt(trait, it.question, it.reply), { min: 0, max: 100, minMass }),
        judge.score(coherenceJudgePrompt(it.question, it.reply), { min: 0, max: 100, minMass }),
      ]);
      return { expression: expression.score ?? null, coherence: coherence.score ?? null };
    },
    { concurrency: s.concurrency, journal: s.journal, onProgress: s.onProgress },
  );
}

/** Mean of the present values and how many there were (null when none). */
export function meanPresent(values: readonly (number | null)[]): { mean: number | null; n: number } {
  const present = values.filter((v): v is number => v !== null);
  return { mean: present.length ? present.reduce((a, b) => a + b, 0) / present.length : null, n: present.length };
}
