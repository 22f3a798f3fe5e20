/**
 * Choosing the next token from the few candidates the decode graph returns (its top-k logits, sorted
 * descending, plus the log-sum-exp over the whole vocabulary). Plain TS over small arrays.
 *
 * Order of the warpers is Hugging Face's: temperature, then top-k, then top-p. Temperature 0 is
 * greedy. The random stream is deterministic per seed, one stream per sequence.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

export interface SamplingOptions {
  /** 0 = greedy (default 1). */
  temperature?: number;
  /** Keep the smallest set of most likely tokens whose probability sums to at least topP (default 1). */
  topP?: number;
  /** Keep only the k most likely tokens (default: no limit). */
  topK?: number;
}

/** A seeded uniform [0, 1) stream (xoroshiro128+ from pure-rand). */
export function seededRandom(seed: number): () => number {
  const gen = xoroshiro128plus(Math.trunc(seed) | 0);
  return () => uniformFloat64(gen);
}

/** How many top logits the decode graph must return so that sampling with `opts` is exact. */
export function candidatesNeeded(opts: SamplingOptions, vocabSize: number, topLogprobs = 0): number {
  const temperature = opts.temperature ?? 1;
  const forSampling = temperature === 0 ? 1 : opts.topK && opts.topK > 0 ? opts.topK : vocabSize;
  return Math.min(vocabSize, Math.max(forSampling, topLogprobs, 1));
}

/**
 * Picks one of `ids` given their logits (sorted descending, as TopK returns them). Returns the index
 * into `ids`/`logits`, not the token id.
 */
export function sampleIndex(logits: ArrayLike<number>, opts: SamplingOptions, random: () => number): number {
  const temperature = opts.temperature ?? 1;
  if (!(temperature >= 0)) throw new Error(`temperature must be >= 0 (got ${temperature})`);
  if (temperature === 0 || logits.length === 1) return 0;
  const k = Math.min(logits.length, opts.topK && opts.topK > 0 ? opts.topK : logits.length);
  const max = logits[0];
  const weights = new Float64Array(k);
  let total = 0;
  for (let i = 0; i < k; i++) {
    weights[i] = Math.exp((logits[i] - max) / temperature);
    total += weights[i];
  }
  // Nucleus: keep tokens while the mass before them is below topP (the first is always kept).
  let keep = k;
  const topP = opts.topP ?? 1;
  if (topP < 1) {
    let mass = 0;
    for (let i = 0; i < k; i++) {
      if (mass >= topP * total) {
        keep = i;
        break;
      }
      mass += weights[i];
    }
  }
  let kept = 0;
  for (let i = 0; i < keep; i++) kept += weights[i];
  let r = random() * kept;
  for (let i = 0; i < keep; i++) {
    r -= weights[i];
    if (r < 0) return i;
  }
  return keep - 1;
}

/**
 * Stop strings over decoded text: where the earliest stop string begins, or -1. Text is decoded
 * from all generated tokens each step, so a stop string split across tokens is still found.
 */
export function findStop(text: string, stops: readonly string[], from = 0): number {
  let at = -1;
  for (const s of stops) {
    if (!s) continue;
    const i = text.indexOf(s, Math.max(0, from - s.length + 1));
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}
