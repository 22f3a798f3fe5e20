/** Every seeded stream starts uniform from its first draw, whatever the seed (small integers included). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seedState32 } from '../../src/core/seed.js';
import { seededRandom } from '../../src/engine/generate/sample.js';
import { createRng } from '../../src/evals/stats.js';
import { Rng } from '../../src/train/rng.js';

// chi-square critical value, 9 degrees of freedom, p = 0.001
const CRITICAL_9 = 27.877;

function chiSquareUniform(draws: number[], bins = 10): number {
  const counts = new Array<number>(bins).fill(0);
  for (const d of draws) counts[Math.min(bins - 1, Math.floor(d * bins))] += 1;
  const expected = draws.length / bins;
  return counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
}

const firstDraws = (make: (seed: number) => () => number) => Array.from({ length: 4000 }, (_, seed) => make(seed)());

test('the first draw over seeds 0..3999 is uniform for the sampler, the training and the bootstrap streams', () => {
  const streams: Record<string, (seed: number) => () => number> = {
    sampler: (seed) => seededRandom(seed),
    training: (seed) => {
      const rng = Rng.seeded(seed);
      return () => rng.uniform();
    },
    bootstrap: (seed) => {
      const rng = createRng(seed);
      return () => rng.next();
    },
  };
  for (const [name, make] of Object.entries(streams)) {
    const draws = firstDraws(make);
    const stat = chiSquareUniform(draws);
    assert.ok(stat < CRITICAL_9, `${name}: chi-square ${stat.toFixed(1)} over 10 bins (critical ${CRITICAL_9})`);
    // the old failure: small seeds all started near 1
    assert.ok(draws.slice(0, 20).some((d) => d < 0.5), `${name}: seeds 0-19 all drew >= 0.5 first`);
  }
});

test('the chi-square check has power: unmixed small seeds in the state fail it', () => {
  const unmixed = Array.from({ length: 4000 }, (_, seed) => ((seed * 2654435761) >>> 0) / 2 ** 32 / 8);
  assert.ok(chiSquareUniform(unmixed) > CRITICAL_9);
});

test('seed states are reproducible, distinct for neighbouring seeds, and never all zero', () => {
  assert.deepEqual(seedState32(7), seedState32(7));
  assert.notDeepEqual(seedState32(7), seedState32(8));
  for (let seed = -5; seed < 50; seed++) assert.ok(seedState32(seed).some((w) => w !== 0));
});
