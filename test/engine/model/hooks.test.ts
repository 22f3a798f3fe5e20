/** Steering, capping and LoRA: against PyTorch, and the properties they promise. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../../../src/engine/generate/model.js';
import { loadLoraAdapter, mixLoraAdapters, saveLoraAdapter } from '../../../src/engine/io/index.js';
import { loadReference, maxAbsDiff, modelDir } from './fixtures.js';

const TOL = 1e-4;
const ref = loadReference('llama');
const prompt = ref.prompts[0].tokens;
const d = 64;

describe('steering', () => {
  const model = Model.load(modelDir('llama'), { threads: 1 });
  after(() => model.close());
  const steer = ref.steer!;

  test('adding coef * v on reply positions matches the reference logits', async () => {
    const promptLength = prompt.length - 3; // the last 3 tokens are the "reply"
    const hooks = { steer: [{ layer: steer.layer, vector: steer.vector, coef: steer.coef, positions: 'reply' as const }] };
    const [got] = await model.logits([prompt], hooks, [promptLength]);
    assert.ok(maxAbsDiff(got, steer.logits) <= TOL, `${maxAbsDiff(got, steer.logits)}`);
  });

  for (const positions of ['all', 'prompt', 'reply'] as const) {
    test(`the captured activation at the steered layer moves by exactly coef * v (${positions} positions)`, async () => {
      const rows = [prompt, ref.prompts[1].tokens];
      const lengths = [5, 2];
      const layer = 1;
      const v = Array.from({ length: d }, (_, i) => Math.sin(i));
      const base = await model.capture(rows, lengths, { layers: [layer], mode: 'tokens' });
      const moved = await model.capture(rows, lengths, {
        layers: [layer],
        mode: 'tokens',
        hooks: { steer: [{ layer, vector: v, coef: 2.5, positions }] },
      });
      rows.forEach((row, r) => {
        for (let t = 0; t < row.length; t++) {
          const inReply = t >= lengths[r];
          const on = positions === 'all' || (positions === 'reply') === inReply;
          for (let i = 0; i < d; i++) {
            const delta = moved[r].get(layer)![t * d + i] - base[r].get(layer)![t * d + i];
            assert.ok(Math.abs(delta - (on ? 2.5 * v[i] : 0)) < 1e-5, `row ${r} token ${t} dim ${i}: moved ${delta}`);
          }
        }
      });
    });
  }

  test('steering during generation changes what is generated', async () => {
    const plain = await model.generate([prompt], { temperature: 0, maxTokens: 6, stopTokens: [] });
    const steered = await model.generate([prompt], {
      temperature: 0,
      maxTokens: 6,
      stopTokens: [],
      hooks: { steer: [{ layer: 0, vector: steer.vector, coef: 8, positions: 'reply' }] },
    });
    assert.notDeepEqual(steered[0].tokens, plain[0].tokens);
  });
});

test('capture averaged over the reply equals the mean of the per-token capture over reply tokens', async () => {
  const model = Model.load(modelDir('llama'), { threads: 1 });
  const rows = [ref.prompts[0].tokens, ref.prompts[2].tokens];
  const lengths = [4, 9];
  const tokens = await model.capture(rows, lengths, { layers: [0, 1], mode: 'tokens' });
  const mean = await model.capture(rows, lengths, { layers: [0, 1], mode: 'mean' });
  await model.close();
  rows.forEach((row, r) => {
    for (const l of [0, 1]) {
      const expected = new Float64Array(d);
      for (let t = lengths[r]; t < row.length; t++) for (let i = 0; i < d; i++) expected[i] += tokens[r].get(l)![t * d + i] / (row.length - lengths[r]);
      assert.ok(maxAbsDiff(mean[r].get(l)!, expected) < 1e-5, `row ${r} layer ${l}`);
    }
  });
});

describe('activation capping', () => {
  const model = Model.load(modelDir('llama'), { threads: 1 });
  after(() => model.close());
  const cap = ref.cap!;
  const norm = Math.hypot(...cap.axis);
  const projections = (acts: Float32Array) => {
    const out: number[] = [];
    for (let t = 0; t < acts.length / d; t++) {
      let p = 0;
      for (let i = 0; i < d; i++) p += (acts[t * d + i] * cap.axis[i]) / norm;
      out.push(p);
    }
    return out;
  };

  test('capped logits match the reference', async () => {
    const [got] = await model.logits([prompt], { cap: { layers: cap.layers, axis: cap.axis, threshold: cap.threshold } });
    assert.ok(maxAbsDiff(got, cap.logits) <= TOL, `${maxAbsDiff(got, cap.logits)}`);
  });

  test('the projection never exceeds the threshold on the capped band, and did before', async () => {
    const rows = ref.prompts.map((p) => p.tokens);
    const lengths = rows.map((r) => r.length);
    const before = await model.capture(rows, lengths, { layers: cap.layers, mode: 'tokens' });
    const capped = await model.capture(rows, lengths, {
      layers: cap.layers,
      mode: 'tokens',
      hooks: { cap: { layers: cap.layers, axis: cap.axis, threshold: cap.threshold } },
    });
    let exceeded = 0;
    rows.forEach((_, r) => {
      for (const l of cap.layers) {
        exceeded += projections(before[r].get(l)!).filter((p) => p > cap.threshold + 1e-3).length;
        for (const p of projections(capped[r].get(l)!)) assert.ok(p <= cap.threshold + 1e-5, `row ${r} layer ${l}: projection ${p}`);
      }
    });
    assert.ok(exceeded > 0, 'no projection exceeded the threshold without capping: the test would prove nothing');
  });
});

describe('LoRA adapters', () => {
  const lora = ref.lora!;
  const a = modelDir('llama-lora-a');
  const b = modelDir('llama-lora-b');

  test('one adapter applied unmerged matches the reference', async () => {
    const model = Model.load(modelDir('llama'), { threads: 1, adapters: [{ path: a }] });
    const [got] = await model.logits([lora.tokens]);
    await model.close();
    assert.ok(maxAbsDiff(got, lora.a) <= TOL, `${maxAbsDiff(got, lora.a)}`);
  });

  test('two adapters with scales, unmerged and merged, match the reference', async () => {
    const adapters = [
      { path: a, scale: 0.5 },
      { path: b, scale: 2 },
    ];
    const unmerged = Model.load(modelDir('llama'), { threads: 1, adapters });
    const merged = Model.load(modelDir('llama'), { threads: 1, adapters, mergeAdapters: true });
    const [u] = await unmerged.logits([lora.tokens]);
    const [m] = await merged.logits([lora.tokens]);
    await unmerged.close();
    await merged.close();
    assert.ok(maxAbsDiff(u, lora.aHalfPlusBTwice) <= TOL, `unmerged ${maxAbsDiff(u, lora.aHalfPlusBTwice)}`);
    assert.ok(maxAbsDiff(m, lora.aHalfPlusBTwice) <= TOL, `merged ${maxAbsDiff(m, lora.aHalfPlusBTwice)}`);
    assert.ok(maxAbsDiff(u, ref.prompts[0].logits) > 0.1, 'the adapters must change the logits');
  });

  for (const weightsAs of ['feed', 'initializer'] as const) {
    test(`setAdapter replaces an adapter in place, keeping its scale (weights as ${weightsAs})`, async () => {
      const tmp = mkdtempSync(join(tmpdir(), 'engine-lora-'));
      const zeroB = loadLoraAdapter(b); // b's modules and ranks, no effect yet
      for (const m of zeroB.modules.values()) m.B.fill(0);
      saveLoraAdapter(join(tmp, 'zero-b'), zeroB);
      const model = Model.load(modelDir('llama'), { threads: 1, weightsAs, adapters: [{ path: a, scale: 0.5 }, { path: join(tmp, 'zero-b'), scale: 2 }] });
      try {
        const [before] = await model.logits([lora.tokens]); // opens the session that must take the change
        assert.ok(maxAbsDiff(before, lora.aHalfPlusBTwice) > 0.01, 'b must matter: the test would prove nothing');
        await model.setAdapter(1, loadLoraAdapter(b));
        const [after] = await model.logits([lora.tokens]);
        assert.ok(maxAbsDiff(after, lora.aHalfPlusBTwice) <= TOL, `${maxAbsDiff(after, lora.aHalfPlusBTwice)}`);
        await assert.rejects(model.setAdapter(1, loadLoraAdapter(a)), /modules and ranks .* differ/);
      } finally {
        await model.close();
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }

  test('setWeights replaces base weights in place (here by the adapter merged in)', async () => {
    const withA = Model.load(modelDir('llama'), { threads: 1, adapters: [{ path: a }] });
    const model = Model.load(modelDir('llama'), { threads: 1, weightsAs: 'feed' });
    try {
      await model.logits([lora.tokens]);
      await model.setWeights(withA.mergedWeights());
      const [got] = await model.logits([lora.tokens]);
      assert.ok(maxAbsDiff(got, lora.a) <= TOL, `${maxAbsDiff(got, lora.a)}`);
      await assert.rejects(model.setWeights(new Map([['model.norm.weight', new Float32Array(3)]])), /model\.norm\.weight is \d+ values, not 3/);
    } finally {
      await model.close();
      await withA.close();
    }
  });

  test('a PEFT adapter written by the io writer (the two mixed into one) round-trips', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'engine-lora-'));
    try {
      const mixed = mixLoraAdapters([
        { adapter: loadLoraAdapter(a), weight: 0.5 },
        { adapter: loadLoraAdapter(b), weight: 2 },
      ]);
      saveLoraAdapter(join(tmp, 'mixed'), mixed);
      const model = Model.load(modelDir('llama'), { threads: 1, adapters: [{ path: join(tmp, 'mixed') }] });
      const [got] = await model.logits([lora.tokens]);
      await model.close();
      assert.ok(maxAbsDiff(got, lora.aHalfPlusBTwice) <= TOL, `${maxAbsDiff(got, lora.aHalfPlusBTwice)}`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
