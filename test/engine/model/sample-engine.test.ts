/**
 * The sampler through the real engine on the bundled tiny model: over many seeds, the first token
 * and a later token follow the model's own next-token distribution after the warpers.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { Model } from '../../../src/engine/generate/model.js';
import { TextTokenizer } from '../../../src/engine/io/index.js';
import { chiSquare, warpedSoftmax } from './chi-square.js';

const dir = resolve('models/tiny');
const model = Model.load(dir, { threads: 1 });
const tokenizer = TextTokenizer.load(dir);
after(() => model.close());

const prompt = tokenizer.encodeChat([{ role: 'user', content: 'Give me some advice.' }], { addGenerationPrompt: true });
const V = model.config.vocabSize;

async function nextTokenProbs(ids: number[], opts: Parameters<typeof warpedSoftmax>[1]): Promise<number[]> {
  const [logits] = await model.logits([ids]);
  return warpedSoftmax(logits.subarray((ids.length - 1) * V, ids.length * V), opts);
}

test('first and second tokens sampled over 1500 seeds follow the warped model distribution (chi-square, p = 0.001)', async () => {
  const opts = { temperature: 1.2, topK: 10, topP: 0.95, minP: 0.05 };
  const seeds = 1500;
  const generations = await model.generate(Array.from({ length: seeds }, () => prompt), { ...opts, maxTokens: 2, stopTokens: [], seed: 0, batchSize: 250 });
  const first = new Array(V).fill(0);
  for (const g of generations) first[g.tokens[0]]++;
  const p1 = await nextTokenProbs(prompt, opts);
  const a = chiSquare(first, p1);
  assert.ok(a.statistic < a.critical, `first token: chi2 ${a.statistic.toFixed(2)} (df ${a.df}) >= ${a.critical}`);
  assert.ok(a.df >= 2, `a test over at least three outcomes (df ${a.df})`);

  // the second token, given the most frequent first token: its conditional distribution
  const t0 = first.indexOf(Math.max(...first));
  const second = new Array(V).fill(0);
  for (const g of generations) if (g.tokens[0] === t0) second[g.tokens[1]]++;
  const p2 = await nextTokenProbs([...prompt, t0], opts);
  const b = chiSquare(second, p2);
  assert.ok(b.statistic < b.critical, `second token: chi2 ${b.statistic.toFixed(2)} (df ${b.df}) >= ${b.critical}`);
});

test('unseeded generations differ between calls; seeded ones repeat', async () => {
  const opts = { temperature: 1, maxTokens: 12, stopTokens: [] };
  const rows = Array.from({ length: 4 }, () => prompt);
  const [a, b] = [await model.generate(rows, opts), await model.generate(rows, opts)];
  assert.notDeepEqual(a.map((g) => g.tokens), b.map((g) => g.tokens));
  const [c, d] = [await model.generate(rows, { ...opts, seed: 5 }), await model.generate(rows, { ...opts, seed: 5 })];
  assert.deepEqual(c.map((g) => g.tokens), d.map((g) => g.tokens));
});

test('logit bias and penalties move the distribution: a +100 bias forces a token, a presence penalty stops repeats', async () => {
  const forced = tokenizer.encode('Paris', { addSpecialTokens: false })[0];
  const [g] = await model.generate([prompt], { temperature: 0, maxTokens: 3, stopTokens: [], logitBias: new Map([[forced, 100]]) });
  assert.deepEqual(g.tokens, [forced, forced, forced]);
  const [p] = await model.generate([prompt], { temperature: 0, maxTokens: 3, stopTokens: [], logitBias: new Map([[forced, 100]]), presencePenalty: 200 });
  assert.equal(p.tokens[0], forced);
  assert.notEqual(p.tokens[1], forced);
});
