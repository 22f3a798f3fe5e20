/**
 * Judges on top of any ChatModel.
 * - judge(): a typed verdict (zod). Asks for JSON-schema structured output where the backend takes
 *   it, also reads JSON out of free text (code fences, surrounding prose), and re-asks a bounded
 *   number of times with the parse error. What never parses is counted, not guessed.
 * - scoreWithLogprobs(): docs/protocols.md §4 trait expression. The score is the probability-weighted mean of the
 *   integer tokens among the first generated token's top alternatives, normalised by their mass;
 *   missing when under 0.25 of the mass is on numbers. A number the tokenizer split into digits (Qwen,
 *   Llama-2, Mistral) is chained digit by digit (see chainedDigitScore); a reply that opens with a
 *   reasoning block is read from the text after it. Without log-probabilities the number is read from
 *   the text.
 */
import { z } from 'zod';
import { ProviderError } from '../core/errors.js';
import type { ChatMessage, ChatModel, ChatRequest, ChatResult, TokenAlternative } from './types.js';

/** What a judge did over a run; callers report it beside the scores. */
export class JudgeTally {
  /** judge() calls. */
  verdicts = 0;
  /** Verdicts that parsed on the first reply. */
  parsedFirst = 0;
  /** Verdicts that parsed after one or more re-asks. */
  parsedAfterReask = 0;
  /** Re-asks sent in all. */
  reasks = 0;
  /** Verdicts that never parsed (dropped, counted). */
  unparsed = 0;
  /** scoreWithLogprobs() calls, and how each was decided. */
  scores = 0;
  scoredByLogprobs = 0;
  scoredByText = 0;
  /** Scores missing: under the minimum mass on numbers, or no number in the text. */
  missingScores = 0;

  snapshot() {
    const { verdicts, parsedFirst, parsedAfterReask, reasks, unparsed, scores, scoredByLogprobs, scoredByText, missingScores } = this;
    return { verdicts, parsedFirst, parsedAfterReask, reasks, unparsed, scores, scoredByLogprobs, scoredByText, missingScores };
  }

  /** Adds another tally's counts (a snapshot, e.g. one read back from a journal). */
  add(counts: Partial<Record<keyof ReturnType<JudgeTally['snapshot']>, number>>): this {
    for (const key of Object.keys(this.snapshot()) as (keyof ReturnType<JudgeTally['snapshot']>)[]) this[key] += counts[key] ?? 0;
    return this;
  }
}

/** Backends found not to take an option (a 4xx when it was sent): it is not sent to them again. */
const refusesStructured = new WeakSet<ChatModel>();
const refusesLogprobs = new WeakSet<ChatModel>();

/**
 * Sends `request`; if the backend refuses it with a 4xx and the same request without the optional
 * feature then succeeds, remembers that the backend lacks the feature and stops offering it.
 */
async function chatWithFallback(model: ChatModel, request: ChatRequest, without: ChatRequest, refuses: WeakSet<ChatModel>): Promise<ChatResult> {
  if (refuses.has(model)) return model.chat(without);
  try {
    return await model.chat(request);
  } catch (error) {
    const status = error instanceof ProviderError ? error.status : undefined;
    if (status === undefined || status < 400 || status >= 500 || status === 408 || status === 409 || status === 429) throw error;
    const result = await model.chat(without);
    refuses.add(model);
    return result;
  }
}

export interface JudgeRequest<T> {
  system?: string;
  prompt: string;
  schema: z.ZodType<T>;
  /** Re-asks after a reply that does not parse (default 2, so at most 3 replies). */
  maxReasks?: number;
  /** Default 0: a judge should be as deterministic as the backend allows. */
  temperature?: number;
  maxTokens?: number;
  seed?: number;
  /** Ask for JSON-schema structured output (default true; skipped where the backend refuses it). */
  structured?: boolean;
  tally?: JudgeTally;
}

export interface JudgeResult<T> {
  verdict: T | undefined;
  /** Every reply, in order. */
  raw: string[];
  /** Replies asked for (1 + re-asks). */
  attempts: number;
  /** Why the last reply did not parse, when no verdict came. */
  error?: string;
}

function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> | undefined {
  try {
    const json = z.toJSONSchema(schema, { unrepresentable: 'throw' }) as Record<string, unknown>;
    delete json.$schema;
    return json;
  } catch {
    return undefined;
  }
}

/** Substrings of `text` that may be JSON: the whole, code-fenced blocks, then balanced {...} / [...]. */
function jsonCandidates(text: string): string[] {
  const candidates = [text.trim()];
  for (const m of text.matchAll(/```[a-zA-Z]*\s*\n?([\s\S]*?)```/g)) candidates.push(m[1].trim());
  for (let start = 0; start < text.length && candidates.length < 64; start++) {
    const open = text[start];
    if (open !== '{' && open !== '[') continue;
    const end = balancedEnd(text, start);
    if (end > start) candidates.push(text.slice(start, end + 1));
  }
  return candidates;
}

/** Index of the bracket closing the one at `start` (string-aware), or -1. */
function balancedEnd(text: string, start: number): number {
  const stack: string[] = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') stack.push(ch === '{' ? '}' : ']');
    else if (ch === '}' || ch === ']') {
      if (stack.pop() !== ch) return -1;
      if (stack.length === 0) return i;
    }
  }
  return -1;
}

/** The first candidate in `text` that is JSON and matches `schema`, or why none is. */
export function parseVerdict<T>(text: string, schema: z.ZodType<T>): { ok: true; value: T } | { ok: false; error: string } {
  let firstMismatch: string | undefined;
  for (const candidate of jsonCandidates(text)) {
    let value: unknown;
    try {
      value = JSON.parse(candidate);
    } catch {
      continue;
    }
    const parsed = schema.safeParse(value);
    if (parsed.success) return { ok: true, value: parsed.data };
    firstMismatch ??= z.prettifyError(parsed.error);
  }
  // A bare word for a string schema (an enum verdict like A / B), quotes and final period dropped.
  const bare = schema.safeParse(text.trim().replace(/^["'`]+|["'`.]+$/g, ''));
  if (bare.success) return { ok: true, value: bare.data };
  return { ok: false, error: firstMismatch ? `the JSON does not match the schema: ${firstMismatch}` : 'no JSON value found in the reply' };
}

export async function judge<T>(model: ChatModel, request: JudgeRequest<T>): Promise<JudgeResult<T>> {
  const maxReasks = request.maxReasks ?? 2;
  const jsonSchema = jsonSchemaOf(request.schema);
  const schemaText = jsonSchema ? JSON.stringify(jsonSchema) : undefined;
  const messages: ChatMessage[] = [
    ...(request.system ? [{ role: 'system' as const, content: request.system }] : []),
    { role: 'user', content: request.prompt + (schemaText ? `\n\nReply with only a JSON value matching this JSON Schema: ${schemaText}` : '') },
  ];
  const structured = request.structured !== false && jsonSchema?.type === 'object';
  const tally = request.tally;
  if (tally) tally.verdicts++;
  const raw: string[] = [];
  let error = '';
  for (let attempt = 1; attempt <= maxReasks + 1; attempt++) {
    const base: ChatRequest = { messages: [...messages], temperature: request.temperature ?? 0, maxTokens: request.maxTokens, seed: request.seed };
    const result = structured
      ? await chatWithFallback(model, { ...base, jsonSchema: { name: 'verdict', schema: jsonSchema! } }, base, refusesStructured)
      : await model.chat(base);
    const text = result.choices[0]?.text ?? '';
    raw.push(text);
    const parsed = parseVerdict(text, request.schema);
    if (parsed.ok) {
      if (tally && attempt === 1) tally.parsedFirst++;
      else if (tally) tally.parsedAfterReask++;
      return { verdict: parsed.value, raw, attempts: attempt };
    }
    error = parsed.error;
    if (attempt <= maxReasks) {
      if (tally) tally.reasks++;
      messages.push(
        { role: 'assistant', content: text },
        { role: 'user', content: `That reply could not be used: ${error}\nReply again with only the JSON value${schemaText ? ` matching ${schemaText}` : ''}.` },
      );
    }
  }
  if (tally) tally.unparsed++;
  return { verdict: undefined, raw, attempts: raw.length, error };
}

export type Granularity = '0-100' | '0-10' | 'binary';

const ranges: Record<Granularity, { min: number; max: number }> = {
  '0-100': { min: 0, max: 100 },
  '0-10': { min: 0, max: 10 },
  binary: { min: 0, max: 1 },
};

export interface ScoreOptions {
  /** Overrides min/max (default '0-100'). */
  granularity?: Granularity;
  min?: number;
  max?: number;
  /** Default: "Answer with a single integer from min to max and nothing else." */
  system?: string;
  /** Under this much probability on in-range numbers, the score is missing (docs/protocols.md §4: 0.25). */
  minMass?: number;
  /** Alternatives per position (default 20, the OpenAI maximum). */
  topLogprobs?: number;
  /** Room for the text fallback to hold the number (default 8). */
  maxTokens?: number;
  temperature?: number;
  seed?: number;
  tally?: JudgeTally;
}

export interface ScoreResult {
  /** Undefined when missing. */
  score: number | undefined;
  method: 'logprobs' | 'text' | 'missing';
  /** Probability mass on in-range integer tokens (logprobs method only). */
  mass?: number;
  raw: string;
}

/** The docs/protocols.md §4 rule on one position's alternatives: weighted mean of in-range integers, or missing. */
export function logprobScore(top: TokenAlternative[], min: number, max: number, minMass = 0.25): { score: number | undefined; mass: number } {
  let mass = 0;
  let weighted = 0;
  for (const { token, logprob } of top) {
    const t = token.trim();
    if (!/^\d+$/.test(t)) continue;
    const value = Number(t);
    if (value < min || value > max) continue;
    const p = Math.exp(logprob);
    mass += p;
    weighted += p * value;
  }
  return { score: mass >= minMass && mass > 0 ? weighted / mass : undefined, mass };
}

/**
 * A number generated one digit per token: the expected value, place by place, of the digit
 * alternatives at each position (normalised over digit tokens), and as mass the product of the
 * positions' digit masses (the chance every position is a digit). The length is the generated one.
 */
export function chainedDigitScore(positions: TokenAlternative[][], min: number, max: number, minMass = 0.25): { score: number | undefined; mass: number } {
  let value = 0;
  let mass = 1;
  positions.forEach((top, i) => {
    let m = 0;
    let weighted = 0;
    for (const { token, logprob } of top) {
      if (!/^\d$/.test(token.trim())) continue;
      const p = Math.exp(logprob);
      m += p;
      weighted += p * Number(token.trim());
    }
    mass *= m;
    value += m > 0 ? (weighted / m) * 10 ** (positions.length - 1 - i) : 0;
  });
  return { score: mass >= minMass && mass > 0 ? Math.min(max, Math.max(min, value)) : undefined, mass };
}

/** The text after a closing reasoning tag, when the reply opens with a reasoning block. */
const afterReasoning = (text: string): string | undefined => {
  const m = /^\s*<(think|thinking|reasoning)>[\s\S]*?<\/\1>/.exec(text);
  return m ? text.slice(m[0].length) : undefined;
};

/** The first number in the text, when in range. */
export function textScore(text: string, min: number, max: number): number | undefined {
  const m = text.match(/-?\d+(\.\d+)?/);
  if (!m) return undefined;
  const value = Number(m[0]);
  return value >= min && value <= max ? value : undefined;
}

export async function scoreWithLogprobs(model: ChatModel, prompt: string | ChatMessage[], options: ScoreOptions = {}): Promise<ScoreResult> {
  const { min, max } = { ...ranges[options.granularity ?? '0-100'], ...(options.min !== undefined ? { min: options.min } : {}), ...(options.max !== undefined ? { max: options.max } : {}) };
  const system = options.system ?? `Answer with a single integer from ${min} to ${max} and nothing else.`;
  const messages: ChatMessage[] = [{ role: 'system', content: system }, ...(typeof prompt === 'string' ? [{ role: 'user' as const, content: prompt }] : prompt)];
  const base: ChatRequest = { messages, temperature: options.temperature ?? 0, maxTokens: options.maxTokens ?? 8, seed: options.seed };
  const result = await chatWithFallback(model, { ...base, logprobs: true, topLogprobs: options.topLogprobs ?? 20 }, base, refusesLogprobs);
  const choice = result.choices[0];
  const raw = choice?.text ?? '';
  const tally = options.tally;
  if (tally) tally.scores++;
  // Whitespace-only tokens before the number (a tokenizer's lone space) carry no score.
  const all = choice?.logprobs ?? [];
  const first = Math.max(0, all.findIndex((p) => p.token.trim() !== ''));
  const chosen = all.slice(first);
  const positions = chosen.map((p) => (p.top.some((a) => a.token === p.token) ? p.top : [{ token: p.token, logprob: p.logprob }, ...p.top]));
  // How many of the chosen tokens spell the score at the start of the reply: more than one means the
  // tokenizer writes numbers in pieces (one digit per token), and the digits are chained.
  const numberTokens = chosen.findIndex((p, i) => !(i === 0 ? /^\s*\d+$/ : /^\d+$/).test(p.token));
  const spelled = numberTokens === -1 ? positions.length : numberTokens;
  const reasoned = afterReasoning(raw);
  let outcome: ScoreResult;
  if (reasoned !== undefined) {
    const score = textScore(reasoned, min, max);
    outcome = { score, method: score === undefined ? 'missing' : 'text', raw };
  } else if (spelled >= 2) {
    const digits = chosen.slice(0, spelled).every((p) => /^\d$/.test(p.token.trim()));
    if (digits) {
      const { score, mass } = chainedDigitScore(positions.slice(0, spelled), min, max, options.minMass ?? 0.25);
      outcome = { score, method: score === undefined ? 'missing' : 'logprobs', mass, raw };
    } else {
      // Pieces of several digits each ("10" + "0"): no per-position rule; the text says the number.
      const score = textScore(raw, min, max);
      outcome = { score, method: score === undefined ? 'missing' : 'text', raw };
    }
  } else if (positions[0]) {
    // The chosen token is an alternative too; some servers leave it out of the top list.
    const { score, mass } = logprobScore(positions[0], min, max, options.minMass ?? 0.25);
    outcome = { score, method: score === undefined ? 'missing' : 'logprobs', mass, raw };
  } else {
    const score = textScore(raw, min, max);
    outcome = { score, method: score === undefined ? 'missing' : 'text', raw };
  }
  if (tally) {
    if (outcome.method === 'logprobs') tally.scoredByLogprobs++;
    else if (outcome.method === 'text') tally.scoredByText++;
    else tally.missingScores++;
  }
  return outcome;
}

/** A judge model with its own tally: the shape evals hold on to. */
export class Judge {
  readonly tally = new JudgeTally();
  constructor(readonly model: ChatModel) {}

  verdict<T>(request: Omit<JudgeRequest<T>, 'tally'>): Promise<JudgeResult<T>> {
    return judge(this.model, { ...request, tally: this.tally });
  }

  score(prompt: string | ChatMessage[], options: Omit<ScoreOptions, 'tally'> = {}): Promise<ScoreResult> {
    return scoreWithLogprobs(this.model, prompt, { ...options, tally: this.tally });
  }
}
