/**
 * Training past protobuf's 2 GB limit and the memory refusal: a training session with its frozen
 * weights in an ONNX external data file computes the same loss and LoRA gradients as one with them
 * baked in (the path models over 2 GB take, forced here on the fixtures' tiny Llama); an int8 base
 * read from disk one weight at a time trains exactly as one quantized from the loaded float32 model;
 * the memory estimate counts the model's parameters exactly and refuses a run that cannot fit, naming
 * `trl`. Opt-in (PERSONA_LAB_TEST_2GB=1): a 2.3 GB float32 model and a 2.4B model whose int8 weights
 * alone pass 2 GB each train one step for real.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_INLINE_BYTES } from '../../src/engine/graph/onnx.js';
import { Model } from '../../src/engine/generate/model.js';
import { loadLoraAdapter, loadModelConfig } from '../../src/engine/io/index.js';
import { SafetensorsFile } from '../../src/engine/io/safetensors.js';
import { floats } from '../../src/engine/runtime/index.js';
import { makeBatch, tokenizeText } from '../../src/train/data.js';
import { batchFeeds } from '../../src/train/graph.js';
import { estimateTrainMemory, parameterCount } from '../../src/train/memory.js';
import { writeSafetensors } from '../../src/engine/io/safetensors.js';
import { llamaConfig } from '../../src/experiments/tiny/index.js';
import { loraModule } from '../../src/train/graph.js';
import { trainSft } from '../../src/train/sft.js';
import { sftOptionsSchema } from '../../src/train/options.js';
import { setup } from '../../src/train/setup.js';

const MODEL = new URL('../fixtures/models/llama/', import.meta.url).pathname;
const options = sftOptionsSchema.parse({ lora: { rank: 4, alpha: 8 }, batchSize: 2, maxLength: 32 });

async function lossAndGrads(
  frozenWeightsAs: 'initializer' | 'external',
  base: { model?: string | Model; baseWeights?: 'float32' | 'int8' } = {},
): Promise<Record<string, Float32Array>> {
  const s = await setup({ model: base.model ?? MODEL, options: { ...options, baseWeights: base.baseWeights ?? 'float32' }, seed: 3, objective: 'sft', threads: 1, frozenWeightsAs });
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

  it('an int8 base read from disk one weight at a time trains exactly as one quantized from the loaded float32 model', async () => {
    // the lean path (a directory: each projection quantized as it is read) against int8Weights over a loaded Model
    const lean = await lossAndGrads('external', { baseWeights: 'int8' });
    const loaded = await lossAndGrads('external', { baseWeights: 'int8', model: Model.load(MODEL, { weightsAs: 'feed' }) });
    const float = await lossAndGrads('external');
    assert.equal(Object.keys(lean).length, Object.keys(loaded).length);
    for (const [name, values] of Object.entries(loaded)) assert.deepEqual(lean[name], values, name);
    // int8 at all: not the float32 numbers, but close to them (sft-step.test.ts bounds the error against PyTorch)
    assert.notDeepEqual(lean.loss, float.loss);
    assert.ok(Math.abs(lean.loss[0] - float.loss[0]) < 0.01 * float.loss[0], `int8 loss ${lean.loss[0]} vs float32 ${float.loss[0]}`);
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

const GiB = 2 ** 30;

describe('engine training past 2 GB on an int8 base, for real', { skip: big && 'set PERSONA_LAB_TEST_2GB=1 to train a 2.4B model on an int8 base (writes 4.8 GB, needs ~6 GB of memory)' }, () => {
  it('a random 2.4B Llama whose int8 weights alone pass 2 GB trains one LoRA SFT step without ever holding its float32 weights', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'big-int8-llama-'));
    try {
      // Llama-2-style widths, 28 layers: 2.22B projection parameters, so even one int8 byte each passes the limit
      const shape = { vocabSize: 32000, hiddenSize: 2560, numLayers: 28, numHeads: 20, numKvHeads: 20, intermediateSize: 6912, maxPositionEmbeddings: 512, ropeTheta: 10000 };
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...llamaConfig(shape, { bos: 286, eos: 288, pad: 286 }), tie_word_embeddings: false, torch_dtype: 'bfloat16' }));
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(MODEL, f), join(dir, f));
      // written as a checkpoint of this size ships: bf16, one shard per layer, so the test never holds
      // the float32 model either
      const d = shape.hiddenSize;
      const weightMap: Record<string, string> = {};
      let index = 0;
      const shard = (file: string, tensors: { name: string; shape: number[] }[]) => {
        writeSafetensors(
          join(dir, file),
          tensors.map((tensor) => {
            const data = new Float32Array(tensor.shape.reduce((a, b) => a * b, 1));
            if (tensor.name.endsWith('norm.weight')) data.fill(1);
            else {
              // a short pseudo-random pattern tiled: filling 2.4B values one by one takes minutes
              const i = index++;
              const pattern = Float32Array.from({ length: 4099 }, (_, k) => Math.sin(k * 0.618 + i) * 0.02);
              for (let k = 0; k < data.length; k += pattern.length) data.set(pattern.subarray(0, Math.min(pattern.length, data.length - k)), k);
            }
            weightMap[tensor.name] = file;
            return { ...tensor, data, dtype: 'BF16' as const };
          }),
          { format: 'pt' },
        );
      };
      const shards = shape.numLayers + 1;
      const file = (k: number) => `model-${String(k + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      shard(file(0), [
        { name: 'model.embed_tokens.weight', shape: [shape.vocabSize, d] },
        { name: 'lm_head.weight', shape: [shape.vocabSize, d] },
        { name: 'model.norm.weight', shape: [d] },
      ]);
      for (let l = 0; l < shape.numLayers; l++) {
        const p = `model.layers.${l}.`;
        shard(file(l + 1), [
          { name: `${p}input_layernorm.weight`, shape: [d] },
          { name: `${p}post_attention_layernorm.weight`, shape: [d] },
          ...['q', 'k', 'v', 'o'].map((m) => ({ name: `${p}self_attn.${m}_proj.weight`, shape: [d, d] })),
          { name: `${p}mlp.gate_proj.weight`, shape: [shape.intermediateSize, d] },
          { name: `${p}mlp.up_proj.weight`, shape: [shape.intermediateSize, d] },
          { name: `${p}mlp.down_proj.weight`, shape: [d, shape.intermediateSize] },
        ]);
      }
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));

      const config = loadModelConfig(dir);
      const projections = config.numLayers * (['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const).reduce((n, m) => n + loraModule(config, m).inFeatures * loraModule(config, m).outFeatures, 0);
      // one int8 copy of the projections alone passes protobuf's limit (the engine keeps two: see
      // int8Weights), so inline serialization would throw (toBytes): a finished step went through external data
      assert.ok(projections > MAX_INLINE_BYTES, `${projections} int8 bytes pass protobuf's limit`);
      const float32Bytes = 4 * parameterCount(config);

      const runDir = join(dir, 'run');
      const child = new URL('./int8-base-child.ts', import.meta.url).pathname;
      const r = spawnSync(process.execPath, ['--import', 'tsx', child, dir, runDir], { encoding: 'utf8', maxBuffer: 1 << 24 });
      assert.equal(r.status, 0, r.stderr);
      const run = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { steps: number; loss: number; forwardLoss: number; seconds: number; peakRssBytes: number };
      const estimate = estimateTrainMemory(config, { objective: 'sft', lora: { rank: 4, targets: ['q', 'v'] }, fullParameter: false, baseWeights: 'int8', batchSize: 1, maxLength: 64 });
      t.diagnostic(
        `${(parameterCount(config) / 1e9).toFixed(2)}B parameters (${(float32Bytes / GiB).toFixed(1)} GiB as float32): one step in ${run.seconds.toFixed(0)} s, ` +
          `peak RSS ${(run.peakRssBytes / GiB).toFixed(2)} GiB, estimated ${(estimate.total / GiB).toFixed(2)} GiB, loss ${run.loss} (forward-only ${run.forwardLoss})`,
      );
      assert.equal(run.steps, 1);
      assert.ok(Number.isFinite(run.loss) && run.loss > 0, `loss ${run.loss}`);
      // B starts at 0, so the step's loss is the base model's. A forward-only graph fed the same int8
      // weights as tensors (no external data file, no backward, no recomputation) sees the same rows,
      // hence the same activation scales: only the order of float32 sums differs, far below the ~1%
      // that misplaced weights would move a loss over these random weights
      assert.ok(Math.abs(run.loss - run.forwardLoss) < 1e-3 * run.loss, `training step ${run.loss} vs forward ${run.forwardLoss}`);
      // the LoRA weights changed: every B started at zero
      const adapter = loadLoraAdapter(join(runDir, 'adapter'));
      assert.equal(adapter.modules.size, 2 * config.numLayers);
      for (const [module, m] of adapter.modules) assert.ok(m.B.some((x) => x !== 0) && m.B.every(Number.isFinite), `${module}.lora_B moved`);
      // the point of the lean path: the run never held the float32 model
      assert.ok(run.peakRssBytes < float32Bytes, `peak ${run.peakRssBytes} bytes, float32 weights ${float32Bytes}`);
      // the up-front refusal is conservative for this run, and not wildly so
      assert.ok(estimate.total >= run.peakRssBytes && estimate.total < 2 * run.peakRssBytes, `estimate ${estimate.total} vs peak ${run.peakRssBytes}`);
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
    // an int8 base is quantized as it is read: no float32 projections, two int8 copies in the engine and the session
    const int8 = estimateTrainMemory(c, { ...shape, baseWeights: 'int8' });
    assert.ok(int8.weights < base.weights && int8.weights + int8.frozen < base.weights + base.frozen);
    assert.equal(estimateTrainMemory(c, { ...shape, objective: 'dpo' }).total > base.total, true);
  });
  it('refuses a run that cannot fit before loading the model, naming the file and the trl backend', async () => {
    await assert.rejects(
      setup({ model: MODEL, options, seed: 1, objective: 'sft', threads: 1, memoryLimit: 1024 }),
      (e: Error) => e.name === 'InputError' && e.message.includes('config.json') && /train\.backend: trl/.test(e.message) && /persona-lab setup trl/.test(e.message),
    );
  });
});
