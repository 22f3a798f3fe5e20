/**
 * Token counting for budgets and length filters. With the subject model's own tokenizer
 * (ChatModel.countTokens) when it has one; otherwise an approximation, named "approx" in manifests:
 * max(GPT-2-style pre-tokens, ceil(characters / 4)). Pre-tokens (words with the space before them,
 * digit runs, punctuation runs) are a lower bound on BPE tokens for English; characters / 4 is the
 * usual rule of thumb for English BPE vocabularies and covers text that pre-tokenizes into long runs.
 */
import type { ChatModel } from '../providers/types.js';

const PRE_TOKEN = /'(?:s|t|re|ve|m|ll|d)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+/gu;

export function approximateTokens(text: string): number {
  if (text.length === 0) return 0;
  const pre = text.match(PRE_TOKEN)?.length ?? 0;
  return Math.max(pre, Math.ceil(text.length / 4));
}

export interface TokenCounter {
  /** "subject:<model id>" or "approx" (see above). */
  readonly name: string;
  count(text: string): number;
}

export function tokenCounter(subject?: ChatModel): TokenCounter {
  const count = subject?.countTokens?.bind(subject);
  if (count) return { name: `subject:${subject!.id}`, count };
  return { name: 'approx', count: approximateTokens };
}
