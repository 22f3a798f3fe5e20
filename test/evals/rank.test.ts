import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bradleyTerry, bradleyTerryIntervals, elo, type Match } from '../../src/evals/rank.js';
import { createRng, spearman } from '../../src/evals/stats.js';

/** Matches between players of known log-strengths. */
function simulate(strengths: Map<string, number>, count: number, seed: number): Match[] {
  const rng = createRng(seed);
  const players = [...strengths.keys()];
  const out: Match[] = [];
  while (out.length < count) {
    const a = players[rng.int(players.length)];
    const b = players[rng.int(players.length)];
    if (a === b) continue;
    const pa = 1 / (1 + Math.exp(strengths.get(b)! - strengths.get(a)!));
    out.push({ a, b, winner: rng.next() < pa ? a : b });
  }
  return out;
}

const truth = new Map([['p0', -2], ['p1', -1], ['p2', 0], ['p3', 1], ['p4', 2]]);
const players = [...truth.keys()];

test('Elo: one match moves both ratings by K/2 from equal ratings', () => {
  const r = elo(['a', 'b'], [{ a: 'a', b: 'b', winner: 'a' }], { start: 1000, k: 32 });
  assert.equal(r.get('a'), 1016);
  assert.equal(r.get('b'), 984);
});

test('Elo and Bradley-Terry recover the order of synthetic players with known strengths', () => {
  const matches = simulate(truth, 3000, 3);
  const bt = bradleyTerry(players, matches);
  const e = elo(players, matches, { start: 1000, k: 32 });
  assert.deepEqual([...players].sort((x, y) => bt.get(x)! - bt.get(y)!), players);
  assert.equal(spearman(players.map((p) => truth.get(p)!), players.map((p) => e.get(p)!)), 1);
  // Maximum likelihood recovers the scale too (log-strength gaps of 1).
  for (const p of players) assert.ok(Math.abs(bt.get(p)! - truth.get(p)!) < 0.25, `${p}: ${bt.get(p)} vs ${truth.get(p)}`);
});

test('Bradley-Terry is independent of match order; Elo is not', () => {
  const matches = simulate(truth, 300, 4);
  const reversed = [...matches].reverse();
  const a = bradleyTerry(players, matches);
  const b = bradleyTerry(players, reversed);
  for (const p of players) assert.ok(Math.abs(a.get(p)! - b.get(p)!) < 1e-6);
  const ea = elo(players, matches, { start: 1000, k: 32 });
  const eb = elo(players, reversed, { start: 1000, k: 32 });
  assert.ok(players.some((p) => Math.abs(ea.get(p)! - eb.get(p)!) > 1));
});

test('Bradley-Terry stays finite for a player that never wins, and its bootstrap intervals cover the truth', () => {
  const matches = simulate(truth, 1500, 5);
  const losses: Match[] = Array.from({ length: 20 }, () => ({ a: 'never', b: 'p0', winner: 'p0' }));
  const bt = bradleyTerry([...players, 'never'], [...matches, ...losses]);
  assert.ok(Number.isFinite(bt.get('never')!) && bt.get('never')! < bt.get('p0')!);
  const intervals = bradleyTerryIntervals(players, matches, { resamples: 100, confidence: 0.95, seed: 1 });
  for (const p of players) {
    const ci = intervals.get(p)!;
    assert.ok(ci.low <= truth.get(p)! + 0.1 && truth.get(p)! - 0.1 <= ci.high, `${p}: [${ci.low}, ${ci.high}] vs ${truth.get(p)}`);
  }
});

test('preference verdicts are coded by offered position: two coin-flipping judges agree at kappa near 0', async () => {
  const { positionOf } = await import('../../src/evals/preferences.js');
  const { cohenKappa, createRng } = await import('../../src/evals/stats.js');
  const rng = createRng(4);
  const traits = Array.from({ length: 144 }, (_, i) => `t${i}`);
  const byPosition: [string, string][] = [];
  const byName: [string, string][] = [];
  for (let i = 0; i < 4000; i++) {
    const a = traits[rng.int(144)];
    const b = traits.filter((t) => t !== a)[rng.int(143)];
    const [x, y] = [rng.next() < 0.5 ? a : b, rng.next() < 0.5 ? a : b];
    byPosition.push([positionOf({ a, b }, x)!, positionOf({ a, b }, y)!]);
    byName.push([x, y]);
  }
  const kappa = (pairs: [string, string][]) => cohenKappa(pairs.map((p) => p[0]), pairs.map((p) => p[1]))!;
  assert.ok(Math.abs(kappa(byPosition)) < 0.05, `by position: ${kappa(byPosition)}`);
  assert.ok(kappa(byName) > 0.45, `coded by trait name, chance agreement is ~1/144 and coins look like agreement: ${kappa(byName)}`);
});

test('Elo against hand-computed updates on the 400-point scale', () => {
  const r = elo(['a', 'b'], [{ a: 'a', b: 'b', winner: 'a' }, { a: 'b', b: 'a', winner: 'a' }], { start: 1000, k: 32 });
  // 1016 vs 984, then E(a) = 1 / (1 + 10^((984 - 1016) / 400)) = 0.545922...; a gains 32 * (1 - E).
  const expected = 1 / (1 + 10 ** (-32 / 400));
  assert.ok(Math.abs(r.get('a')! - (1016 + 32 * (1 - expected))) < 1e-9, String(r.get('a')));
  assert.ok(Math.abs(r.get('b')! - (984 - 32 * (1 - expected))) < 1e-9);
});
