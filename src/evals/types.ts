/**
 * The one small interface every evaluation implements (inspect_ai style): a dataset of samples per
 * subject, a solver that runs the subject on a sample, a scorer (judge or code) and an aggregate that
 * turns the scored records of every subject into an EvalResult with n, intervals and comparisons.
 */
import { z, type ZodType } from 'zod';
import type { Constitution } from '../constitution/index.js';
import type { CellIdentity, SteeringIdentity } from '../core/cell.js';
import type { RunDir } from '../core/journal.js';
import type { ChatMessage, ChatModel, SamplingParams } from '../providers/types.js';
import type { EvalJudge, JudgeTallies } from './judging.js';
import type { EvalId, EvalOptions } from './options.js';
import type { PersonaClassifierHandle } from './persona-classifier-training.js';
import { hashSeed, type BootstrapOptions } from './stats.js';
import { cellOf } from './subjects.js';
import type { EvalResult, SubjectKind } from './summary.js';
import type { JournaledSubject } from './records.js';

/** A model under evaluation: base, base + constitution ("prompted"), an adapter, a steered variant, an endpoint. */
export interface Subject {
  name: string;
  model: ChatModel;
  /** Prepended to every conversation (the prompted baseline's constitution prompt). */
  systemPrompt?: string;
  /** Name of the constitution this subject is meant to embody; none for the base model. */
  persona?: string;
  /** What the subject is; derived from its name and persona when absent (see kindOf). */
  kind?: SubjectKind;
  /** A trained subject's cell; derived from a `<persona>.<method>.seed-<n>` name when absent (see cellOf). */
  cell?: CellIdentity;
  /** A steered or capped subject's identity (the steer stage's vector, layer, coefficient, capping). */
  steering?: SteeringIdentity;
}

export type { SubjectKind };

export interface EvalProgress {
  eval: EvalId;
  /** Subject name, or a phase such as "classifier training". */
  subject: string;
  done: number;
  total: number;
}

export interface EvalContext {
  experimentName: string;
  /** The experiment file, for errors about its `eval:` section. */
  file: string;
  constitutions: Constitution[];
  subjects: Subject[];
  /** Zero, one or two judges; the first decides, the second is compared with it (judge validity). */
  judges: EvalJudge[];
  /** Plays the user in multi-turn evals; default: the base subject's model. */
  userSimulator?: ChatModel;
  options: EvalOptions;
  seed: number;
  runDir: RunDir;
  /** Directory that relative data files in the options are resolved against (the experiment file's). */
  baseDir: string;
  base?: Subject;
  /** The first constitution's prompted subject (the summary's `prompted`); comparisons use promptedFor. */
  prompted?: Subject;
  /** Each persona's own prompted subject (base + that constitution's system prompt), by persona name. */
  promptedByPersona: Map<string, Subject>;
  onProgress?: (p: EvalProgress) => void;
  /** The persona classifier, trained once on first use and shared by the classifier and prefill evals. */
  personaClassifier(): Promise<PersonaClassifierHandle>;
}

/** Scored record of one sample, as journaled (evals/<eval>/<subject>.jsonl; see records.ts). */
export interface ScoredRecord<Sample, Solved, Score> {
  /** Null only in records of journals written before records named their subject, read without one. */
  subject: JournaledSubject | null;
  sample: Sample;
  solved: Solved;
  score: Score;
  /** The judge calls made for this sample, per judge name (see withJudgeTallies). */
  judgeTallies?: JudgeTallies;
}

export interface SubjectRecords<Sample, Solved, Score> {
  subject: Subject;
  records: Map<string, ScoredRecord<Sample, Solved, Score>>;
}

/** What an eval's aggregate returns; pooled cells and contrasts default to none. */
export type EvalBody = Omit<EvalResult, 'eval' | 'status' | 'reason' | 'pooled' | 'contrasts'> & Partial<Pick<EvalResult, 'pooled' | 'contrasts'>>;

export interface EvalTask<Sample, Solved, Score> {
  samples(subject: Subject): Sample[];
  /** Stable key of a sample; samples with the same key pair up across subjects. */
  key(sample: Sample): string;
  solve(subject: Subject, sample: Sample): Promise<Solved>;
  score(subject: Subject, sample: Sample, solved: Solved): Promise<Score>;
  aggregate(results: SubjectRecords<Sample, Solved, Score>[]): Promise<EvalBody>;
}

export interface Eval {
  id: EvalId;
  description: string;
  /** The schemas of a journaled record's parts: its writer (runEvals) and every reader parse with them. */
  records: { sample: ZodType; solved: ZodType; score: ZodType };
  /** Loads and validates the eval's data files (throws InputError): runEvals calls it for every eval before any runs. */
  loadData?(ctx: EvalContext): unknown;
  /** Builds the task, or returns a reason to skip (no judge, no facts, ...). */
  prepare(ctx: EvalContext): Promise<EvalTask<any, any, any> | { skip: string }>;
}

/** What most solvers produce: the subject's one reply. */
export const replySchema = z.object({ reply: z.string() }).strict();
export type Reply = z.infer<typeof replySchema>;

/** Each item `n` times, with its sample index (several samples of one prompt). */
export function repeated<T extends object>(items: readonly T[], n: number): (T & { index: number })[] {
  return items.flatMap((item) => Array.from({ length: n }, (_, index) => ({ ...item, index })));
}

/** Sends a conversation to a subject, its system prompt first. */
export async function ask(subject: Subject, messages: ChatMessage[], params: SamplingParams, systemPrompt = subject.systemPrompt): Promise<string> {
  const full: ChatMessage[] = systemPrompt ? [{ role: 'system', content: systemPrompt }, ...messages] : messages;
  const result = await subject.model.chat({ ...params, messages: full });
  return result.choices[0]?.text ?? '';
}

/**
 * The seed a subject's samples derive from: the eval seed, and with eval.seedVaries a trained subject's
 * cell seed (or a steered or capped subject's steer seed) too, so that the seeds of a cell are
 * independent replicates of data, training and evaluation alike (each seed's replies are sampled
 * anew), not one draw of eval samples reused.
 */
export function samplingSeed(ctx: EvalContext, subject: Subject): number {
  const seed = ctx.options.seedVaries ? (subject.steering?.seed ?? cellOf(subject)?.seed) : undefined;
  return seed !== undefined ? hashSeed(ctx.seed, 'cell-seed', seed) : ctx.seed;
}

/**
 * Sampling parameters of one sample: the eval's temperature and length, and a seed derived from the
 * subject's sampling seed and the sample's repeat index, so a rerun asks exactly what the first run asked.
 */
export function sampleParams(ctx: EvalContext, subject: Subject, o: { temperature: number; maxTokens: number }, index: number): SamplingParams {
  return { temperature: o.temperature, maxTokens: o.maxTokens, seed: hashSeed(samplingSeed(ctx, subject), index) };
}

/**
 * The solver most evals share (inspect_ai's `generate()`): the sample's prompt as one user turn after
 * the subject's system prompt, sampled with the sample's own parameters; the reply is the result.
 */
export function singleTurn<S extends { index: number }>(ctx: EvalContext, o: { temperature: number; maxTokens: number }, promptOf: (sample: S) => string): (subject: Subject, sample: S) => Promise<Reply> {
  return async (subject, sample) => ({ reply: await ask(subject, [{ role: 'user', content: promptOf(sample) }], sampleParams(ctx, subject, o, sample.index)) });
}

export function bootstrapOptions(ctx: EvalContext, seed: number): BootstrapOptions {
  return { resamples: ctx.options.bootstrap, confidence: ctx.options.confidence, seed };
}

/**
 * The constitutions a subject is measured against: its own persona, or every constitution for subjects
 * without one (the base model), so that each persona subject pairs up with the base on the same keys.
 */
export function targetsOf(ctx: EvalContext, subject: Subject): Constitution[] {
  const own = ctx.constitutions.find((c) => c.name === subject.persona);
  return own ? [own] : ctx.constitutions;
}

/**
 * The baselines a subject is compared with: the base model, and the prompted subject of its own
 * persona (never another persona's). The base has none; a prompted subject only the base.
 */
export function baselinesOf(ctx: EvalContext, subject: Subject): Subject[] {
  if (subject.name === ctx.base?.name) return [];
  const own = subject.persona !== undefined ? ctx.promptedByPersona.get(subject.persona) : undefined;
  const ownIsMe = own?.name === subject.name;
  return [ctx.base, ownIsMe ? undefined : own].filter((s): s is Subject => !!s);
}
