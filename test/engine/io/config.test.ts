import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { InputError } from '../../../src/core/errors.js';
import { checkTensorShapes, expectedTensorShapes, loadModelConfig, parseModelConfig } from '../../../src/engine/io/index.js';

// Trimmed copies of real config.json files (values as published on the Hub).
const smollm2 = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 576, intermediate_size: 1536,
  num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152, rms_norm_eps: 1e-5,
  rope_theta: 100000, rope_scaling: null, max_position_embeddings: 8192, tie_word_embeddings: true, hidden_act: 'silu',
  attention_bias: false, mlp_bias: false, bos_token_id: 1, eos_token_id: 2, pad_token_id: 2, torch_dtype: 'bfloat16',
};
const llama32 = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 8192,
  num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, vocab_size: 128256,
  rms_norm_eps: 1e-5, rope_theta: 500000.0, max_position_embeddings: 131072, tie_word_embeddings: true,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], torch_dtype: 'bfloat16',
};
const mistral = {
  architectures: ['MistralForCausalLM'], model_type: 'mistral', hidden_size: 4096, intermediate_size: 14336,
  num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 32000, rms_norm_eps: 1e-5,
  rope_theta: 10000.0, sliding_window: 4096, max_position_embeddings: 32768, tie_word_embeddings: false,
  bos_token_id: 1, eos_token_id: 2, torch_dtype: 'bfloat16',
};
const qwen25 = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 896, intermediate_size: 4864,
  num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936, rms_norm_eps: 1e-6,
  rope_theta: 1000000.0, sliding_window: 32768, use_sliding_window: false, max_window_layers: 21,
  max_position_embeddings: 32768, tie_word_embeddings: true, bos_token_id: 151643, eos_token_id: 151645, torch_dtype: 'bfloat16',
};
const qwen3 = {
  architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', hidden_size: 1024, intermediate_size: 3072,
  num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, vocab_size: 151936,
  rms_norm_eps: 1e-6, rope_theta: 1000000, rope_scaling: null, attention_bias: false, sliding_window: null,
  use_sliding_window: false, max_position_embeddings: 40960, tie_word_embeddings: true,
  bos_token_id: 151643, eos_token_id: 151645, torch_dtype: 'bfloat16',
};
const smollm3 = {
  architectures: ['SmolLM3ForCausalLM'], model_type: 'smollm3', hidden_size: 2048, intermediate_size: 11008,
  num_hidden_layers: 8, num_attention_heads: 16, num_key_value_heads: 4, vocab_size: 128256, rms_norm_eps: 1e-6,
  rope_theta: 5000000.0, max_position_embeddings: 65536, no_rope_layer_interval: 4, torch_dtype: 'bfloat16',
};

const dir = mkdtempSync(join(tmpdir(), 'config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('HF config.json -> ModelConfig', () => {
  test('SmolLM2 is the llama family with GQA and tied embeddings', () => {
    const c = parseModelConfig(smollm2);
    assert.equal(c.family, 'llama');
    assert.equal(c.architecture, 'LlamaForCausalLM');
    assert.deepEqual([c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize], [576, 30, 9, 3, 64, 1536, 49152]);
    assert.equal(c.rmsNormEps, 1e-5);
    assert.equal(c.ropeTheta, 100000);
    assert.deepEqual(c.ropeScaling, { type: 'none' });
    assert.ok(c.tieWordEmbeddings);
    assert.deepEqual([c.qkvBias, c.oBias, c.mlpBias, c.qkNorm], [false, false, false, false]);
    assert.equal(c.ropeLayers.length, 30);
    assert.ok(c.ropeLayers.every(Boolean));
    assert.deepEqual([c.bosTokenId, c.eosTokenIds, c.padTokenId, c.torchDtype], [1, [2], 2, 'bfloat16']);
    assert.equal(c.slidingWindow, null);
  });

  test('Llama-3.2 keeps its llama3 rope scaling and a list of eos ids', () => {
    const c = parseModelConfig(llama32);
    assert.deepEqual(c.ropeScaling, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    assert.deepEqual(c.eosTokenIds, [128001, 128008, 128009]);
    assert.equal(c.headDim, 64);
    assert.equal(c.ropeTheta, 500000);
  });

  test('linear rope scaling, older "type" key, and transformers-5 rope_parameters', () => {
    assert.deepEqual(parseModelConfig({ ...smollm2, rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling, { type: 'linear', factor: 2 });
    const { rope_theta: _theta, rope_scaling: _scaling, ...rest } = llama32;
    const v5 = parseModelConfig({ ...rest, rope_parameters: { ...llama32.rope_scaling, rope_theta: 500000 } });
    assert.equal(v5.ropeTheta, 500000);
    assert.equal(v5.ropeScaling.type, 'llama3');
  });

  test('Mistral records its sliding window; Qwen2.5 keeps the window off unless use_sliding_window', () => {
    assert.equal(parseModelConfig(mistral).slidingWindow, 4096);
    assert.equal(parseModelConfig(mistral).tieWordEmbeddings, false);
    const q = parseModelConfig(qwen25);
    assert.equal(q.family, 'qwen2');
    assert.equal(q.slidingWindow, null);
    assert.deepEqual([q.qkvBias, q.oBias], [true, false]);
    assert.equal(q.headDim, 64);
  });

  test('Qwen3 has an explicit head_dim and q/k norm', () => {
    const c = parseModelConfig(qwen3);
    assert.equal(c.family, 'qwen3');
    assert.equal(c.headDim, 128);
    assert.ok(c.qkNorm);
    assert.deepEqual([c.qkvBias, c.oBias], [false, false]);
  });

  test('SmolLM3 drops RoPE on every 4th layer and ties embeddings by default', () => {
    const c = parseModelConfig(smollm3);
    assert.equal(c.family, 'smollm3');
    assert.deepEqual(c.ropeLayers, [true, true, true, false, true, true, true, false]);
    assert.ok(c.tieWordEmbeddings);
    const explicit = parseModelConfig({ ...smollm3, no_rope_layers: [1, 0, 1, 1, 1, 1, 1, 1] });
    assert.equal(explicit.ropeLayers[1], false);
  });

  test('an unsupported architecture lists the supported ones', () => {
    assert.throws(
      () => parseModelConfig({ ...smollm2, architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' }, 'm/config.json'),
      (e: unknown) => e instanceof InputError && /m\/config\.json: architectures: unsupported architecture GPT2LMHeadModel; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, SmolLM3ForCausalLM/.test(e.message),
    );
  });

  test('missing or inconsistent fields name the field', () => {
    const { hidden_size: _h, ...noHidden } = smollm2;
    assert.throws(() => parseModelConfig(noHidden, 'c.json'), /c\.json: hidden_size/);
    assert.throws(() => parseModelConfig({ ...smollm2, num_key_value_heads: 2 }, 'c.json'), /num_key_value_heads: a divisor of num_attention_heads 9/);
    assert.throws(() => parseModelConfig({ ...smollm2, hidden_act: 'gelu' }), /hidden_act/);
    assert.throws(() => parseModelConfig({ ...smollm2, rope_scaling: { rope_type: 'yarn', factor: 4 } }), /rope_scaling\.rope_type: one of default, linear, llama3 \(found "yarn"\)/);
    assert.throws(() => parseModelConfig({ ...llama32, rope_scaling: { rope_type: 'llama3', factor: 8 } }), /rope_scaling\.low_freq_factor/);
  });

  test('loadModelConfig reads a directory or a file', () => {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(qwen3));
    assert.equal(loadModelConfig(dir).family, 'qwen3');
    assert.equal(loadModelConfig(join(dir, 'config.json')).headDim, 128);
    assert.throws(() => loadModelConfig(join(dir, 'nope')), /nope\/config\.json: file not found/);
  });
});

describe('expected tensor shapes', () => {
  const tiny = parseModelConfig({ ...qwen25, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 10, tie_word_embeddings: false });

  test('lists every HF tensor with [out, in] linear shapes, biases and norms per family', () => {
    const shapes = expectedTensorShapes(tiny);
    assert.deepEqual(shapes.get('model.embed_tokens.weight')?.shape, [10, 8]);
    assert.deepEqual(shapes.get('model.layers.1.self_attn.q_proj.weight')?.shape, [8, 8]);
    assert.deepEqual(shapes.get('model.layers.1.self_attn.k_proj.weight')?.shape, [4, 8]);
    assert.deepEqual(shapes.get('model.layers.1.self_attn.k_proj.bias')?.shape, [4]);
    assert.equal(shapes.has('model.layers.1.self_attn.o_proj.bias'), false);
    assert.deepEqual(shapes.get('model.layers.0.mlp.down_proj.weight')?.shape, [8, 12]);
    assert.deepEqual(shapes.get('lm_head.weight'), { shape: [10, 8] });
    assert.equal(shapes.size, 1 + 2 * 12 + 2);
    const q3 = expectedTensorShapes(parseModelConfig({ ...qwen3, num_hidden_layers: 1 }));
    assert.deepEqual(q3.get('model.layers.0.self_attn.q_norm.weight')?.shape, [128]);
    assert.deepEqual(q3.get('model.layers.0.self_attn.q_proj.weight')?.shape, [2048, 1024]);
    assert.deepEqual(q3.get('lm_head.weight'), { shape: [151936, 1024], optional: true });
  });

  test('checkTensorShapes names the file, tensor, expected and found shapes', () => {
    const found = new Map([...expectedTensorShapes(tiny)].map(([name, { shape }]) => [name, shape]));
    checkTensorShapes(tiny, found, () => 'm/model.safetensors');
    found.set('model.layers.0.self_attn.v_proj.weight', [8, 8]);
    assert.throws(
      () => checkTensorShapes(tiny, found, () => 'm/model.safetensors'),
      /shape mismatch: file m\/model\.safetensors tensor model\.layers\.0\.self_attn\.v_proj\.weight expected \[4,8\] found \[8,8\]/,
    );
    found.delete('model.layers.0.self_attn.v_proj.weight');
    assert.throws(() => checkTensorShapes(tiny, found, () => 'f'), /model\.layers\.0\.self_attn\.v_proj\.weight.*missing/);
    found.set('model.layers.0.self_attn.v_proj.weight', [4, 8]);
    found.set('model.layers.0.self_attn.rotary_emb.inv_freq', [1]);
    checkTensorShapes(tiny, found, () => 'f');
    found.set('model.layers.0.extra.weight', [1]);
    assert.throws(() => checkTensorShapes(tiny, found, () => 'f'), /unexpected tensor model\.layers\.0\.extra\.weight/);
  });
});
