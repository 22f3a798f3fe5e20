/** Sampling, stopping and scoring through the real engine on the tiny fixtures. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Model } from '../../../src/engine/generate/model.js';
import { loadReference, modelDir } from './fixtures.js';

function logSoftmaxRow(logits: Float32Array, row: number, V: number): Float64Array {
  const x = logits.subarray(row * V, (row + 1) * V);
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let z = 0;
  for (const v of x) z += Math.exp(v - max);
  const lse = max + Math.log(z);
  return Float64Array.from(x, (v) => v - lse);
}

describe('generation and scoring', () => {
  const ref = loadReference('qwen3');
  const model = Model.load(modelDir('qwen3'), { threads: 1 });
  after(() => model.close());
  const V = ref.vocabSize;
  const prompts = ref.prompts.map((p) => p.tokens);

  test('sampling is deterministic per seed, differs across seeds, and respects top-k 1 = greedy', async () => {
    const opts = { temperature: 1.5, maxTokens: 10, stopTokens: [] };
    const a = await model.generate(prompts, { ...opts, seed: 3 });
    const b = await model.generate(prompts, { ...opts, seed: 3 });
    const c = await model.generate(prompts, { ...opts, seed: 4 });
    assert.deepEqual(a.map((g) => g.tokens), b.map((g) => g.tokens));
    assert.notDeepEqual(a.map((g) => g.tokens), c.map((g) => g.tokens));
    // Row i samples with seed + i: repeated prompts give different rows, each equal to its own seed alone.
    const repeated = await model.generate([prompts[0], prompts[0]], { ...opts, seed: 3 });
    assert.notDeepEqual(repeated[0].tokens, repeated[1].tokens);
    const [alone] = await model.generate([prompts[0]], { ...opts, seed: 4 });
    assert.deepEqual(repeated[1].tokens, alone.tokens);
    const topK1 = await model.generate(prompts, { ...opts, topK: 1, maxTokens: 8 });
    assert.deepEqual(topK1.map((g) => g.tokens), ref.greedy.map((g) => g.tokens));
  });

  test('stop tokens end a row (finish reason stop), max tokens ends it with length; batching in chunks', async () => {
    const stopAt = ref.greedy[0].tokens[3];
    const [g] = await model.generate([prompts[0]], { temperature: 0, maxTokens: 8, stopTokens: [stopAt] });
    assert.deepEqual(g.tokens, ref.greedy[0].tokens.slice(0, ref.greedy[0].tokens.indexOf(stopAt)));
    assert.equal(g.finishReason, 'stop');
    const chunked = await model.generate(prompts, { temperature: 0, maxTokens: 5, stopTokens: [], batchSize: 2 });
    assert.deepEqual(chunked.map((x) => x.tokens), ref.greedy.map((x) => x.tokens.slice(0, 5)));
    assert.ok(chunked.every((x) => x.finishReason === 'length'));
  });

  test('score: log-probabilities of continuations equal log_softmax of the reference logits', async () => {
    const cut = [4, 1, 7];
    const scores = await model.score(
      prompts.map((p, i) => p.slice(0, cut[i])),
      prompts.map((p, i) => p.slice(cut[i])),
      { topK: 3 },
    );
    ref.prompts.forEach((p, i) => {
      const s = scores[i];
      assert.equal(s.logprobs.length, p.tokens.length - cut[i]);
      s.logprobs.forEach((lp, j) => {
        const row = logSoftmaxRow(p.logits, cut[i] - 1 + j, V);
        assert.ok(Math.abs(lp - row[p.tokens[cut[i] + j]]) < 1e-4, `prompt ${i} token ${j}: ${lp} vs ${row[p.tokens[cut[i] + j]]}`);
        const best = row.reduce((m, v, id) => (v > row[m] ? id : m), 0);
        assert.equal(s.top![j][0].id, best);
        assert.ok(Math.abs(s.top![j][0].logprob - row[best]) < 1e-4);
      });
      assert.ok(Math.abs(s.total - s.logprobs.reduce((a, b) => a + b, 0)) < 1e-9);
    });
  });

  test('generated logprobs agree with scoring the generated tokens', async () => {
    const [g] = await model.generate([prompts[2]], { temperature: 0, maxTokens: 5, stopTokens: [], logprobs: true, topLogprobs: 2 });
    const [s] = await model.score([prompts[2]], [g.tokens]);
    g.logprobs!.forEach((lp, j) => assert.ok(Math.abs(lp.logprob - s.logprobs[j]) < 1e-4, `token ${j}`));
  });
});
