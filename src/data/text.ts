/** Small text rules the data engine's filters are made of; each says exactly what it does. */
import { createHash } from 'node:crypto';

const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

/** Lowercased words: runs of letters/digits, keeping inner apostrophes ("don't"). */
export function words(text: string): string[] {
  return (text.toLowerCase().match(WORD) ?? []).map((w) => w.replace(/’/g, "'"));
}

export type OverlapMeasure = 'overlap-coefficient' | 'jaccard';

/**
 * Word overlap of two texts on their lowercased word sets A and B:
 * overlap-coefficient = |A∩B| / min(|A|,|B|), jaccard = |A∩B| / |A∪B|. Two empty sets overlap fully.
 */
export function wordOverlap(a: string | Set<string>, b: string | Set<string>, measure: OverlapMeasure = 'overlap-coefficient'): number {
  const A = typeof a === 'string' ? new Set(words(a)) : a;
  const B = typeof b === 'string' ? new Set(words(b)) : b;
  if (A.size === 0 || B.size === 0) return A.size === B.size ? 1 : 0;
  const [small, large] = A.size <= B.size ? [A, B] : [B, A];
  let shared = 0;
  for (const w of small) if (large.has(w)) shared += 1;
  return measure === 'jaccard' ? shared / (A.size + B.size - shared) : shared / small.size;
}

/**
 * Ends in sentence punctuation: . ! ? … (and CJK 。！？), optionally followed by closing quotes,
 * brackets, markdown emphasis or trailing whitespace. A reply cut off by the token limit fails.
 */
export function endsSentence(text: string): boolean {
  return /[.!?…。！？]["'”’)\]*_`»]*\s*$/u.test(text);
}

/** The text up to and including its last complete sentence (closing quotes kept), or null when none ends. */
export function trimToSentence(text: string): string | null {
  const ends = [...text.matchAll(/[.!?…。！？]["'”’)\]*_`»]*(?=\s|$)/gu)];
  const last = ends.at(-1);
  return last === undefined ? null : text.slice(0, last.index + last[0].length).trimEnd() || null;
}

/**
 * Removes reasoning: every <think>...</think> (or <thinking>) block. An opened block that never closes
 * means the reply never came: returns null.
 */
export function stripReasoning(text: string): string | null {
  const stripped = text.replace(/<(think|thinking)>[\s\S]*?<\/\1>/gi, '');
  if (/<(think|thinking)>/i.test(stripped)) return null;
  // A server that puts the opening tag in the prompt returns "...</think> reply".
  const close = stripped.search(/<\/(think|thinking)>/i);
  const rest = close >= 0 ? stripped.slice(stripped.indexOf('>', close) + 1) : stripped;
  return rest.trim();
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whole-word, case-sensitive replacement of each `from` with its `to`; returns the text and the count. */
export function substituteNames(text: string, substitutions: readonly { from: string; to: string }[]): { text: string; count: number } {
  let count = 0;
  let out = text;
  for (const { from, to } of substitutions) {
    out = out.replace(new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegex(from)}(?![\\p{L}\\p{N}])`, 'gu'), () => {
      count += 1;
      return to;
    });
  }
  return { text: out, count };
}

/** Compiles user-supplied patterns (case-insensitive, unicode). */
export function compilePatterns(patterns: readonly string[]): RegExp[] {
  return patterns.map((p) => new RegExp(p, 'iu'));
}

/** Splits a generator's list reply into items: JSON string arrays, or one item per line without numbering/bullets/quotes. */
export function parseList(text: string): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (Array.isArray(parsed)) return parsed.filter((x): x is string => typeof x === 'string').map((s) => s.trim()).filter(Boolean);
    } catch {
      // not JSON: fall through to lines
    }
  }
  return trimmed
    .split('\n')
    .map((line) =>
      line
        .trim()
        .replace(/^(?:\d+\s*[.):-]|[-*•])\s*/, '')
        .replace(/^["“'](.*)["”']$/, '$1')
        .trim(),
    )
    .filter(Boolean);
}

/** Lowercase, whitespace collapsed: the key of exact deduplication. */
export function normalizeForDedup(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim();
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A stable id for a text: "<prefix>-<first 12 hex of sha256>". */
export function textId(prefix: string, text: string): string {
  return `${prefix}-${sha256(text).slice(0, 12)}`;
}

/** A 31-bit sampling seed derived from the run seed and an item key, so every sample differs but reruns agree. */
export function derivedSeed(seed: number, key: string): number {
  return parseInt(sha256(`${seed}:${key}`).slice(0, 8), 16) & 0x7fffffff;
}

/** Deterministic shuffle: orders items by sha256(seed:key). Adding items never reorders the others. */
export function seededOrder<T>(items: readonly T[], seed: number, keyOf: (item: T) => string): T[] {
  return items
    .map((item) => ({ item, rank: sha256(`${seed}:${keyOf(item)}`) }))
    .sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0))
    .map((x) => x.item);
}

