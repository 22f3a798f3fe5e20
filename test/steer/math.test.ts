/** The white-box stage's pure parts on constructed inputs: vector math, the pair filter, the sweep rule, options, vector files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bandLayers,
  chooseLayer,
  splitHalves,
  keepPairs,
  loadVectors,
  meanDifference,
  pearsonInterval,
  percentile,
  saveVectors,
  steerOptionsSchema,
  vectorsFromActivations,
  type LayerVectors,
  type ScoredRollout,
} from '../../src/steer/index.js';
import { InputError } from '../../src/core/errors.js';

test('mean difference is exact on constructed activations, per layer', () => {
  const act = (a: number[], b: number[]) => new Map([[0, Float32Array.from(a)], [3, Float32Array.from(b)]]);
  const positive = [act([1, 2], [10, 0]), act([3, 4], [20, 0]), act([5, 6], [30, 3])];
  const negative = [act([0, 0], [1, 1]), act([2, -2], [3, 3])];
  const [v0, v3] = vectorsFromActivations(positive, negative, [0, 3]);
  assert.deepEqual(Array.from(v0), [3 - 1, 4 - -1]);
  assert.deepEqual(Array.from(v3), [20 - 2, 1 - 2]);
  assert.throws(() => meanDifference([], [[1]]), /no rows/);
});

const rollout = (pair: number, question: number, sign: 'positive' | 'negative', expression: number | null, coherence: number | null, reply = [1]): ScoredRollout => ({
  pair,
  question,
  rollout: 0,
  sign,
  text: 'x',
  reply,
  expression,
  coherence,
});
const filter = { positiveMin: 50, negativeBelow: 50, coherenceMin: 50 };

test('the filter keeps exactly the pairs with positive >= 50, negative < 50, both coherence >= 50', () => {
  const rs = [
    // kept: boundary values included / excluded exactly as the published protocol says
    ...[rollout(0, 0, 'positive', 50, 50), rollout(0, 0, 'negative', 49.9, 50)],
    ...[rollout(0, 1, 'positive', 90, 90), rollout(0, 1, 'negative', 10, 80)],
    // positive too weak
    ...[rollout(1, 0, 'positive', 49.9, 90), rollout(1, 0, 'negative', 10, 90)],
    // negative too strong (50 is not < 50)
    ...[rollout(1, 1, 'positive', 90, 90), rollout(1, 1, 'negative', 50, 90)],
    // one incoherent side
    ...[rollout(2, 0, 'positive', 90, 90), rollout(2, 0, 'negative', 10, 49)],
    ...[rollout(2, 1, 'positive', 90, 49), rollout(2, 1, 'negative', 10, 90)],
    // a missing score, an empty reply, an unmatched side
    ...[rollout(3, 0, 'positive', null, 90), rollout(3, 0, 'negative', 10, 90)],
    ...[rollout(3, 1, 'positive', 90, 90, []), rollout(3, 1, 'negative', 10, 90)],
    rollout(4, 0, 'positive', 90, 90),
  ];
  const { kept, counts } = keepPairs(rs, filter);
  assert.deepEqual(
    kept.map((k) => `${k.positive.pair}/${k.positive.question}`),
    ['0/0', '0/1'],
  );
  assert.ok(kept.every((k) => k.positive.sign === 'positive' && k.negative.sign === 'negative' && k.positive.question === k.negative.question), 'each kept pair is a positive and a negative of the same slot');
  assert.deepEqual(counts, { candidates: 8, kept: 2, positiveTooWeak: 1, negativeTooStrong: 1, incoherent: 2, missingScore: 1, emptyReply: 1 });
  assert.equal(keepPairs(rs, { ...filter, positiveMin: 95 }).kept.length, 0);
});

test('the percentile is the nearest-rank order statistic', () => {
  const xs = [9, 1, 8, 2, 7, 3, 6, 4, 5, 10]; // 1..10 shuffled
  assert.equal(percentile(xs, 25), 3, 'ceil(0.25 * 10) = 3rd smallest');
  assert.equal(percentile(xs, 10), 1);
  assert.equal(percentile(xs, 11), 2);
  assert.equal(percentile(xs, 50), 5);
  assert.equal(percentile(xs, 100), 10);
  assert.equal(percentile([4, 4, 1], 25), 1);
  assert.equal(percentile(Array.from({ length: 101 }, (_, i) => 100 - i), 25), 25, 'ceil(25.25) = 26th smallest of 0..100');
  assert.throws(() => percentile([], 25), /no values/);
});

test('Pearson r with a Fisher-z interval that contains r and narrows with n', () => {
  const x = [1, 2, 3, 4, 5, 6, 7, 8];
  const y = [2, 1, 4, 3, 6, 5, 8, 7];
  const c = pearsonInterval(x, y);
  assert.ok(Math.abs(c.r - 0.9047619) < 1e-6, `${c.r}`);
  assert.equal(c.n, 8);
  // tanh(atanh(r) ± 1.959964 / sqrt(5))
  assert.ok(Math.abs(c.low - Math.tanh(Math.atanh(c.r) - 1.959964 / Math.sqrt(5))) < 1e-6, 'Fisher-z lower bound');
  assert.ok(Math.abs(c.high - Math.tanh(Math.atanh(c.r) + 1.959964 / Math.sqrt(5))) < 1e-6, 'Fisher-z upper bound');
  const wide = pearsonInterval(x.slice(0, 5), y.slice(0, 5));
  assert.ok(wide.high - wide.low > c.high - c.low, 'fewer points, wider interval');
  assert.ok(Number.isNaN(pearsonInterval([1, 2, 3], [1, 2, 3]).low), 'no interval at n <= 3');
});

test('the sweep rule: largest movement among cells at equal coherence, ties to the smaller coefficient', () => {
  const baseline = { expression: 20, coherence: 80, n: 10 };
  const cell = (layer: number, coef: number, expression: number, coherence: number) => ({ layer, coef, expression, coherence, n: 10 });
  const cells = [
    cell(1, 1, 40, 78), // +20, coherent
    cell(1, 2, 70, 60), // +50 but incoherent (floor 70)
    cell(2, 1, 45, 71), // +25, coherent: the winner
    cell(2, 2, 45, 90), // +25 too, larger coefficient
    cell(3, -1, 5, 85), // lowers expression: movement 5 - 20 = -15, never chosen
  ];
  const { chosen, coherenceFloor, cells: judged } = chooseLayer(baseline, cells, { coherenceTolerance: 10, coherenceMin: 50 });
  assert.equal(coherenceFloor, 70);
  assert.deepEqual(chosen, { layer: 2, coef: 1, movement: 25, coherence: 71 });
  assert.deepEqual(judged.map((c) => c.admissible), [true, false, true, true, false]);
  assert.equal(judged[4].movement, -15);
  assert.equal(chooseLayer(baseline, [cell(1, 2, 70, 60)], { coherenceTolerance: 10, coherenceMin: 50 }).chosen, null);
  // the absolute floor wins over a tolerant baseline
  assert.equal(chooseLayer({ ...baseline, coherence: 40 }, [cell(1, 1, 90, 45)], { coherenceTolerance: 10, coherenceMin: 50 }).chosen, null);
});

test('the sweep rule never chooses a cell that lowers or keeps expression, however coherent', () => {
  const baseline = { expression: 40, coherence: 80, n: 30 };
  const cell = (layer: number, coef: number, expression: number) => ({ layer, coef, expression, coherence: 90, n: 30 });
  const lowering = [cell(1, 1, 30), cell(1, 2, 39.5), cell(2, -1, 35), cell(2, 4, 40)];
  const { chosen, cells } = chooseLayer(baseline, lowering, { coherenceTolerance: 10, coherenceMin: 50 });
  assert.deepEqual(
    cells.map((c) => c.movement),
    [-10, -0.5, -5, 0],
  );
  assert.equal(chosen, null, 'no steering effect');
  assert.ok(cells.every((c) => !c.admissible));
  // one cell that raises expression by a hair is the choice
  assert.deepEqual(chooseLayer(baseline, [...lowering, cell(3, 1, 40.5)], { coherenceTolerance: 10, coherenceMin: 50 }).chosen, { layer: 3, coef: 1, movement: 0.5, coherence: 90 });
});

test('the evaluation questions split into two disjoint halves that cover them all', () => {
  const questions = ['a', 'b', 'c', 'd', 'e'];
  const { selection, report } = splitHalves(questions);
  assert.deepEqual(selection, ['a', 'c', 'e']);
  assert.deepEqual(report, ['b', 'd']);
  assert.equal(steerOptionsSchema.parse({}).sweep.rollouts, 3);
  assert.equal(steerOptionsSchema.safeParse({ sweep: { rollouts: 2 } }).success, false, 'at least 3 rollouts per cell');
  assert.equal(steerOptionsSchema.safeParse({ extract: { questions: 10, extractQuestions: 9 } }).success, false, 'two evaluation questions at least');
});

test('options: published defaults, every number configurable, bad values rejected', () => {
  const o = steerOptionsSchema.parse({});
  assert.equal(o.extract.pairs, 5);
  assert.equal(o.extract.questions, 40);
  assert.equal(o.extract.extractQuestions, 20);
  assert.equal(o.extract.rollouts, 10);
  assert.deepEqual(o.extract.filter, { positiveMin: 50, negativeBelow: 50, coherenceMin: 50 });
  assert.equal(o.sweep.positions, 'all');
  assert.equal(o.axis, undefined);
  assert.equal(steerOptionsSchema.parse({ axis: {} }).axis!.percentile, 25);
  assert.equal(steerOptionsSchema.parse({ extract: { filter: { positiveMin: 70 } } }).extract.filter.positiveMin, 70);
  assert.equal(steerOptionsSchema.safeParse({ extract: { questions: 10, extractQuestions: 10 } }).success, false);
  assert.equal(steerOptionsSchema.safeParse({ sweep: { positions: 'middle' } }).success, false);
  assert.equal(steerOptionsSchema.safeParse({ unknown: 1 }).success, false);
});

test('the capped band from fractions of depth or explicit layers', () => {
  assert.deepEqual(bandLayers(30, { band: [0.6, 0.8] }), [17, 18, 19, 20, 21, 22, 23]);
  assert.deepEqual(bandLayers(2, { band: [0.6, 0.8] }), [1]);
  assert.deepEqual(bandLayers(30, { band: [0.6, 0.8], layers: [5, 3, 5] }), [3, 5]);
  assert.throws(() => bandLayers(4, { band: [0, 1], layers: [4] }), InputError);
});

test('vectors round-trip through JSON and safetensors with their metadata', () => {
  const dir = mkdtempSync(join(tmpdir(), 'steer-vectors-'));
  try {
    const v: LayerVectors = {
      kind: 'persona',
      trait: 'I am witty.',
      modelId: 'local:/m',
      layers: [0, 2],
      vectors: [Float32Array.from([1, -2, 3.5]), Float32Array.from([0.25, 0, -1])],
      nPositive: 7,
      nNegative: 7,
      meta: { chosenLayer: 2, note: 'x', none: null },
    };
    for (const name of ['v.json', 'v.safetensors']) {
      saveVectors(join(dir, name), v);
      const back = loadVectors(join(dir, name));
      assert.deepEqual({ ...back, vectors: back.vectors.map((x) => Array.from(x)) }, { ...v, vectors: v.vectors.map((x) => Array.from(x)) }, name);
    }
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ kind: 'persona' }));
    assert.throws(() => loadVectors(join(dir, 'bad.json')), (e: unknown) => e instanceof InputError && /bad\.json/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
