import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidatesNeeded, findStop, sampleIndex, seededRandom } from '../../../src/engine/generate/sample.js';

const logits = [3, 2.5, 1, 0.5, -1, -4];

function histogram(opts: Parameters<typeof sampleIndex>[1], n: number, seed = 7): number[] {
  const rng = seededRandom(seed);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[sampleIndex(logits, opts, rng)]++;
  return counts;
}

test('seeded random streams are deterministic per seed and differ between seeds', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const c = seededRandom(43);
  const xs = Array.from({ length: 5 }, a);
  assert.deepEqual(xs, Array.from({ length: 5 }, b));
  assert.notDeepEqual(xs, Array.from({ length: 5 }, c));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
});

test('temperature 0 is greedy; top-k 2 never picks beyond the second', () => {
  assert.deepEqual(histogram({ temperature: 0 }, 100), [100, 0, 0, 0, 0, 0]);
  const h = histogram({ temperature: 1, topK: 2 }, 2000);
  assert.equal(h.slice(2).reduce((s, x) => s + x, 0), 0);
  // p(0)/p(1) = e^0.5 = 1.65 within the pair
  assert.ok(Math.abs(h[0] / h[1] - Math.exp(0.5)) < 0.25, `ratio ${h[0] / h[1]}`);
});

test('sampling frequencies follow softmax(logits / temperature)', () => {
  const n = 20000;
  for (const temperature of [1, 0.5]) {
    const h = histogram({ temperature }, n);
    const w = logits.map((l) => Math.exp(l / temperature));
    const z = w.reduce((s, x) => s + x, 0);
    h.forEach((count, i) => assert.ok(Math.abs(count / n - w[i] / z) < 0.015, `t=${temperature} token ${i}: ${count / n} vs ${w[i] / z}`));
  }
});

test('top-p keeps the smallest prefix reaching p', () => {
  // probabilities at t=1: 0.50, 0.30, 0.07, 0.04, ...; top-p 0.6 keeps the first two, 0.4 only the first
  const h = histogram({ temperature: 1, topP: 0.6 }, 2000);
  assert.equal(h.slice(2).reduce((s, x) => s + x, 0), 0);
  assert.ok(h[1] > 0);
  assert.deepEqual(histogram({ temperature: 1, topP: 0.4 }, 500), [500, 0, 0, 0, 0, 0]);
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
