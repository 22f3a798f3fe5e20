/**
 * Dataset rows -> token sequences with loss masks -> padded batches.
 *
 * Rows (JSONL, as the data stage writes them): chat `{messages}` (loss on assistant tokens only),
 * preference `{prompt, chosen, rejected}` (DPO), plain `{text}` (continued pretraining, loss on every
 * token). Assistant spans are found by rendering the chat template on growing prefixes of the
 * conversation: the tokens that render(messages[..i]) adds over render(messages[..i-1], add generation
 * prompt) are assistant i's reply, its end-of-turn token included (the model must learn to stop).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { InputError } from '../core/errors.js';

/** What training needs from a tokenizer and its chat template (the engine's TextTokenizer has it). */
export interface ChatTokenizer {
  /** Token ids of `text`, with the tokenizer's own special tokens (BOS) only when asked. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** The chat template rendered to text. */
  applyChatTemplate(messages: ChatTurn[], options?: { addGenerationPrompt?: boolean }): string;
  readonly eos: { id: number } | null;
  readonly pad: { id: number } | null;
}

export const chatTurnSchema = z
  .object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() })
  .passthrough();
export type ChatTurn = z.infer<typeof chatTurnSchema>;

export const sftChatRowSchema = z.object({ messages: z.array(chatTurnSchema).min(1) }).passthrough();
/** A reply: a string, or (TRL conversational, as the data stage writes) a list of assistant messages. */
const replySchema = z.union([z.string(), z.array(chatTurnSchema).min(1)]);
export const pairRowSchema = z
  .object({
    prompt: z.union([z.string(), z.array(chatTurnSchema).min(1)]),
    chosen: replySchema,
    rejected: replySchema,
  })
  .passthrough();
export const sftTextRowSchema = z.object({ text: z.string().min(1) }).passthrough();
export const promptRowSchema = z.object({ prompt: z.union([z.string(), z.array(chatTurnSchema).min(1)]) }).passthrough();

export type SftChatRow = z.infer<typeof sftChatRowSchema>;
export type PairRow = z.infer<typeof pairRowSchema>;
export type SftTextRow = z.infer<typeof sftTextRowSchema>;
export type PromptRow = z.infer<typeof promptRowSchema>;

/** Reads a JSONL dataset, validating every line; an error names the file, the line and the field. */
export function readJsonl<T>(file: string, schema: z.ZodType<T>): T[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new InputError(file, '', 'file not found or unreadable');
  }
  const rows: T[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new InputError(file, `line ${i + 1}`, 'malformed JSON');
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InputError(file, `line ${i + 1}: ${issue.path.join('.') || '(row)'}`, issue.message);
    }
    rows.push(parsed.data);
  });
  if (rows.length === 0) throw new InputError(file, '', 'expected at least one row');
  return rows;
}

/** A token sequence; lossMask[t] = 1 when token t is a training target (predicted from tokens < t). */
export interface Sequence {
  ids: number[];
  lossMask: Uint8Array;
}

/** User turns as messages: a string prompt is one user message. */
export function promptMessages(prompt: string | readonly ChatTurn[]): ChatTurn[] {
  return typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : [...prompt];
}

function startsWith(ids: readonly number[], prefix: readonly number[]): boolean {
  if (prefix.length > ids.length) return false;
  for (let i = 0; i < prefix.length; i++) if (ids[i] !== prefix[i]) return false;
  return true;
}

/**
 * A chat rendered with the template, loss on assistant tokens, truncated to maxLength (keeping the
 * start). Throws when the template does not render prefixes consistently (then assistant spans
 * cannot be found by prefix and the template needs fixing).
 */
export function tokenizeChat(tok: ChatTokenizer, messages: readonly ChatTurn[], maxLength: number): Sequence {
  const ids = tok.encode(tok.applyChatTemplate([...messages]), { addSpecialTokens: false });
  const lossMask = new Uint8Array(ids.length);
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const before = tok.encode(tok.applyChatTemplate(messages.slice(0, i), { addGenerationPrompt: true }), { addSpecialTokens: false });
    const through = tok.encode(tok.applyChatTemplate(messages.slice(0, i + 1)), { addSpecialTokens: false });
    if (!startsWith(through, before) || !startsWith(ids, through)) {
      throw new Error(`chat template: rendering of turns 0..${i} is not a prefix of the whole conversation; cannot mask assistant tokens`);
    }
    lossMask.fill(1, before.length, through.length);
  });
  return truncate({ ids, lossMask }, maxLength);
}

/** Plain text, loss on every token, EOS appended; longer texts become several chunks of maxLength. */
export function tokenizeText(tok: ChatTokenizer, text: string, maxLength: number): Sequence[] {
  const ids = [...tok.encode(text, { addSpecialTokens: true }), ...(tok.eos ? [tok.eos.id] : [])];
  const chunks: Sequence[] = [];
  for (let start = 0; start < ids.length; start += maxLength) {
    const part = ids.slice(start, start + maxLength);
    const lossMask = new Uint8Array(part.length).fill(1);
    lossMask[0] = 0; // the first token of a chunk has no context to be predicted from
    if (part.length > 1) chunks.push({ ids: part, lossMask });
  }
  return chunks;
}

/** A DPO pair: prompt + chosen and prompt + rejected, loss masks on the replies. */
export interface PairSequences {
  chosen: Sequence;
  rejected: Sequence;
}

export function tokenizePair(tok: ChatTokenizer, row: PairRow, maxLength: number): PairSequences {
  const prompt = promptMessages(row.prompt);
  const reply = (r: PairRow['chosen']): ChatTurn[] => (typeof r === 'string' ? [{ role: 'assistant', content: r }] : r);
  return {
    chosen: tokenizeChat(tok, [...prompt, ...reply(row.chosen)], maxLength),
    rejected: tokenizeChat(tok, [...prompt, ...reply(row.rejected)], maxLength),
  };
}

export function truncate(seq: Sequence, maxLength: number): Sequence {
  if (seq.ids.length <= maxLength) return seq;
  return { ids: seq.ids.slice(0, maxLength), lossMask: seq.lossMask.slice(0, maxLength) };
}

export const targetCount = (seq: Sequence): number => seq.lossMask.reduce((a, b) => a + b, 0);

/** One row of a batch: one sequence, or several packed end to end. */
export type Row = Sequence[];

/**
 * Greedy in-order packing: sequences are appended to the current row while they fit in maxLength.
 * Each keeps its own positions (0..) and the model attends only within it (segment ids).
 */
export function pack(seqs: readonly Sequence[], maxLength: number): Row[] {
  const rows: Row[] = [];
  let current: Row = [];
  let used = 0;
  for (const s of seqs) {
    if (current.length > 0 && used + s.ids.length > maxLength) {
      rows.push(current);
      current = [];
      used = 0;
    }
    current.push(s);
    used += s.ids.length;
  }
  if (current.length > 0) rows.push(current);
  return rows;
}

/**
 * A padded batch [rows, length] in the layout the training graph takes: next-token targets and their
 * weights at each position (targets[t] = ids[t+1]), positions restarting per packed sequence and
 * segment ids (0 for padding, 1.. per sequence) for block-diagonal attention.
 */
export interface Batch {
  rows: number;
  length: number;
  inputIds: BigInt64Array;
  targets: BigInt64Array;
  weights: Float32Array;
  positions: BigInt64Array;
  segments: BigInt64Array;
  /** Per row, the weight sum (target tokens) of that row. */
  rowTargets: number[];
  /** Tokens that are not padding. */
  tokens: number;
  /** Weighted targets in the batch: the SFT loss normaliser. */
  targetTokens: number;
}

export function makeBatch(rows: readonly Row[], padId: number, length?: number): Batch {
  const T = length ?? Math.max(...rows.map((r) => r.reduce((n, s) => n + s.ids.length, 0)));
  const B = rows.length;
  const inputIds = new BigInt64Array(B * T).fill(BigInt(padId));
  const targets = new BigInt64Array(B * T).fill(BigInt(padId));
  const weights = new Float32Array(B * T);
  const positions = new BigInt64Array(B * T);
  const segments = new BigInt64Array(B * T);
  const rowTargets: number[] = [];
  let tokens = 0;
  rows.forEach((row, b) => {
    let t0 = b * T;
    let rowSum = 0;
    row.forEach((s, k) => {
      if (t0 + s.ids.length > (b + 1) * T) throw new Error(`makeBatch: row ${b} is longer than ${T}`);
      for (let i = 0; i < s.ids.length; i++) {
        inputIds[t0 + i] = BigInt(s.ids[i]);
        positions[t0 + i] = BigInt(i);
        segments[t0 + i] = BigInt(k + 1);
        if (i + 1 < s.ids.length) {
          targets[t0 + i] = BigInt(s.ids[i + 1]);
          weights[t0 + i] = s.lossMask[i + 1];
          rowSum += s.lossMask[i + 1];
        }
      }
      t0 += s.ids.length;
      tokens += s.ids.length;
    });
    // Padding continues positions so position ids stay in range and monotone.
    for (let t = t0, p = row.length > 0 ? Number(positions[t0 - 1] ?? -1n) + 1 : 0; t < (b + 1) * T; t++, p++) positions[t] = BigInt(p);
    rowTargets.push(rowSum);
  });
  return { rows: B, length: T, inputIds, targets, weights, positions, segments, rowTargets, tokens, targetTokens: rowTargets.reduce((a, b) => a + b, 0) };
}
