/**
 * The one seeded random source of a training run: LoRA init, dropout masks, data shuffling and GRPO
 * sampling seeds all draw from it, so a seed fixes the run and a checkpoint can save and restore it.
 * xoroshiro128+ from pure-rand, its state mixed from the seed by splitmix64 (src/core/seed.ts); four
 * 32-bit integers, JSON-serialisable.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { seedState32 } from '../core/seed.js';

type Generator = ReturnType<typeof xoroshiro128plusFromState>;

export class Rng {
  private constructor(private readonly gen: Generator) {}

  static seeded(seed: number): Rng {
    return new Rng(xoroshiro128plusFromState(seedState32(seed)));
  }

  static fromState(state: readonly number[]): Rng {
    return new Rng(xoroshiro128plusFromState(state));
  }

  state(): number[] {
    return [...this.gen.getState()];
  }

  /** An independent stream (2^64 draws ahead of a clone); this one is left where it was. */
  fork(): Rng {
    const child = this.gen.clone();
    child.jump();
    this.gen.next(); // so two successive forks differ
    return new Rng(child);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return uniformFloat64(this.gen);
  }

  /** Uniform integer in [from, to], both included. */
  int(from: number, to: number): number {
    return uniformInt(this.gen, from, to);
  }

  /** A 31-bit seed for another component (e.g. the sampler of one GRPO group). */
  seed(): number {
    return this.int(0, 0x7fffffff);
  }

  /** Fisher-Yates, in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /** Fills `out` with U(low, high). */
  fillUniform(out: Float32Array, low: number, high: number): Float32Array {
    const width = high - low;
    for (let i = 0; i < out.length; i++) out[i] = low + width * this.uniform();
    return out;
  }

  /** An inverted-dropout keep mask: 0 with probability p, else 1 / (1 - p). */
  dropoutMask(length: number, p: number): Float32Array {
    const out = new Float32Array(length);
    const keep = 1 / (1 - p);
    for (let i = 0; i < length; i++) out[i] = this.uniform() < p ? 0 : keep;
    return out;
  }
}
