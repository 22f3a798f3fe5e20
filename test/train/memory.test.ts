/**
 * Training past protobuf's 2 GB limit and the memory refusal: a training session with its frozen
 * weights in an ONNX external data file computes the same loss and LoRA gradients as one with them
 * baked in (the path models over 2 GB take, forced here on the fixtures' tiny Llama); the memory
 * estimate counts the model's parameters exactly and refuses a run that cannot fit, naming `trl`.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_INLINE_BYTES } from '../../src/engine/graph/onnx.js';
import { loadModelConfig } from '../../src/engine/io/index.js';
import { SafetensorsFile } from '../../src/engine/io/safetensors.js';
import { floats } from '../../src/engine/runtime/index.js';
import { makeBatch, tokenizeText } from '../../src/train/data.js';
import { batchFeeds } from '../../src/train/graph.js';
import { estimateTrainMemory, parameterCount } from '../../src/train/memory.js';
import { writeSafetensors } from '../../src/engine/io/safetensors.js';
import { llamaConfig } from '../../src/experiments/tiny/index.js';
import { trainSft } from '../../src/train/sft.js';
import { sftOptionsSchema } from '../../src/train/options.js';
import { setup } from '../../src/train/setup.js';

const MODEL = new URL('../fixtures/models/llama/', import.meta.url).pathname;
const options = sftOptionsSchema.parse({ lora: { rank: 4, alpha: 8 }, batchSize: 2, maxLength: 32 });

async function lossAndGrads(frozenWeightsAs: 'initializer' | 'external'): Promise<Record<string, Float32Array>> {
  const s = await setup({ model: MODEL, options, seed: 3, objective: 'sft', threads: 1, frozenWeightsAs });
  try {
    const rows = ['the keeper of the lighthouse', 'a small boat at dawn'].map((t) => tokenizeText(s.tokenizer, t, 32));
    const batch = makeBatch(rows, s.tokenizer.pad?.id ?? 0);
    const outputs = ['loss', ...s.params.map((p) => `grad.${p.name}`)];
    const params = Object.fromEntries(s.params.map((p) => [p.name, { data: p.data, dims: p.shape }]));
    const out = await s.session.run({ ...s.constantFeeds, ...params, ...batchFeeds(batch, s.rep, null) }, outputs);
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, floats(t)]));
  } finally {
    await s.session.release();
  }
}

describe('engine training past 2 GB', () => {
  it('frozen weights in ONNX external data give the same loss and LoRA gradients as baked-in ones', async () => {
    const baked = await lossAndGrads('initializer');
    const external = await lossAndGrads('external');
    assert.ok(Number.isFinite(baked.loss[0]) && baked.loss[0] > 0);
    assert.equal(Object.keys(external).length, Object.keys(baked).length);
    for (const [name, values] of Object.entries(baked)) assert.deepEqual(external[name], values, name);
    // the gradients are not trivially zero (B starts at 0, so A's are; B's are not)
    assert.ok(Object.entries(baked).some(([k, v]) => k.endsWith('.B') && v.some((x) => x !== 0)));
  });
});

// ~2.3 GB written to disk and ~8 GB of memory: opt in with PERSONA_LAB_TEST_2GB=1
const big = process.env.PERSONA_LAB_TEST_2GB === '1' ? false : 'set PERSONA_LAB_TEST_2GB=1 to train a 2.3 GB model (writes 2.3 GB, needs ~8 GB of memory)';

describe('engine training past 2 GB, for real', { skip: big }, () => {
  it('a random 0.58B Llama (2.3 GB of float32 weights) trains one LoRA SFT step', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'big-llama-'));
    try {
      const shape = { vocabSize: 32000, hiddenSize: 2048, numLayers: 10, numHeads: 16, numKvHeads: 16, intermediateSize: 5632, maxPositionEmbeddings: 512, ropeTheta: 10000 };
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...llamaConfig(shape, { bos: 286, eos: 288, pad: 286 }), tie_word_embeddings: false }));
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(MODEL, f), join(dir, f));
      const d = shape.hiddenSize;
      const tensors: { name: string; shape: number[] }[] = [
        { name: 'model.embed_tokens.weight', shape: [shape.vocabSize, d] },
        { name: 'lm_head.weight', shape: [shape.vocabSize, d] },
        { name: 'model.norm.weight', shape: [d] },
      ];
      for (let l = 0; l < shape.numLayers; l++) {
        const p = `model.layers.${l}.`;
        tensors.push({ name: `${p}input_layernorm.weight`, shape: [d] }, { name: `${p}post_attention_layernorm.weight`, shape: [d] });
        for (const m of ['q', 'k', 'v', 'o']) tensors.push({ name: `${p}self_attn.${m}_proj.weight`, shape: [d, d] });
        tensors.push({ name: `${p}mlp.gate_proj.weight`, shape: [shape.intermediateSize, d] }, { name: `${p}mlp.up_proj.weight`, shape: [shape.intermediateSize, d] }, { name: `${p}mlp.down_proj.weight`, shape: [d, shape.intermediateSize] });
      }
      let bytes = 0;
      writeSafetensors(
        join(dir, 'model.safetensors'),
        tensors.map((t, i) => {
          const data = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
          if (t.name.endsWith('norm.weight')) data.fill(1);
          else {
            // a short pseudo-random pattern tiled: filling 580M values one by one takes minutes
            const pattern = Float32Array.from({ length: 4099 }, (_, k) => Math.sin(k * 0.618 + i) * 0.02);
            for (let k = 0; k < data.length; k += pattern.length) data.set(pattern.subarray(0, Math.min(pattern.length, data.length - k)), k);
          }
          bytes += data.byteLength;
          return { ...t, data };
        }),
        { format: 'pt' },
      );
      assert.ok(bytes > MAX_INLINE_BYTES, `${bytes} bytes of weights pass protobuf's limit`);
      const options = sftOptionsSchema.parse({ lora: { rank: 4, alpha: 8, targets: ['q', 'v'] }, batchSize: 1, gradAccumulation: 1, maxLength: 16, maxSteps: 1 });
      const out = await trainSft({ model: dir, runDir: join(dir, 'run'), options, rows: [{ text: 'the keeper of the lighthouse' }], threads: 2 });
      assert.equal(out.steps, 1);
      assert.ok(Number.isFinite(out.metrics.finalLoss) && out.metrics.finalLoss! > 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('engine memory estimate', () => {
  it('counts the parameters of the model directory exactly', () => {
    const f = SafetensorsFile.open(`${MODEL}model.safetensors`);
    try {
      const stored = f.names().reduce((n, name) => n + f.readFloat32(name).length, 0);
      assert.equal(parameterCount(loadModelConfig(MODEL)), stored);
    } finally {
      f.close();
    }
  });
  it('grows with the batch and shrinks with checkpointing and int8 base weights', () => {
    const c = loadModelConfig(MODEL);
    const shape = { objective: 'sft' as const, lora: options.lora, fullParameter: false, batchSize: 1, maxLength: 256 };
    const base = estimateTrainMemory(c, shape);
    assert.ok(estimateTrainMemory(c, { ...shape, batchSize: 4 }).activations > base.activations);
    assert.ok(estimateTrainMemory(c, { ...shape, activationCheckpointing: 'layers' }).activations < estimateTrainMemory(c, { ...shape, activationCheckpointing: 'off' }).activations);
    assert.ok(estimateTrainMemory(c, { ...shape, baseWeights: 'int8' }).frozen < base.frozen);
    assert.equal(estimateTrainMemory(c, { ...shape, objective: 'dpo' }).total > base.total, true);
  });
  it('refuses a run that cannot fit before loading the model, naming the file and the trl backend', async () => {
    await assert.rejects(
      setup({ model: MODEL, options, seed: 1, objective: 'sft', threads: 1, memoryLimit: 1024 }),
      (e: Error) => e.name === 'InputError' && e.message.includes('config.json') && /train\.backend: trl/.test(e.message) && /persona-lab setup trl/.test(e.message),
    );
  });
});
