/**
 * Pooling over seeds: the two-level interval covers the true mean at about its nominal rate (neither
 * much less nor much more), widens with between-seed variance, and paired contrasts between formats
 * recover a known difference on the same prompts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pairedReplicates, poolReplicates, type Replicates } from '../../src/evals/pooling.js';
import { createRng, type Rng } from '../../src/evals/stats.js';

const normal = (rng: Rng) => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
const byPrompt = (key: string) => key.split('/')[0];

/** k seeds, each shifted by N(0, tau^2), `prompts` prompts with a shared prompt effect and 2 samples each. */
function draw(rng: Rng, k: number, tau: number, prompts = 12, promptEffects?: number[]): Replicates {
  const effects = promptEffects ?? Array.from({ length: prompts }, () => normal(rng));
  return new Map(
    Array.from({ length: k }, (_, s) => {
      const shift = tau * normal(rng);
      const values = new Map<string, number>();
      effects.forEach((e, p) => {
        for (const i of [0, 1]) values.set(`p${p}/${i}`, 50 + shift + e + 0.5 * normal(rng));
      });
      return [s + 1, values];
    }),
  );
}

function coverage(k: number, tau: number, sims: number): number {
  const rng = createRng(7);
  let covered = 0;
  for (let i = 0; i < sims; i++) {
    // Prompt effects are drawn afresh each time: the interval is about the population of prompts too.
    const ci = poolReplicates(draw(rng, k, tau), byPrompt, { resamples: 300, confidence: 0.95, seed: i }).ci!;
    if (ci.low <= 50 && 50 <= ci.high) covered++;
  }
  return covered / sims;
}

test('the pooled interval covers at about 95%: not much less, not much more', () => {
  for (const [k, tau] of [[5, 2], [8, 1]] as const) {
    const c = coverage(k, tau, 300);
    assert.ok(c >= 0.9 && c <= 0.985, `k=${k}, tau=${tau}: coverage ${c}`);
  }
});

test('mean of seed means, between-seed SD, and an interval that widens with between-seed variance', () => {
  const rng = createRng(3);
  const effects = Array.from({ length: 12 }, () => normal(rng));
  const calm = poolReplicates(draw(createRng(1), 4, 0.1, 12, effects), byPrompt, { resamples: 500, confidence: 0.95, seed: 1 });
  const wild = poolReplicates(draw(createRng(1), 4, 5, 12, effects), byPrompt, { resamples: 500, confidence: 0.95, seed: 1 });
  assert.equal(calm.seeds, 4);
  assert.equal(calm.n, 4 * 24);
  assert.ok(Math.abs(calm.value! - calm.perSeed.reduce((s, r) => s + r.value, 0) / 4) < 1e-9);
  assert.ok(wild.betweenSeedSd! > 10 * calm.betweenSeedSd!);
  assert.ok(wild.ci!.high - wild.ci!.low > 5 * (calm.ci!.high - calm.ci!.low));
});

test('a paired contrast between two formats recovers their difference on the same prompts', () => {
  const rng = createRng(5);
  const chat = draw(rng, 3, 0.5);
  // Introspective = chat + 4 on every sample, by seed number; prompt effects cancel in the pairs.
  const introspective: Replicates = new Map([...chat].map(([seed, v]) => [seed, new Map([...v].map(([key, x]) => [key, x! + 4]))]));
  const diff = poolReplicates(pairedReplicates(introspective, chat), byPrompt, { resamples: 300, confidence: 0.95, seed: 2 });
  assert.ok(Math.abs(diff.value! - 4) < 1e-9);
  assert.ok(diff.ci!.high - diff.ci!.low < 1e-9, 'constant paired differences: zero width');
  assert.equal(diff.seeds, 3);
  // Against a baseline (one replicate) every seed pairs with it; disjoint keys give nothing.
  assert.equal(pairedReplicates(chat, new Map([[0, chat.get(1)!]])).size, 3);
  assert.equal(pairedReplicates(chat, new Map([[0, new Map([['other/0', 1]])]])).size, 0);
});

test('poolCells: every cell pooled over its seeds, compared with base and its own prompted subject, formats and methods contrasted', async () => {
  const { baselineSubjects } = await import('../../src/evals/index.js');
  const { MetricTable } = await import('../../src/evals/metrics.js');
  const { poolCells } = await import('../../src/evals/pooling.js');
  const { evalOptionsSchema } = await import('../../src/evals/options.js');
  const { promptedByPersona } = await import('../../src/evals/subjects.js');
  const { pirateConstitution, professorConstitution } = await import('./scripted.js');
  const model = { id: 'm' } as never;
  const cell = (name: string, persona: string) => ({ name, model, persona });
  const subjects = [
    ...baselineSubjects(model, [pirateConstitution, professorConstitution]),
    ...[1, 2].flatMap((s) => [cell(`captain-salt.sft-chat.seed-${s}`, 'Captain Salt'), cell(`captain-salt.sft-introspective.seed-${s}`, 'Captain Salt'), cell(`captain-salt.dpo.seed-${s}`, 'Captain Salt')]),
    cell('professor-quill.sft-chat.seed-1', 'Professor Quill'),
  ];
  const prompted = promptedByPersona(subjects, ['Captain Salt', 'Professor Quill'], 'prompted');
  const ctx = { seed: 1, subjects, options: evalOptionsSchema.parse({ bootstrap: 200 }), base: subjects[0], promptedByPersona: prompted } as never;
  const table = new MetricTable();
  const shift: Record<string, number> = { 'sft-chat': 10, 'sft-introspective': 14, dpo: 20 };
  for (const k of [0, 1, 2]) {
    table.add('expression', 'base', `Captain Salt/${k}`, k);
    table.add('expression', 'base', `Professor Quill/${k}`, k);
    table.add('expression', 'prompted', `Captain Salt/${k}`, k + 5);
    table.add('expression', 'prompted-professor-quill', `Professor Quill/${k}`, k + 1);
    table.add('expression', 'professor-quill.sft-chat.seed-1', `Professor Quill/${k}`, k + 3);
    for (const s of [1, 2]) for (const m of Object.keys(shift)) table.add('expression', `captain-salt.${m}.seed-${s}`, `Captain Salt/${k}`, k + shift[m] + s);
  }
  const { pooled, contrasts } = poolCells(ctx, 'traitExpression', table);
  const chat = pooled.find((p) => p.persona === 'Captain Salt' && p.format === 'chat')!;
  assert.deepEqual([chat.method, chat.seeds, chat.value, chat.betweenSeedSd], ['sft', 2, 12.5, Math.SQRT1_2]);
  assert.deepEqual(chat.comparisons.map((c) => [c.against, c.value]), [['base', 11.5], ['prompted', 6.5]]);
  const quill = pooled.find((p) => p.persona === 'Professor Quill')!;
  assert.deepEqual(quill.comparisons.map((c) => [c.against, c.value]), [['base', 3], ['prompted-professor-quill', 2]]);
  const byFormat = contrasts.find((c) => c.kind === 'format')!;
  assert.deepEqual([byFormat.a.format, byFormat.b.format, byFormat.value, byFormat.seeds], ['chat', 'introspective', -4, 2]);
  assert.equal(contrasts.filter((c) => c.kind === 'method').length, 2, 'dpo against each sft format');
  assert.ok(contrasts.every((c) => c.persona === 'Captain Salt'), 'no contrast across personas');
});

test('a rate pooled over few seeds keeps its interval inside [0, 1], and a difference of rates inside [-1, 1]', () => {
  // Two seeds never, one seed half the time: the t interval over 3 seed means would reach below 0.
  const rates = (ones: number[]): Replicates => new Map(ones.map((k, s) => [s + 1, new Map(Array.from({ length: 10 }, (_, i) => [`p${i}/0`, i < k ? 1 : 0]))]));
  const pooled = poolReplicates(rates([0, 0, 5]), byPrompt, { resamples: 500, confidence: 0.95, seed: 1 });
  assert.ok(Math.abs(pooled.value! - 1 / 6) < 1e-9);
  assert.equal(pooled.ci!.low, 0);
  assert.ok(pooled.ci!.high > pooled.value! && pooled.ci!.high <= 1);
  const difference = poolReplicates(pairedReplicates(rates([10, 10, 5]), rates([0, 0, 0])), byPrompt, { resamples: 500, confidence: 0.95, seed: 1 });
  assert.ok(difference.ci!.high <= 1 && difference.ci!.low < difference.value!, `${JSON.stringify(difference.ci)}`);
  // Scores on a wider scale are left as they are.
  const scores = poolReplicates(new Map([1, 2, 3].map((s) => [s, new Map([['p0/0', s === 3 ? 90 : 2]])])), byPrompt, { resamples: 200, confidence: 0.95, seed: 1 });
  assert.ok(scores.ci!.low < 0, 'a 0-100 score is not clamped to [0, 1]');
});
