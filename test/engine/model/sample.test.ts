import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitmix64 } from '../../../src/core/seed.js';
import { candidatesNeeded, entropyRandom, findStop, sampleIndex, seededRandom, xoshiro128ss } from '../../../src/engine/generate/sample.js';
import { chiSquare, warpedSoftmax as reference } from './chi-square.js';

const logits = [3, 2.5, 1, 0.5, -1, -4];

/** Over `seeds` seeds, the token each seed's stream picks at its `draw`-th draw (1 = first). */
function histogram(opts: Parameters<typeof sampleIndex>[1], seeds: number, draw = 1): number[] {
  const counts = new Array(logits.length).fill(0);
  for (let seed = 0; seed < seeds; seed++) {
    const rng = seededRandom(seed);
    for (let i = 1; i < draw; i++) sampleIndex(logits, opts, rng);
    counts[sampleIndex(logits, opts, rng)]++;
  }
  return counts;
}

test('splitmix64 and xoshiro128** match their published reference outputs', () => {
  // splitmix64 from state 0 (Vigna's splitmix64.c)
  assert.deepEqual(splitmix64(0n, 3), [0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn]);
  // xoshiro128** from state {1, 2, 3, 4} (Vigna's xoshiro128starstar.c): first outputs
  const next = xoshiro128ss([1, 2, 3, 4]);
  assert.deepEqual([next(), next(), next()], [11520, 0, 5927040]);
});

test('seeded streams are deterministic per seed, differ between seeds, and small seeds start anywhere in [0, 1)', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const c = seededRandom(43);
  const xs = Array.from({ length: 5 }, a);
  assert.deepEqual(xs, Array.from({ length: 5 }, b));
  assert.notDeepEqual(xs, Array.from({ length: 5 }, c));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  // first draws of seeds 0..999 are uniform: ten equal bins, chi-square at p = 0.001
  const bins = new Array(10).fill(0);
  for (let seed = 0; seed < 1000; seed++) bins[Math.floor(seededRandom(seed)() * 10)]++;
  const { statistic, critical } = chiSquare(bins, new Array(10).fill(0.1));
  assert.ok(statistic < critical, `first draws over seeds: chi2 ${statistic.toFixed(1)} >= ${critical} (${bins})`);
  // unseeded streams differ from each other
  assert.notEqual(entropyRandom()(), entropyRandom()());
});

test('temperature 0 is greedy; top-k 2 never picks beyond the second', () => {
  assert.deepEqual(histogram({ temperature: 0 }, 100), [100, 0, 0, 0, 0, 0]);
  const h = histogram({ temperature: 1, topK: 2 }, 2000);
  assert.equal(h.slice(2).reduce((s, x) => s + x, 0), 0);
});

const cases = [
  { temperature: 1 },
  { temperature: 0.5 },
  { temperature: 1.7 },
  { temperature: 1, topK: 3 },
  { temperature: 1, topP: 0.9 },
  { temperature: 1.5, topP: 0.95, topK: 5 },
  { temperature: 1, minP: 0.1 },
  { temperature: 2, minP: 0.05, topP: 0.99 },
];

test('first tokens over many seeds follow the warped softmax (chi-square, p = 0.001)', () => {
  for (const opts of cases) {
    const expected = reference(logits, opts);
    const counts = histogram(opts, 4000);
    const { statistic, df, critical } = chiSquare(counts, expected);
    assert.ok(statistic < critical, `${JSON.stringify(opts)}: chi2 ${statistic.toFixed(2)} (df ${df}) >= ${critical}; counts ${counts}`);
  }
});

test('a later draw of each stream (the 7th) follows the same distribution', () => {
  for (const opts of cases.slice(0, 4)) {
    const { statistic, df, critical } = chiSquare(histogram(opts, 4000, 7), reference(logits, opts));
    assert.ok(statistic < critical, `${JSON.stringify(opts)}: chi2 ${statistic.toFixed(2)} (df ${df}) >= ${critical}`);
  }
});

test('the chi-square check has power: a sampler off by a little is caught', () => {
  // sampling at temperature 1.15 while claiming 1 must fail the same test
  const { statistic, critical } = chiSquare(histogram({ temperature: 1.15 }, 4000), reference(logits, { temperature: 1 }));
  assert.ok(statistic > critical, `chi2 ${statistic.toFixed(2)} should exceed ${critical}`);
});

test('top-p keeps the smallest prefix reaching p; min-p drops tokens below minP x the top', () => {
  // probabilities at t=1: 0.50, 0.30, 0.07, 0.04, ...; top-p 0.6 keeps the first two, 0.4 only the first
  const h = histogram({ temperature: 1, topP: 0.6 }, 2000);
  assert.equal(h.slice(2).reduce((s, x) => s + x, 0), 0);
  assert.ok(h[1] > 0);
  assert.deepEqual(histogram({ temperature: 1, topP: 0.4 }, 500), [500, 0, 0, 0, 0, 0]);
  // p1/p0 = e^-0.5 = 0.61, p2/p0 = e^-2 = 0.135: min-p 0.5 keeps two, min-p 0.1 keeps three
  assert.deepEqual(histogram({ temperature: 1, minP: 0.5 }, 2000).slice(2), [0, 0, 0, 0]);
  const three = histogram({ temperature: 1, minP: 0.1 }, 2000);
  assert.ok(three[2] > 0 && three.slice(3).every((c) => c === 0));
});

test('candidatesNeeded asks the graph for exactly enough top logits', () => {
  assert.equal(candidatesNeeded({ temperature: 0 }, 1000), 1);
  assert.equal(candidatesNeeded({ temperature: 0 }, 1000, 5), 5);
  assert.equal(candidatesNeeded({ temperature: 1, topK: 40 }, 1000), 40);
  assert.equal(candidatesNeeded({ temperature: 1 }, 1000), 1000);
});

test('findStop finds the earliest stop string, also one split across steps', () => {
  assert.equal(findStop('hello world', ['wor', 'llo']), 2);
  assert.equal(findStop('abc', ['x']), -1);
  assert.equal(findStop('ab</s', ['</s>']), -1);
  assert.equal(findStop('ab</s>', ['</s>'], 5), 2);
});
