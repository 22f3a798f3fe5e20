/**
 * Deduplication of generated rows, exact and near. Exact: equal after lowercasing and collapsing
 * whitespace. Near: Jaccard similarity of word 3-gram shingle sets >= threshold. Comparing every pair
 * is quadratic (10 000 self-reflection samples = 50M pairs), so candidates come from MinHash
 * locality-sensitive hashing (64 hashes in 32 bands of 2 rows: a pair at Jaccard 0.5 becomes a
 * candidate with probability 1-(1-0.25)^32 > 0.9999) and every candidate is checked exactly, so a
 * reported near-duplicate really is one. The first occurrence is kept.
 */
import { normalizeForDedup, words } from './text.js';

const HASHES = 64;
const ROWS_PER_BAND = 2;
const PRIME = 4294967311; // > 2^32: a*x+b mod PRIME is a universal hash family over 32-bit x

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

// Fixed coefficients (from a small LCG) so signatures are the same on every run.
const COEFFICIENTS: [number, number][] = (() => {
  let state = 12345;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state;
  };
  return Array.from({ length: HASHES }, () => [(next() % (PRIME - 1)) + 1, next() % PRIME] as [number, number]);
})();

/** Word 3-gram shingles (texts under 3 words shingle to their whole word sequence). */
export function shingles(text: string): Set<string> {
  const w = words(text);
  if (w.length < 3) return new Set([w.join(' ')]);
  const out = new Set<string>();
  for (let i = 0; i + 3 <= w.length; i++) out.add(`${w[i]} ${w[i + 1]} ${w[i + 2]}`);
  return out;
}

function mulMod(a: number, x: number): number {
  // (a * x) mod PRIME without losing precision past 2^53: split x into 16-bit halves.
  const hi = Math.floor(x / 65536);
  const lo = x % 65536;
  return (((a * hi) % PRIME) * 65536 + a * lo) % PRIME;
}

function signature(set: Set<string>): number[] {
  const hashes = [...set].map(fnv1a);
  return COEFFICIENTS.map(([a, b]) => {
    let min = Infinity;
    for (const x of hashes) {
      const v = (mulMod(a, x) + b) % PRIME;
      if (v < min) min = v;
    }
    return min;
  });
}

function jaccard(a: Set<string>, b: Set<string>): number {
  let shared = 0;
  for (const s of a) if (b.has(s)) shared += 1;
  return shared / (a.size + b.size - shared);
}

export interface DedupResult<T> {
  kept: T[];
  exact: number;
  near: number;
}

/** Keeps the first of each group of exact or near duplicates (by `contentOf`), in input order. */
export function dedup<T>(items: readonly T[], contentOf: (item: T) => string, nearThreshold: number): DedupResult<T> {
  const seen = new Set<string>();
  const buckets = new Map<string, number[]>();
  const keptShingles: Set<string>[] = [];
  const kept: T[] = [];
  let exact = 0;
  let near = 0;
  for (const item of items) {
    const content = contentOf(item);
    const key = normalizeForDedup(content);
    if (seen.has(key)) {
      exact += 1;
      continue;
    }
    const sh = shingles(content);
    const sig = signature(sh);
    const bandKeys: string[] = [];
    for (let b = 0; b < HASHES; b += ROWS_PER_BAND) bandKeys.push(`${b}:${sig.slice(b, b + ROWS_PER_BAND).join(',')}`);
    const candidates = new Set<number>();
    for (const k of bandKeys) for (const i of buckets.get(k) ?? []) candidates.add(i);
    let duplicate = false;
    for (const i of candidates) {
      if (jaccard(sh, keptShingles[i]) >= nearThreshold) {
        duplicate = true;
        break;
      }
    }
    if (duplicate) {
      near += 1;
      continue;
    }
    seen.add(key);
    const index = keptShingles.length;
    keptShingles.push(sh);
    kept.push(item);
    for (const k of bandKeys) {
      const bucket = buckets.get(k);
      if (bucket) bucket.push(index);
      else buckets.set(k, [index]);
    }
  }
  return { kept, exact, near };
}
