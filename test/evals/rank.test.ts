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
