/** The engine against the PyTorch reference (scripts/fixtures/make_models.py), every family. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Model } from '../../../src/engine/generate/model.js';
import { buildGraph, io } from '../../../src/engine/generate/graphs.js';
import { leftPad, prefillBias } from '../../../src/engine/generate/layout.js';
import { Session, floats } from '../../../src/engine/runtime/index.js';
import { FAMILIES, loadReference, maxAbsDiff, modelDir } from './fixtures.js';

const TOL = 1e-4;

for (const family of FAMILIES) {
  describe(`${family} matches the PyTorch reference`, () => {
    const ref = loadReference(family);
    const model = Model.load(modelDir(family), { threads: 1 });
    after(() => model.close());
    const prompts = ref.prompts.map((p) => p.tokens);

    test('logits of each prompt alone and of the uneven prompts as one left-padded batch', async () => {
      const batch = await model.logits(prompts);
      for (const [i, p] of ref.prompts.entries()) {
        const [alone] = await model.logits([p.tokens]);
        assert.ok(maxAbsDiff(alone, p.logits) <= TOL, `prompt ${i} alone: ${maxAbsDiff(alone, p.logits)}`);
        assert.ok(maxAbsDiff(batch[i], p.logits) <= TOL, `prompt ${i} in the batch: ${maxAbsDiff(batch[i], p.logits)}`);
      }
    });

    test('greedy generation with the KV cache, batched, gives the reference tokens', async () => {
      const batched = await model.generate(prompts, { temperature: 0, maxTokens: 8, stopTokens: [] });
      assert.deepEqual(batched.map((g) => g.tokens), ref.greedy.map((g) => g.tokens));
      assert.ok(batched.every((g) => g.finishReason === 'length'));
      const [alone] = await model.generate([prompts[1]], { temperature: 0, maxTokens: 8, stopTokens: [] });
      assert.deepEqual(alone.tokens, ref.greedy[1].tokens);
    });

    test('the composed (differentiable) RoPE path gives the same logits as the fused one', async () => {
      const session = await Session.create(buildGraph(model.config, { cache: false, logits: true, composedRope: true }), {
        weights: model.weights,
        weightsAs: 'feed',
        threads: 1,
      });
      const p = leftPad(prompts, 0);
      const rep = model.config.numHeads / model.config.numKvHeads;
      const out = await session.run({
        [io.inputIds]: { data: p.ids, dims: [p.batch, p.length] },
        [io.positionIds]: { data: p.positions, dims: [p.batch, p.length] },
        [io.attentionBias]: { data: prefillBias(p, rep, model.config.slidingWindow), dims: [p.batch, 1, rep * p.length, p.length] },
      });
      await session.release();
      const logits = floats(out[io.logits]);
      const V = ref.vocabSize;
      ref.prompts.forEach((pr, i) => {
        const got = logits.subarray((i * p.length + p.pads[i]) * V, (i + 1) * p.length * V);
        assert.ok(maxAbsDiff(got, pr.logits) <= TOL, `prompt ${i}: ${maxAbsDiff(got, pr.logits)}`);
      });
    });

    test('captured residual stream (last token, every layer) and pooled embedding', async () => {
      const layers = Array.from({ length: model.config.numLayers }, (_, l) => l);
      const captured = await model.capture(prompts, prompts.map((p) => p.length), { layers, mode: 'last' });
      const embeddings = await model.embed(prompts);
      ref.prompts.forEach((p, i) => {
        for (const l of layers) assert.ok(maxAbsDiff(captured[i].get(l)!, p.residualLast[l]) <= TOL, `prompt ${i} layer ${l}`);
        assert.ok(maxAbsDiff(embeddings[i], p.embedding) <= TOL, `embedding ${i}`);
      });
    });
  });
}
