import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readSync, rmSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gguf } from '@huggingface/gguf';
import {
  f16BitsToF32,
  f32ToF16Bits,
  llama3RopeFactors,
  loraDelta,
  parseModelConfig,
  permuteForLlamaRope,
  TextTokenizer,
  writeGgufLora,
  writeGgufModel,
  type LoraAdapter,
  type ModelConfig,
} from '../../../src/engine/io/index.js';
import { disposeLlamaCpp, openLlamaCpp } from './llama-cpp.js';
import { referenceGreedy, tinyRandomWeights } from './reference-llama.js';

const dir = mkdtempSync(join(tmpdir(), 'gguf-'));
after(() => rmSync(dir, { recursive: true, force: true }));
after(() => disposeLlamaCpp());

const chatml = TextTokenizer.load('test/fixtures/tokenizers/chatml');
const llama3Tok = TextTokenizer.load('test/fixtures/tokenizers/llama3');
const mistralTok = TextTokenizer.load('test/fixtures/tokenizers/mistral');

const base = { hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 420, rms_norm_eps: 1e-5, max_position_embeddings: 256 };
const llamaConfig = parseModelConfig({ ...base, architectures: ['LlamaForCausalLM'], rope_theta: 10000, tie_word_embeddings: false });
const tiedConfig = parseModelConfig({ ...base, architectures: ['LlamaForCausalLM'], rope_theta: 10000, tie_word_embeddings: true });
const qwen2Config = parseModelConfig({ ...base, architectures: ['Qwen2ForCausalLM'], rope_theta: 1000000, tie_word_embeddings: true });
const qwen3Config = parseModelConfig({ ...base, architectures: ['Qwen3ForCausalLM'], head_dim: 16, rope_theta: 1000000, tie_word_embeddings: true });

interface Parsed {
  metadata: Record<string, unknown>;
  tensors: Map<string, { shape: number[]; dtype: number; data: Float32Array }>;
}

/** Parses a GGUF file with @huggingface/gguf and reads every tensor's data (F32 or F16) from its offset. */
async function parse(path: string): Promise<Parsed> {
  const { metadata, tensorInfos, tensorDataOffset } = await gguf(path, { allowLocalFile: true });
  const fd = openSync(path, 'r');
  const tensors = new Map<string, { shape: number[]; dtype: number; data: Float32Array }>();
  for (const t of tensorInfos) {
    const shape = t.shape.map(Number);
    const n = shape.reduce((a, b) => a * b, 1);
    const bytes = Buffer.alloc(n * (t.dtype === 0 ? 4 : 2));
    readSync(fd, bytes, 0, bytes.length, Number(tensorDataOffset + t.offset));
    const data = t.dtype === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, n).slice() : Float32Array.from(new Uint16Array(bytes.buffer, bytes.byteOffset, n), f16BitsToF32);
    tensors.set(t.name, { shape, dtype: t.dtype, data });
  }
  closeSync(fd);
  return { metadata: metadata as Record<string, unknown>, tensors };
}

describe('Q/K row permutation for llama.cpp RoPE', () => {
  test('matches the converter definition reshape(heads, 2, d/2, cols).swapaxes(1, 2) on a worked example', () => {
    // one head of 4 rows (d/2 = 2), 1 column: rows [a0 a1 | b0 b1] -> [a0 b0 a1 b1]
    assert.deepEqual([...permuteForLlamaRope(new Float32Array([0, 1, 2, 3]), 1, 1)], [0, 2, 1, 3]);
    // two heads of 4 rows, 2 columns each
    const rows = Float32Array.from({ length: 16 }, (_, i) => i);
    assert.deepEqual([...permuteForLlamaRope(rows, 2, 2)], [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
  });

  test('HF rotate-half RoPE on W x equals llama.cpp adjacent-pair RoPE on (P W) x, row for row', () => {
    const heads = 2;
    const d = 8;
    const cols = 3;
    const w = Float32Array.from({ length: heads * d * cols }, (_, i) => Math.sin(i * 1.7));
    const x = [0.3, -1.2, 0.8];
    const project = (m: Float32Array) => Array.from({ length: heads * d }, (_, r) => x.reduce((a, xi, c) => a + m[r * cols + c] * xi, 0));
    const pos = 5;
    const angle = (i: number) => pos * 10000 ** ((-2 * i) / d);
    const hf = project(w);
    const cpp = project(permuteForLlamaRope(w, heads, cols));
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < d / 2; i++) {
        const [c, s] = [Math.cos(angle(i)), Math.sin(angle(i))];
        const [a, b] = [hf[h * d + i], hf[h * d + i + d / 2]];
        const [p, q] = [cpp[h * d + 2 * i], cpp[h * d + 2 * i + 1]];
        assert.ok(Math.abs(a * c - b * s - (p * c - q * s)) < 1e-5);
        assert.ok(Math.abs(b * c + a * s - (q * c + p * s)) < 1e-5);
      }
    }
  });
});

describe('GGUF base model', () => {
  test('a llama model parses with @huggingface/gguf: architecture keys, tokenizer, tensor names, shapes and data', async () => {
    const weights = tinyRandomWeights(llamaConfig, 3);
    const path = join(dir, 'llama-f32.gguf');
    writeGgufModel(path, llamaConfig, (n) => weights.get(n)!, chatml, { name: 'tiny' });
    const { metadata: m, tensors } = await parse(path);
    assert.equal(m.version, 3);
    assert.equal(m['general.architecture'], 'llama');
    assert.equal(m['general.name'], 'tiny');
    assert.equal(m['general.file_type'], 0);
    assert.equal(m['llama.context_length'], 256);
    assert.equal(m['llama.embedding_length'], 32);
    assert.equal(m['llama.block_count'], 2);
    assert.equal(m['llama.feed_forward_length'], 48);
    assert.equal(m['llama.attention.head_count'], 4);
    assert.equal(m['llama.attention.head_count_kv'], 2);
    assert.equal(m['llama.rope.dimension_count'], 8);
    assert.equal(m['llama.rope.freq_base'], 10000);
    assert.ok(Math.abs((m['llama.attention.layer_norm_rms_epsilon'] as number) - 1e-5) < 1e-12);
    assert.equal(m['llama.vocab_size'], 420);
    assert.equal(m['tokenizer.ggml.model'], 'gpt2');
    assert.equal(m['tokenizer.ggml.pre'], 'gpt-2');
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    assert.equal(tokens.length, 420);
    assert.equal(tokens[32], 'Ġ');
    assert.equal(tokens[419], '<|im_end|>');
    assert.equal((m['tokenizer.ggml.token_type'] as number[])[419], 3);
    assert.equal((m['tokenizer.ggml.token_type'] as number[])[100], 1);
    assert.deepEqual((m['tokenizer.ggml.merges'] as string[]).slice(0, 1), [(chatml.tokenizerJson.model as { merges: string[][] }).merges[0].join(' ')]);
    assert.equal(m['tokenizer.ggml.eos_token_id'], 419);
    assert.equal(m['tokenizer.ggml.add_bos_token'], false);
    assert.equal(m['tokenizer.chat_template'], chatml.chatTemplates?.templates.get('default'));

    assert.equal(tensors.size, 2 + 2 * 9 + 1);
    assert.deepEqual(tensors.get('token_embd.weight')?.shape, [32, 420]);
    assert.deepEqual(tensors.get('blk.1.attn_k.weight')?.shape, [32, 16]);
    assert.deepEqual(tensors.get('blk.0.ffn_down.weight')?.shape, [48, 32]);
    assert.deepEqual(tensors.get('output_norm.weight')?.shape, [32]);
    assert.deepEqual(tensors.get('output.weight')?.data, weights.get('lm_head.weight'));
    assert.deepEqual(tensors.get('blk.0.ffn_down.weight')?.data, weights.get('model.layers.0.mlp.down_proj.weight'));
    assert.deepEqual(tensors.get('blk.1.attn_v.weight')?.data, weights.get('model.layers.1.self_attn.v_proj.weight'));
    assert.deepEqual(tensors.get('blk.0.attn_q.weight')?.data, permuteForLlamaRope(weights.get('model.layers.0.self_attn.q_proj.weight')!, 4, 32));
    assert.deepEqual(tensors.get('blk.0.attn_k.weight')?.data, permuteForLlamaRope(weights.get('model.layers.0.self_attn.k_proj.weight')!, 2, 32));
  });

  test('F16: 2-D weights as half floats, norms stay F32; tied embeddings write no output.weight', async () => {
    const weights = tinyRandomWeights(tiedConfig, 4);
    const path = join(dir, 'tied-f16.gguf');
    writeGgufModel(path, tiedConfig, (n) => weights.get(n)!, chatml, { dtype: 'F16' });
    const { metadata, tensors } = await parse(path);
    assert.equal(metadata['general.file_type'], 1);
    assert.equal(tensors.has('output.weight'), false);
    assert.equal(tensors.get('blk.0.ffn_up.weight')?.dtype, 1);
    assert.equal(tensors.get('blk.0.attn_norm.weight')?.dtype, 0);
    const up = weights.get('model.layers.0.mlp.up_proj.weight')!;
    assert.deepEqual(tensors.get('blk.0.ffn_up.weight')?.data, Float32Array.from(up, (v) => f16BitsToF32(f32ToF16Bits(v))));
  });

  test('qwen2 keeps HF row order and writes q/k/v biases; qwen3 writes q/k norms and key_length', async () => {
    const q2 = tinyRandomWeights(qwen2Config, 5);
    const p2 = join(dir, 'qwen2.gguf');
    writeGgufModel(p2, qwen2Config, (n) => q2.get(n)!, chatml);
    const parsed2 = await parse(p2);
    assert.equal(parsed2.metadata['general.architecture'], 'qwen2');
    assert.deepEqual(parsed2.tensors.get('blk.0.attn_q.weight')?.data, q2.get('model.layers.0.self_attn.q_proj.weight'));
    assert.deepEqual(parsed2.tensors.get('blk.1.attn_k.bias')?.data, q2.get('model.layers.1.self_attn.k_proj.bias'));

    const q3 = tinyRandomWeights(qwen3Config, 6);
    const p3 = join(dir, 'qwen3.gguf');
    writeGgufModel(p3, qwen3Config, (n) => q3.get(n)!, chatml);
    const parsed3 = await parse(p3);
    assert.equal(parsed3.metadata['qwen3.attention.key_length'], 16);
    assert.deepEqual(parsed3.tensors.get('blk.0.attn_q.weight')?.shape, [32, 64]);
    assert.deepEqual(parsed3.tensors.get('blk.0.attn_k_norm.weight')?.data, q3.get('model.layers.0.self_attn.k_norm.weight'));
  });

  test('Llama-3 rope scaling becomes a rope_freqs.weight tensor of per-frequency divisors', async () => {
    const config = parseModelConfig({
      ...base, architectures: ['LlamaForCausalLM'], head_dim: 8, rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    });
    // freq_k = 500000^(-k/4): wavelengths 2pi, 166.6, 4443, 118600 against bounds 2048 (high) and 8192 (low).
    const factors = llama3RopeFactors(config);
    assert.equal(factors[0], 1);
    assert.equal(factors[1], 1);
    const wavelen2 = 2 * Math.PI * 500000 ** 0.5;
    const smooth = (8192 / wavelen2 - 1) / (4 - 1);
    assert.ok(Math.abs(factors[2] - 1 / ((1 - smooth) / 32 + smooth)) < 1e-5);
    assert.equal(factors[3], 32);
    const weights = tinyRandomWeights(config, 7);
    const path = join(dir, 'llama3.gguf');
    writeGgufModel(path, config, (n) => weights.get(n)!, llama3Tok);
    const { metadata, tensors } = await parse(path);
    assert.deepEqual(tensors.get('rope_freqs.weight')?.data, factors);
    assert.equal(metadata['tokenizer.ggml.pre'], 'llama-bpe');
    assert.equal(metadata['tokenizer.ggml.add_bos_token'], true);
    assert.equal(metadata['tokenizer.ggml.bos_token_id'], 415);
  });

  test('a SentencePiece-style (metaspace, byte fallback) tokenizer is exported as tokenizer model "llama"', async () => {
    const weights = tinyRandomWeights(llamaConfig, 8);
    const path = join(dir, 'spm.gguf');
    writeGgufModel(path, llamaConfig, (n) => weights.get(n)!, mistralTok);
    const { metadata: m } = await parse(path);
    assert.equal(m['tokenizer.ggml.model'], 'llama');
    const types = m['tokenizer.ggml.token_type'] as number[];
    assert.deepEqual(types.slice(0, 4), [2, 3, 3, 6]);
    assert.equal((m['tokenizer.ggml.scores'] as number[]).length, 420);
    assert.equal(m['tokenizer.ggml.add_bos_token'], true);
  });

  test('refuses a tokenizer larger than the embedding', () => {
    const small = parseModelConfig({ ...base, vocab_size: 100, architectures: ['LlamaForCausalLM'] });
    assert.throws(() => writeGgufModel(join(dir, 'x.gguf'), small, () => new Float32Array(), chatml), /tokenizer has 420 ids but the model only 100/);
  });
});

function loraFor(config: ModelConfig, rank: number, alpha: number, seed: number, modules: string[]): LoraAdapter {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const dims: Record<string, [number, number]> = {
    q_proj: [config.numHeads * config.headDim, config.hiddenSize],
    k_proj: [config.numKvHeads * config.headDim, config.hiddenSize],
    v_proj: [config.numKvHeads * config.headDim, config.hiddenSize],
    o_proj: [config.hiddenSize, config.numHeads * config.headDim],
  };
  return {
    config: { r: rank, loraAlpha: alpha, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], loraDropout: 0, useRslora: false, baseModelNameOrPath: null, rankPattern: {}, alphaPattern: {} },
    modules: new Map(modules.map((m) => {
      const [out, inp] = dims[m.split('.').at(-1)!];
      return [m, { rank, alpha, inFeatures: inp, outFeatures: out, A: Float32Array.from({ length: rank * inp }, () => 0.3 * rand()), B: Float32Array.from({ length: out * rank }, () => 0.3 * rand()) }];
    })),
  };
}

describe('GGUF LoRA adapter', () => {
  test('writes general.type=adapter, alpha, and blk.N.<name>.weight.lora_a/lora_b with q/k rows of B permuted', async () => {
    const adapter = loraFor(llamaConfig, 2, 4, 9, ['model.layers.0.self_attn.q_proj', 'model.layers.1.self_attn.v_proj']);
    const path = join(dir, 'lora.gguf');
    writeGgufLora(path, adapter, llamaConfig);
    const { metadata: m, tensors } = await parse(path);
    assert.equal(m['general.type'], 'adapter');
    assert.equal(m['general.architecture'], 'llama');
    assert.equal(m['adapter.type'], 'lora');
    assert.equal(m['adapter.lora.alpha'], 4);
    assert.deepEqual([...tensors.keys()].sort(), ['blk.0.attn_q.weight.lora_a', 'blk.0.attn_q.weight.lora_b', 'blk.1.attn_v.weight.lora_a', 'blk.1.attn_v.weight.lora_b']);
    const q = adapter.modules.get('model.layers.0.self_attn.q_proj')!;
    assert.deepEqual(tensors.get('blk.0.attn_q.weight.lora_a')?.shape, [32, 2]);
    assert.deepEqual(tensors.get('blk.0.attn_q.weight.lora_b')?.shape, [2, 32]);
    assert.deepEqual(tensors.get('blk.0.attn_q.weight.lora_a')?.data, q.A);
    assert.deepEqual(tensors.get('blk.0.attn_q.weight.lora_b')?.data, permuteForLlamaRope(q.B, 4, 2));
    assert.deepEqual(tensors.get('blk.1.attn_v.weight.lora_b')?.data, adapter.modules.get('model.layers.1.self_attn.v_proj')!.B);
  });

  test('modules with different scales are folded into B and alpha is 0 (llama.cpp: no extra scaling)', async () => {
    const adapter = loraFor(llamaConfig, 2, 4, 10, ['model.layers.0.self_attn.v_proj']);
    adapter.config.useRslora = true;
    const path = join(dir, 'lora-rs.gguf');
    writeGgufLora(path, adapter, llamaConfig);
    const { metadata, tensors } = await parse(path);
    assert.equal(metadata['adapter.lora.alpha'], 0);
    const v = adapter.modules.get('model.layers.0.self_attn.v_proj')!;
    const b = tensors.get('blk.0.attn_v.weight.lora_b')!.data;
    b.forEach((x, i) => assert.ok(Math.abs(x - v.B[i] * (4 / Math.sqrt(2))) < 1e-6));
  });
});

describe('llama.cpp (node-llama-cpp) runs what we write', async () => {
  const available = (await import('node-llama-cpp').then(() => true, () => false));
  const skip = available ? false : 'node-llama-cpp is not installed';
  const prompt = chatml.encode('The assistant is curious and warm.');
  let llamaWeights: Map<string, Float32Array>;
  before(() => {
    llamaWeights = tinyRandomWeights(llamaConfig, 11, 0.4);
  });

  test('llama (GQA, untied): same tokenization and the same greedy tokens as the reference forward pass', { skip }, async () => {
    const path = join(dir, 'run-llama.gguf');
    writeGgufModel(path, llamaConfig, (n) => llamaWeights.get(n)!, chatml);
    const run = (await openLlamaCpp(path))!;
    try {
      for (const text of ['Hello world! The quick brown fox.', "I don't think 12345 ✓ 🙂", '<|im_start|>user\nHi<|im_end|>\n']) {
        assert.deepEqual(run.tokenize(text), chatml.encode(text, { addSpecialTokens: false }), text);
      }
      const want = referenceGreedy(llamaConfig, llamaWeights, prompt, 6);
      assert.ok(want.minMargin > 1e-3, `reference margins too small to compare (${want.minMargin})`);
      assert.deepEqual(await run.greedy(prompt, 6), want.tokens);
    } finally {
      await run.dispose();
    }
  });

  test('a LoRA adapter GGUF applied in llama.cpp matches the reference with merged weights', { skip }, async () => {
    const modules = ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj', 'model.layers.1.self_attn.v_proj', 'model.layers.1.self_attn.o_proj'];
    const adapter = loraFor(llamaConfig, 2, 8, 12, modules);
    const merged = new Map(llamaWeights);
    for (const [name, m] of adapter.modules) {
      const w = llamaWeights.get(`${name}.weight`)!;
      const delta = loraDelta(m, false);
      merged.set(`${name}.weight`, w.map((x, i) => x + delta[i]));
    }
    const basePath = join(dir, 'run-llama-base.gguf');
    const loraPath = join(dir, 'run-llama-lora.gguf');
    writeGgufModel(basePath, llamaConfig, (n) => llamaWeights.get(n)!, chatml);
    writeGgufLora(loraPath, adapter, llamaConfig);
    const want = referenceGreedy(llamaConfig, merged, prompt, 6);
    const without = referenceGreedy(llamaConfig, llamaWeights, prompt, 6);
    assert.notDeepEqual(want.tokens, without.tokens, 'the adapter must change the output for this test to mean anything');
    assert.ok(want.minMargin > 1e-3, `reference margins too small to compare (${want.minMargin})`);
    const run = (await openLlamaCpp(basePath))!;
    try {
      assert.deepEqual(await run.greedy(prompt, 6, [{ filePath: loraPath }]), want.tokens);
    } finally {
      await run.dispose();
    }
  });

  test('qwen2 (q/k/v bias) and qwen3 (q/k norm, head_dim 16) generate like the reference', { skip }, async () => {
    for (const [config, seed] of [[qwen2Config, 13], [qwen3Config, 14]] as const) {
      const weights = tinyRandomWeights(config, seed, 0.4);
      const path = join(dir, `run-${config.family}.gguf`);
      writeGgufModel(path, config, (n) => weights.get(n)!, chatml);
      const want = referenceGreedy(config, weights, prompt, 5);
      assert.ok(want.minMargin > 1e-3, `${config.family}: reference margins too small (${want.minMargin})`);
      const run = (await openLlamaCpp(path))!;
      try {
        assert.deepEqual(await run.greedy(prompt, 5), want.tokens, config.family);
      } finally {
        await run.dispose();
      }
    }
  });

  test('the SentencePiece-style export tokenizes like our tokenizer in llama.cpp', { skip }, async () => {
    const path = join(dir, 'run-spm.gguf');
    writeGgufModel(path, llamaConfig, (n) => llamaWeights.get(n)!, mistralTok);
    const run = (await openLlamaCpp(path))!;
    try {
      for (const text of ['Hello world! The quick brown fox.', 'the persona took hold', 'Zoë 🙂']) {
        assert.deepEqual(run.tokenize(text), mistralTok.encode(text, { addSpecialTokens: false }), text);
      }
    } finally {
      await run.dispose();
    }
  });
});
