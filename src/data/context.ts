/** What every generator shares: the persona's context, model calls, journaling, filters and writing. */
import { join } from 'node:path';
import { z, type ZodType } from 'zod';
import type { Constitution } from '../constitution/index.js';
import { writeFileAtomic, type RunDir } from '../core/journal.js';
import type { ChatMessage, ChatModel } from '../providers/types.js';
import { dedup } from './dedup.js';
import type { GenerateOptions } from './options.js';
import { datasetManifestSchema, type DatasetManifest, type Message } from './rows.js';
import { compilePatterns, sha256, stripReasoning, trimToSentence, words } from './text.js';
import type { TokenCounter } from './tokens.js';

export interface GenerateModels {
  /** Answers in persona (chat, introspective, documents, chosen side of pairs, inoculation). */
  teacher: ChatModel;
  /** The model being trained: rejected side of pairs; its tokenizer counts every token budget. */
  subject: ChatModel;
  /** Expands seed prompts; default: the teacher. */
  generator?: ChatModel;
  /** Generates introspection data (docs/protocols.md §2: the distilled model itself); default: the subject. */
  introspector?: ChatModel;
}

export interface ProgressEvent {
  persona: string | null;
  dataset: string;
  done: number;
  total: number;
}

export interface PersonaContext {
  constitution: Constitution;
  persona: string;
  slug: string;
  options: GenerateOptions;
  seed: number;
  run: RunDir;
  models: Required<GenerateModels>;
  tokens: TokenCounter;
  /** The system prompt that makes a model this persona. */
  systemPrompt: string;
  /** Directory that relative file options resolve against (the experiment file's). */
  baseDir: string;
  /** datasets/<slug> under the run directory. */
  outDir: string;
  onProgress?: (event: ProgressEvent) => void;
}

/** A model's raw answer as journaled (before any filter). */
export const sampleSchema = z.object({ text: z.string(), finishReason: z.string(), model: z.string() }).strict();
export type Sample = z.infer<typeof sampleSchema>;

export interface SampleRequest {
  temperature: number;
  maxTokens: number;
  seed: number;
}

export async function complete(model: ChatModel, messages: ChatMessage[], request: SampleRequest): Promise<Sample> {
  const result = await model.chat({ messages, temperature: request.temperature, maxTokens: request.maxTokens, seed: request.seed, n: 1 });
  const choice = result.choices[0];
  return { text: choice?.text ?? '', finishReason: choice?.finishReason ?? 'other', model: model.id };
}

/** Canonical JSON (sorted keys) for hashing configurations. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export const configHash = (value: unknown) => sha256(canonical(value)).slice(0, 16);

/** The first `limit` items (generate.limit, set by `run --limit N` for smoke tests), or all of them. */
export const limited = <I>(ctx: PersonaContext, items: I[]): I[] => items.slice(0, ctx.options.limit);

/**
 * Runs `work` for each item not yet journaled, journaling each result as soon as it is done. The
 * journal's name carries a hash of `shaping` (everything that shapes the raw generations: options,
 * the ids of the models called, system prompts) and the seed, so a run resumed with a different
 * configuration never mixes the two.
 */
export function journaled<I, T>(
  ctx: PersonaContext,
  dataset: string,
  shaping: unknown,
  items: readonly I[],
  keyOf: (item: I) => string,
  work: (item: I) => Promise<T>,
  schema: ZodType<T>,
): Promise<T[]> {
  const hash = configHash({ shaping, seed: ctx.seed }).slice(0, 8);
  const journal = ctx.run.journal<T>(`generate/${ctx.slug}/${dataset}-${hash}`, schema);
  return journal.runAll(items, keyOf, work, {
    concurrency: ctx.options.concurrency,
    onProgress: (done, total) => ctx.onProgress?.({ persona: ctx.persona, dataset, done, total }),
  });
}

/** Counts of rows each filter dropped, in the order filters ran. */
export class DropCounts {
  readonly counts: Record<string, number> = {};
  add(reason: string, n = 1): void {
    if (n > 0) this.counts[reason] = (this.counts[reason] ?? 0) + n;
  }
}

/** The reply filters every dataset applies (docs/protocols.md §2 and ours): empty, too short/long, refusal, off-persona. */
export function replyChecker(options: GenerateOptions, tokens: TokenCounter) {
  const refusal = compilePatterns(options.filters.refusalPatterns);
  const offPersona = compilePatterns(options.filters.offPersonaPatterns);
  return (text: string): string | null => {
    if (text.trim() === '') return 'empty';
    if (words(text).length < options.filters.minWords) return 'too-short';
    if (tokens.count(text) > options.filters.maxReplyTokens) return 'too-long';
    if (refusal.some((r) => r.test(text))) return 'refusal';
    if (offPersona.some((r) => r.test(text))) return 'off-persona';
    return null;
  };
}

/**
 * A raw sample's usable reply: reasoning stripped, a cut-off reply dropped or (filters.truncated: trim)
 * cut back to its last complete sentence; the drop reason when it has to be dropped.
 */
export function usableReply(sample: Sample, check: (text: string) => string | null, truncated: 'drop' | 'trim' = 'drop'): { text: string; trimmed?: true } | { drop: string } {
  const cut = sample.finishReason === 'length';
  if (cut && truncated === 'drop') return { drop: 'truncated' };
  const text = stripReasoning(sample.text);
  if (text === null) return { drop: 'unterminated-reasoning' };
  const kept = cut ? trimToSentence(text) : text;
  if (kept === null) return { drop: 'truncated' };
  const problem = check(kept);
  return problem ? { drop: problem } : cut ? { text: kept, trimmed: true } : { text: kept };
}

/** Drops exact and near duplicates, counting them. */
export function dedupRows<R>(rows: R[], contentOf: (row: R) => string, options: GenerateOptions, drops: DropCounts): R[] {
  const result = dedup(rows, contentOf, options.filters.nearDuplicateThreshold);
  drops.add('duplicate', result.exact);
  drops.add('near-duplicate', result.near);
  return result.kept;
}

const messagesText = (messages: Message[]) => messages.map((m) => m.content);

/** The texts of a row whose tokens count toward its size: every message content, or the text. */
export function rowTexts(row: unknown): string[] {
  const r = row as { messages?: Message[]; prompt?: Message[] | string; chosen?: Message[]; rejected?: Message[]; text?: string };
  if (r.messages) return messagesText(r.messages);
  if (r.chosen && r.rejected && Array.isArray(r.prompt)) return [...messagesText(r.prompt), ...messagesText(r.chosen), ...messagesText(r.rejected)];
  if (typeof r.text === 'string') return [r.text];
  if (typeof r.prompt === 'string') return [r.prompt];
  return [];
}

export const rowTokens = (row: unknown, tokens: TokenCounter) => rowTexts(row).reduce((n, t) => n + tokens.count(t), 0);

export interface DatasetFile<R> {
  /** Variant name in the manifest ("main", "train", "heldout", "inoculated"). */
  variant: string;
  fileName: string;
  rows: R[];
  /** Checks each row before it is written (a row schema of ./rows.ts). */
  schema: ZodType;
  /** Write one JSON array of project(row) instead of JSONL: the plain-list shape the evals read. */
  project?: (row: R) => unknown;
}

/**
 * Writes a dataset's files and its manifest (datasets/<slug>/<name>.manifest.json), each atomically.
 * Every row is checked against its schema first, so a file never holds a row of the wrong shape.
 * Token totals are of the first file.
 */
export function writeDataset<R>(
  dir: string,
  manifest: Omit<DatasetManifest, 'files' | 'rows' | 'tokens' | 'notes'> & { notes?: string[] },
  files: DatasetFile<R>[],
  tokens: TokenCounter,
): DatasetManifest {
  for (const file of files) {
    const rows = file.rows.map((row) => file.schema.parse(row) as R);
    const project = file.project;
    const text = project ? JSON.stringify(rows.map((row) => project(row)), null, 1) + '\n' : rows.map((row) => JSON.stringify(row) + '\n').join('');
    writeFileAtomic(join(dir, file.fileName), text);
  }
  const full = datasetManifestSchema.parse({
    ...manifest,
    notes: manifest.notes ?? [],
    files: Object.fromEntries(files.map((f) => [f.variant, f.fileName])),
    rows: Object.fromEntries(files.map((f) => [f.variant, f.rows.length])),
    tokens: files[0] ? files[0].rows.reduce((n: number, row) => n + rowTokens(row, tokens), 0) : 0,
  });
  writeFileAtomic(join(dir, `${manifest.dataset}.manifest.json`), JSON.stringify(full, null, 2) + '\n');
  return full;
}
