import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gguf } from '@huggingface/gguf';
import { InputError } from '../../../src/core/errors.js';
import { exportModelDirToGguf, openModelDir, parseModelConfig, writeSafetensors } from '../../../src/engine/io/index.js';
import { tinyRandomWeights } from './reference-llama.js';

const root = mkdtempSync(join(tmpdir(), 'model-dir-'));
after(() => rmSync(root, { recursive: true, force: true }));

const hfConfig = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2,
  num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 420, rms_norm_eps: 1e-5, tie_word_embeddings: true,
  bos_token_id: 418, eos_token_id: 419, torch_dtype: 'bfloat16',
};
const config = parseModelConfig(hfConfig);

/** A complete HF directory: bf16 weights in two shards with an index, the chatml tokenizer fixture. */
function makeModelDir(name: string, edit?: (weights: { name: string; shape: number[]; data: Float32Array }[]) => void): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfig));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) cpSync(join('test/fixtures/tokenizers/chatml', f), join(dir, f));
  const tensors = [...tinyRandomWeights(config, 21)].map(([n, data]) => ({ name: n, shape: n.includes('norm') ? [data.length] : [data.length / (n.includes('down_proj') ? 24 : 16), n.includes('down_proj') ? 24 : 16], data }));
  edit?.(tensors);
  const half = Math.ceil(tensors.length / 2);
  const shards = [tensors.slice(0, half), tensors.slice(half)];
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(join(dir, file), shard.map((t) => ({ ...t, dtype: 'BF16' as const })));
    for (const t of shard) weightMap[t.name] = file;
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

describe('model directory', () => {
  test('opens config, sharded bf16 weights, tokenizer, template and generation defaults together', () => {
    const model = openModelDir(makeModelDir('ok'));
    try {
      assert.equal(model.config.family, 'llama');
      assert.equal(model.weights.names().length, 1 + 2 * 9 + 1);
      const emb = model.weights.readFloat32('model.embed_tokens.weight');
      assert.equal(emb.length, 420 * 16);
      // bf16 keeps 8 bits of mantissa: values come back within 2^-8 relative of the f32 originals.
      const original = tinyRandomWeights(config, 21).get('model.embed_tokens.weight')!;
      emb.forEach((v, i) => assert.ok(Math.abs(v - original[i]) <= Math.abs(original[i]) * 2 ** -8 + 1e-12));
      assert.equal(model.tokenizer.eos?.id, 419);
      assert.match(model.tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true }), /<\|im_start\|>assistant\n$/);
      assert.deepEqual(model.generation.eosTokenIds, [2, 0]);
      assert.equal(model.generation.temperature, 0.7);
    } finally {
      model.close();
    }
  });

  test('a shape mismatch names the shard file, the tensor, expected and found shapes', () => {
    const dir = makeModelDir('bad-shape', (tensors) => {
      const t = tensors.find((x) => x.name === 'model.layers.1.self_attn.k_proj.weight')!;
      t.shape = [16, 8];
      t.data = new Float32Array(128);
    });
    assert.throws(() => openModelDir(dir), (e: unknown) => e instanceof InputError && /model-0000\d-of-00002\.safetensors tensor model\.layers\.1\.self_attn\.k_proj\.weight expected \[8,16\] found \[16,8\]/.test(e.message));
  });

  test('a missing tensor, a missing config and a tokenizer larger than the vocabulary are InputErrors', () => {
    const missing = makeModelDir('missing', (tensors) => tensors.splice(tensors.findIndex((t) => t.name === 'model.norm.weight'), 1));
    assert.throws(() => openModelDir(missing), /config\.json: model\.norm\.weight: tensor model\.norm\.weight in the checkpoint/);
    const noConfig = makeModelDir('no-config');
    rmSync(join(noConfig, 'config.json'));
    assert.throws(() => openModelDir(noConfig), /config\.json: file not found/);
    const small = makeModelDir('small-vocab');
    writeFileSync(join(small, 'config.json'), JSON.stringify({ ...hfConfig, vocab_size: 300 }));
    assert.throws(() => openModelDir(small), /tokenizer\.json: model\.vocab: at most vocab_size 300 ids/);
    assert.throws(() => openModelDir(join(root, 'nowhere')), /a model directory/);
  });

  test('exports the directory to GGUF, reading tensors lazily', async () => {
    const dir = makeModelDir('export');
    const out = join(root, 'export.gguf');
    exportModelDirToGguf(dir, out, { dtype: 'F16' });
    const { metadata, tensorInfos } = await gguf(out, { allowLocalFile: true });
    assert.equal(metadata['general.architecture'], 'llama');
    assert.equal(tensorInfos.length, 1 + 2 * 9 + 1);
    assert.ok(tensorInfos.every((t) => t.name !== 'output.weight'));
  });
});
