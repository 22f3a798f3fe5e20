/**
 * The judge as the evals see it: a named model that returns typed verdicts or 0-N scores, with every
 * raw reply kept for the journal (audit). Parsing, bounded re-asks, the unparsed tally and the docs/protocols.md §4
 * log-probability weighted score (missing under 0.25 mass on numbers) are the providers' judge.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { z, type ZodType } from 'zod';
import { judge as askJudge, JudgeTally, scoreWithLogprobs } from '../providers/judge.js';
import type { ChatModel } from '../providers/types.js';
import type { RunDir } from '../core/journal.js';
import type { EvalOptions } from './options.js';

export interface Judged<T> {
  /** null when no reply parsed (dropped and counted) or the numeric mass rule left it missing. */
  value: T | null;
  /** Every raw reply, in order, for the audit trail. */
  raw: string[];
}

export interface EvalJudge {
  readonly name: string;
  readonly model: ChatModel;
  /**
   * What this judge did over the run: parsed, re-asked and unparsed verdicts, scores and how each was
   * read. Calls made inside a journaled item count into that item (see withJudgeTallies) and reach
   * this total through addJournaledTallies, so a resumed run reports what an uninterrupted one would.
   */
  readonly tally: JudgeTally;
  /** A JSON verdict matching `schema`; re-asked up to `reasks` times when it does not parse. */
  verdict<T>(prompt: string, schema: ZodType<T>): Promise<Judged<T>>;
  /** A number in [0, max]: probability-weighted over number tokens when log-probabilities come back. */
  score(prompt: string, max: number): Promise<Judged<number>>;
}

/** Judge calls per judge name, as journaled with the item that made them. */
export const judgeTalliesSchema = z.record(z.string(), z.record(z.string(), z.number()));
export type JudgeTallies = z.infer<typeof judgeTalliesSchema>;

/** The tallies of the journaled item whose work is running (per judge name), if any. */
const itemTallies = new AsyncLocalStorage<Map<string, JudgeTally>>();

/**
 * Runs one journaled item's work and returns its value with `judgeTallies`: the judge calls made
 * inside it (omitted when none), to be journaled with the item.
 */
export async function withJudgeTallies<T extends object>(work: () => Promise<T>): Promise<T & { judgeTallies?: JudgeTallies }> {
  const tallies = new Map<string, JudgeTally>();
  const value = await itemTallies.run(tallies, work);
  if (tallies.size === 0) return value;
  return { ...value, judgeTallies: Object.fromEntries([...tallies].map(([name, t]) => [name, t.snapshot()])) };
}

/** Adds journaled items' judge tallies (old and new alike) into the judges' run totals. */
export function addJournaledTallies(judges: readonly EvalJudge[], records: Iterable<{ judgeTallies?: JudgeTallies }>): void {
  for (const record of records) {
    for (const [name, counts] of Object.entries(record.judgeTallies ?? {})) judges.find((j) => j.name === name)?.tally.add(counts);
  }
}

export function createJudge(name: string, model: ChatModel, o: EvalOptions['judge'] & { minNumericMass: number }): EvalJudge {
  const tally = new JudgeTally();
  // Inside a journaled item, calls count into the item; outside any, straight into the run total.
  const tallyOfCall = () => {
    const item = itemTallies.getStore();
    if (!item) return tally;
    if (!item.has(name)) item.set(name, new JudgeTally());
    return item.get(name)!;
  };
  return {
    name,
    model,
    tally,
    async verdict<T>(prompt: string, schema: ZodType<T>): Promise<Judged<T>> {
      const r = await askJudge(model, { prompt, schema, maxReasks: o.reasks, temperature: o.temperature, maxTokens: o.maxTokens, tally: tallyOfCall() });
      return { value: r.verdict ?? null, raw: r.raw };
    },
    async score(prompt: string, max: number): Promise<Judged<number>> {
      const r = await scoreWithLogprobs(model, prompt, { min: 0, max, minMass: o.minNumericMass, temperature: o.temperature, tally: tallyOfCall() });
      return { value: r.score ?? null, raw: [r.raw] };
    },
  };
}

/** Every judge's verdict on one item: the first judge's value decides; all raw replies are kept. */
export interface Panel<T> {
  value: T | null;
  byJudge: Record<string, T | null>;
  raw: Record<string, string[]>;
}

export const panelSchema = <T>(value: ZodType<T>) =>
  z.object({ value: value.nullable(), byJudge: z.record(z.string(), value.nullable()), raw: z.record(z.string(), z.array(z.string())) });

export async function askPanel<T>(judges: readonly EvalJudge[], ask: (judge: EvalJudge) => Promise<Judged<T>>): Promise<Panel<T>> {
  const results = await Promise.all(judges.map(ask));
  const byJudge: Record<string, T | null> = {};
  const raw: Record<string, string[]> = {};
  judges.forEach((j, i) => {
    byJudge[j.name] = results[i].value;
    raw[j.name] = results[i].raw;
  });
  return { value: results[0]?.value ?? null, byJudge, raw };
}

/** Questions with known numeric answers, asked of every judge once per run before any eval. */
const PROBES = [
  { prompt: 'What is 40 + 45? Answer with the number only.', answer: 85 },
  { prompt: 'What is 6 + 6? Answer with the number only.', answer: 12 },
  { prompt: 'What is 100 - 97? Answer with the number only.', answer: 3 },
];

export const judgeProbeSchema = z.object({ readable: z.boolean(), scores: z.array(z.number().nullable()) }).strict();
export type JudgeProbe = z.infer<typeof judgeProbeSchema>;

/**
 * Can the judge's 0-100 scores be read? Its scores of questions with known answers must be within 1
 * of them: a tokenizer the score reader misreads, or a reasoning model that never gets to the number,
 * fails here instead of silently skewing every score. Journaled: a resumed run does not ask again.
 */
export async function probeJudge(judge: EvalJudge, runDir: RunDir): Promise<JudgeProbe> {
  const journal = runDir.journal('evals/judge-probe', z.object({ score: z.number().nullable(), judgeTallies: judgeTalliesSchema.optional() }).strict());
  const scores = await journal.runAll(
    PROBES,
    (p) => `${judge.name}/${p.answer}`,
    (p) => withJudgeTallies(async () => ({ score: (await judge.score(p.prompt, 100)).value })),
    { concurrency: PROBES.length },
  );
  addJournaledTallies([judge], scores);
  const values = scores.map((s) => s.score);
  return { readable: values.every((v, i) => v !== null && Math.abs(v - PROBES[i].answer) <= 1), scores: values };
}
