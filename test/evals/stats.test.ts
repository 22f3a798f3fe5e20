import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootstrapInterval, clopperPearson, cohenKappa, compare, confusionCounts, createRng, macroF1, mean, metricOf, spearman, type Rng } from '../../src/evals/stats.js';

const boot = { resamples: 1000, confidence: 0.95, seed: 7 };

test('bootstrap interval covers the known mean of synthetic data, and is deterministic per seed', () => {
  const rng = createRng(1);
  // Bernoulli(0.3): 400 draws.
  const xs = Array.from({ length: 400 }, () => (rng.next() < 0.3 ? 1 : 0));
  const ci = bootstrapInterval(xs, mean, boot)!;
  assert.ok(ci.low < 0.3 && 0.3 < ci.high, `interval ${ci.low}-${ci.high} misses 0.3`);
  assert.ok(ci.high - ci.low < 0.12, 'about ±1.96·sqrt(.21/400) = ±0.045');
  assert.deepEqual(bootstrapInterval(xs, mean, boot), ci, 'same seed, same interval');
  assert.notDeepEqual(bootstrapInterval(xs, mean, { ...boot, seed: 8 }), ci);
});

test('bootstrap intervals cover the true mean in about 95% of synthetic experiments', () => {
  let covered = 0;
  const runs = 200;
  for (let r = 0; r < runs; r++) {
    const rng = createRng(100 + r);
    const xs = Array.from({ length: 60 }, () => rng.next() * 10); // uniform(0, 10): mean 5
    const ci = bootstrapInterval(xs, mean, { resamples: 300, confidence: 0.95, seed: r })!;
    if (ci.low <= 5 && 5 <= ci.high) covered++;
  }
  assert.ok(covered / runs > 0.88 && covered / runs <= 0.985, `coverage ${covered / runs}`);
});

test('metricOf counts missing scores and averages the rest', () => {
  const m = metricOf([1, 0, null, 1, 1], boot);
  assert.equal(m.value, 0.75);
  assert.equal(m.n, 4);
  assert.equal(m.missing, 1);
});

test('compare pairs samples on keys and gives the paired difference', () => {
  const mine = new Map([['a', 5], ['b', 6], ['c', 7], ['d', null]] as [string, number | null][]);
  const theirs = new Map([['a', 3], ['b', 4], ['c', 5], ['d', 1]] as [string, number | null][]);
  const c = compare('base', mine, theirs, boot);
  assert.equal(c.paired, true);
  assert.equal(c.n, 3);
  assert.equal(c.difference, 2);
  assert.deepEqual(c.ci, { low: 2, high: 2 }, 'constant paired differences have a zero-width interval');
  const unpaired = compare('base', new Map([['x', 1], ['y', 3]]), new Map([['z', 0]]), boot);
  assert.equal(unpaired.paired, false);
  assert.equal(unpaired.difference, null, 'no shared keys: no difference, not a silent unpaired one');
  assert.match(unpaired.unpaired!, /no sample scored on both sides/);
});

test('Cohen\'s kappa on known values', () => {
  // Classic 2x2 example: 50 items, a yes/b yes 20, a yes/b no 5, a no/b yes 10, a no/b no 15 -> kappa 0.4.
  const a = [...Array(20).fill('y'), ...Array(5).fill('y'), ...Array(10).fill('n'), ...Array(15).fill('n')];
  const b = [...Array(20).fill('y'), ...Array(5).fill('n'), ...Array(10).fill('y'), ...Array(15).fill('n')];
  assert.ok(Math.abs(cohenKappa(a, b)! - 0.4) < 1e-12);
  assert.equal(cohenKappa(['x', 'y'], ['x', 'y']), 1);
  assert.equal(cohenKappa(['x', 'y'], ['y', 'x']), -1);
});

test('Spearman on known values, ties averaged', () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  // Hand computed: ranks x = 1,2,3,4,5; y = [2,1,4,3,5] -> d^2 = 1+1+1+1+0 = 4 -> 1 - 6*4/(5*24) = 0.8
  assert.ok(Math.abs(spearman([1, 2, 3, 4, 5], [20, 10, 40, 30, 50])! - 0.8) < 1e-12);
  // Ties: pearson on average ranks [1.5,1.5,3] vs [1,2,3] = 0.866...
  assert.ok(Math.abs(spearman([1, 1, 2], [1, 2, 3])! - Math.sqrt(3) / 2) < 1e-12);
});

test('macro-F1 and confusion counts on a known case', () => {
  const truth = ['a', 'a', 'b', 'b'];
  const predicted = ['a', 'b', 'b', 'b'];
  // F1(a) = 2/3, F1(b) = 0.8 -> 0.7333
  assert.ok(Math.abs(macroF1(truth, predicted) - (2 / 3 + 0.8) / 2) < 1e-12);
  assert.deepEqual(confusionCounts(['a', 'b'], truth, predicted), [[1, 1], [0, 2]]);
});

test('clustered bootstrap: copies of one sample do not narrow the interval', () => {
  const rng = createRng(2);
  const base = Array.from({ length: 20 }, () => (rng.next() < 0.5 ? 1 : 0));
  // Every sample repeated 10 times (e.g. 10 suffixes on the same prompt with the same outcome).
  const scores = base.flatMap((v) => Array(10).fill(v) as number[]);
  const clusters = base.flatMap((_, i) => Array(10).fill(`p${i}`) as string[]);
  const naive = metricOf(scores, boot).ci!;
  const clustered = metricOf(scores, boot, clusters).ci!;
  const alone = metricOf(base, boot).ci!;
  assert.ok(clustered.high - clustered.low > 2 * (naive.high - naive.low), 'the naive interval pretends to have 200 samples');
  assert.ok(Math.abs(clustered.high - clustered.low - (alone.high - alone.low)) < 0.08, 'as wide as the 20 distinct samples');
  const paired = compare('base', new Map(scores.map((v, i) => [`p${Math.floor(i / 10)}/s${i % 10}`, v])), new Map(scores.map((_, i) => [`p${Math.floor(i / 10)}/s${i % 10}`, 0])), boot, (k) => k.split('/')[0]);
  assert.ok(paired.ci!.high - paired.ci!.low > 2 * (naive.high - naive.low));
});

const normal = (rng: Rng) => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());

/** Share of `runs` synthetic experiments whose metric interval covers `truth`. */
function coverage(runs: number, truth: number, draw: (rng: Rng) => { scores: number[]; clusters?: string[] }): number {
  const rng = createRng(11);
  let covered = 0;
  for (let r = 0; r < runs; r++) {
    const { scores, clusters } = draw(rng);
    const ci = metricOf(scores, { ...boot, seed: r }, clusters).ci;
    if (ci && ci.low <= truth && truth <= ci.high) covered++;
  }
  return covered / runs;
}

test('proportions: Wilson intervals cover at about 95% (not 97.5%), also near 0, and a rate of 0 has width', () => {
  for (const [p, n] of [[0.3, 40], [0.2, 60]] as const) {
    const c = coverage(1000, p, (rng) => ({ scores: Array.from({ length: n }, () => (rng.next() < p ? 1 : 0)) }));
    assert.ok(c >= 0.92 && c <= 0.98, `p=${p}, n=${n}: coverage ${c}`);
  }
  const never = metricOf(Array(50).fill(0), boot).ci!;
  assert.equal(never.low, 0);
  assert.ok(never.high > 0.05 && never.high < 0.1, `Wilson upper bound for 0/50: ${never.high}`);
  const exact = clopperPearson(0, 50, 0.95);
  assert.ok(Math.abs(exact.high - (1 - 0.025 ** (1 / 50))) < 1e-9, 'Clopper-Pearson 0/n upper bound is 1 - (alpha/2)^(1/n)');
});

test('clustered means: the cluster-robust t interval covers at about 95% with few clusters', () => {
  // 6 conversations of 5 turns, a strong conversation effect: the unit of independence is the conversation.
  const c = coverage(600, 0, (rng) => {
    const scores: number[] = [];
    const clusters: string[] = [];
    for (let g = 0; g < 6; g++) {
      const effect = normal(rng);
      for (let t = 0; t < 5; t++) {
        scores.push(effect + 0.3 * normal(rng));
        clusters.push(`c${g}`);
      }
    }
    return { scores, clusters };
  });
  assert.ok(c >= 0.92 && c <= 0.98, `coverage ${c}`);
});

test('no interval on two samples; every metric says how many clusters it rests on', () => {
  assert.equal(metricOf([1, 3], boot).ci, null);
  assert.equal(metricOf([1, 3, 2, 5], boot, ['a', 'a', 'b', 'b']).clusters, 2);
});
