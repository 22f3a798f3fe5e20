/**
 * Seeds into generator states. Small neighbouring integer seeds (0, 1, 2...) written straight into
 * a xorshift-family state give nearly-zero states whose first draws are far from uniform (the
 * first uniform of seed 1 is ~0.99999); splitmix64 mixes the seed first, so every seed starts a
 * well-spread stream from its first draw.
 */

const MASK64 = (1n << 64n) - 1n;

/** splitmix64 (Steele, Lea and Flood): `count` well-mixed 64-bit words from one 64-bit seed. */
export function splitmix64(seed: bigint, count: number): bigint[] {
  let state = BigInt.asUintN(64, seed);
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) {
    state = (state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    out.push(z ^ (z >> 31n));
  }
  return out;
}

/** Four 32-bit words of generator state (as signed int32, what pure-rand's states hold) mixed from an integer seed. */
export function seedState32(seed: number): number[] {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer (got ${seed})`);
  const state = splitmix64(BigInt(seed), 2).flatMap((w) => [Number(w & 0xffffffffn) | 0, Number(w >> 32n) | 0]);
  // splitmix64 is a bijection, so two outputs are never both zero; keep the guard for safety
  if (!state.some((x) => x !== 0)) state[0] = 1;
  return state;
}
