/**
 * Choosing the next token from the few candidates the decode graph returns (its top-k logits, sorted
 * descending, plus the log-sum-exp over the whole vocabulary). Plain TS over small arrays.
 *
 * Order of the warpers is Hugging Face's: temperature, then top-k, then top-p, then min-p.
 * Temperature 0 is greedy. Each sequence has its own random stream: a seed is spread over the whole
 * generator state by splitmix64 (so small neighbouring seeds give unrelated streams from the first
 * draw on), and xoshiro128** produces the draws. Without a seed a stream starts from fresh entropy.
 */
import { randomBytes } from 'node:crypto';
import { seedState32 } from '../../core/seed.js';

export interface SamplingOptions {
  /** 0 = greedy (default 1). */
  temperature?: number;
  /** Keep the smallest set of most likely tokens whose probability sums to at least topP (default 1). */
  topP?: number;
  /** Keep only the k most likely tokens (default: no limit). */
  topK?: number;
  /** Keep only tokens at least minP times as likely as the most likely one (default 0: off). */
  minP?: number;
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** xoshiro128** (Blackman and Vigna) over four 32-bit words of state; returns uint32 draws. */
export function xoshiro128ss(state: readonly number[]): () => number {
  let [s0, s1, s2, s3] = state.map((x) => x >>> 0);
  if ((s0 | s1 | s2 | s3) === 0) throw new RangeError('xoshiro128** state must not be all zero');
  return () => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 = (s2 ^ s0) >>> 0;
    s3 = (s3 ^ s1) >>> 0;
    s1 = (s1 ^ s2) >>> 0;
    s0 = (s0 ^ s3) >>> 0;
    s2 = (s2 ^ t) >>> 0;
    s3 = rotl(s3, 11);
    return result;
  };
}

/** Uniform [0, 1) with 53 random bits from a uint32 source. */
function uniform53(next: () => number): () => number {
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

function streamFrom64(words: readonly bigint[]): () => number {
  const state: number[] = words.flatMap((w) => [Number(w & 0xffffffffn), Number(w >> 32n)]);
  // two random 64-bit words are all zero with probability 2^-128; keep the guard for safety
  if (!state.some((x) => x !== 0)) state[0] = 1;
  return uniform53(xoshiro128ss(state));
}

/** A seeded uniform [0, 1) stream: splitmix64 over the (integer) seed, then xoshiro128**. */
export function seededRandom(seed: number): () => number {
  return uniform53(xoshiro128ss(seedState32(seed)));
}

/** A uniform [0, 1) stream from fresh operating-system entropy (an unseeded request). */
export function entropyRandom(): () => number {
  const bytes = randomBytes(16);
  return streamFrom64([bytes.readBigUInt64LE(0), bytes.readBigUInt64LE(8)]);
}

/** The row's stream: seeded when it has a seed, fresh entropy otherwise. */
export const randomFor = (seed: number | undefined): (() => number) => (seed === undefined ? entropyRandom() : seededRandom(seed));

/** How many top logits the decode graph must return so that sampling with `opts` is exact. */
export function candidatesNeeded(opts: SamplingOptions, vocabSize: number, topLogprobs = 0): number {
  const temperature = opts.temperature ?? 1;
  const forSampling = temperature === 0 ? 1 : opts.topK && opts.topK > 0 ? opts.topK : vocabSize;
  return Math.min(vocabSize, Math.max(forSampling, topLogprobs, 1));
}

/**
 * The probability of each candidate after the warpers (temperature, top-k, top-p, min-p), for logits
 * sorted descending; zero for the candidates the warpers remove. Sums to 1.
 */
export function samplingDistribution(logits: ArrayLike<number>, opts: SamplingOptions): Float64Array {
  const temperature = opts.temperature ?? 1;
  if (!(temperature >= 0)) throw new RangeError(`temperature must be >= 0 (got ${temperature})`);
  const probs = new Float64Array(logits.length);
  if (logits.length === 0) return probs;
  if (temperature === 0 || logits.length === 1) {
    probs[0] = 1;
    return probs;
  }
  const k = Math.min(logits.length, opts.topK && opts.topK > 0 ? opts.topK : logits.length);
  const max = logits[0];
  let total = 0;
  for (let i = 0; i < k; i++) {
    probs[i] = Math.exp((logits[i] - max) / temperature);
    total += probs[i];
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
      mass += probs[i];
    }
  }
  // min-p: relative to the most likely token (probs[0] is exp(0) = 1 before normalising).
  const minP = opts.minP ?? 0;
  if (minP > 0) {
    let i = 1;
    while (i < keep && probs[i] >= minP) i++;
    keep = i;
  }
  let kept = 0;
  for (let i = 0; i < keep; i++) kept += probs[i];
  for (let i = 0; i < logits.length; i++) probs[i] = i < keep ? probs[i] / kept : 0;
  return probs;
}

/**
 * Picks one of `ids` given their logits (sorted descending, as TopK returns them). Returns the index
 * into `ids`/`logits`, not the token id.
 */
export function sampleIndex(logits: ArrayLike<number>, opts: SamplingOptions, random: () => number): number {
  const probs = samplingDistribution(logits, opts);
  if (probs[0] === 1) return 0;
  let r = random();
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    last = i;
    r -= probs[i];
    if (r < 0) return i;
  }
  return last;
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
