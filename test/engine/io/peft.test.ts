import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { InputError } from '../../../src/core/errors.js';
import {
  SafetensorsFile,
  checkAdapterShapes,
  loadLoraAdapter,
  loraDelta,
  mixLoraAdapters,
  parseModelConfig,
  saveLoraAdapter,
  writeSafetensors,
  type LoraAdapter,
  type LoraModule,
} from '../../../src/engine/io/index.js';

const dir = mkdtempSync(join(tmpdir(), 'peft-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A deterministic pseudo-random stream (LCG) so tests need no fixtures. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
function loraModule(rank: number, inFeatures: number, outFeatures: number, alpha: number, seed: number): LoraModule {
  const r = random(seed);
  return { rank, inFeatures, outFeatures, alpha, A: Float32Array.from({ length: rank * inFeatures }, r), B: Float32Array.from({ length: outFeatures * rank }, r) };
}
function adapter(rank: number, alpha: number, seed: number, modules = ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj']): LoraAdapter {
  return {
    config: { r: rank, loraAlpha: alpha, targetModules: ['q_proj', 'v_proj'], loraDropout: 0.05, useRslora: false, baseModelNameOrPath: 'HuggingFaceTB/SmolLM2-135M-Instruct', rankPattern: {}, alphaPattern: {} },
    modules: new Map(modules.map((m, i) => [m, loraModule(rank, 8, m.endsWith('v_proj') ? 4 : 8, alpha, seed * 100 + i)])),
  };
}
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

describe('PEFT adapter files', () => {
  test('writes adapter_config.json and adapter_model.safetensors with PEFT keys and shapes, and reads them back', () => {
    const out = join(dir, 'a');
    const original = adapter(4, 8, 1);
    saveLoraAdapter(out, original);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.task_type, 'CAUSAL_LM');
    assert.deepEqual([config.r, config.lora_alpha, config.lora_dropout, config.bias, config.use_rslora], [4, 8, 0.05, 'none', false]);
    assert.deepEqual(config.target_modules, ['q_proj', 'v_proj']);
    assert.equal(config.base_model_name_or_path, 'HuggingFaceTB/SmolLM2-135M-Instruct');
    assert.deepEqual(config.rank_pattern, {});

    const file = SafetensorsFile.open(join(out, 'adapter_model.safetensors'));
    assert.deepEqual(file.info('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight').shape, [4, 8]);
    assert.deepEqual(file.info('base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight').shape, [4, 4]);
    assert.equal(file.names().length, 6);
    assert.deepEqual(file.metadata, { format: 'pt' });
    file.close();

    const loaded = loadLoraAdapter(out);
    // A local base has no Hub revision: written and read back as null.
    assert.deepEqual(loaded.config, { ...original.config, revision: null });
    for (const [name, m] of original.modules) assert.deepEqual(loaded.modules.get(name), m, name);
  });

  test('reads an adapter laid out as PEFT saves it (extra config keys, bf16 weights)', () => {
    const out = join(dir, 'peft-made');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'adapter_config.json'), JSON.stringify({
      alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: 'Qwen/Qwen2.5-0.5B-Instruct', bias: 'none', eva_config: null, exclude_modules: null,
      fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, layer_replication: null, layers_pattern: null, layers_to_transform: null,
      loftq_config: {}, lora_alpha: 32, lora_bias: false, lora_dropout: 0.05, megatron_config: null, megatron_core: 'megatron.core', modules_to_save: null,
      peft_type: 'LORA', r: 2, rank_pattern: { 'layers.0.mlp.down_proj': 1 }, revision: null, target_modules: ['down_proj', 'o_proj'], task_type: 'CAUSAL_LM',
      use_dora: false, use_rslora: true,
    }));
    writeSafetensors(join(out, 'adapter_model.safetensors'), [
      { name: 'base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]), dtype: 'BF16' },
      { name: 'base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight', shape: [3, 2], data: new Float32Array([1, 0, 0, 1, 1, 1]), dtype: 'BF16' },
      { name: 'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight', shape: [1, 5], data: new Float32Array(5).fill(1), dtype: 'BF16' },
      { name: 'base_model.model.model.layers.0.mlp.down_proj.lora_B.weight', shape: [3, 1], data: new Float32Array(3).fill(2), dtype: 'BF16' },
    ]);
    const loaded = loadLoraAdapter(out);
    assert.equal(loaded.config.useRslora, true);
    const o = loaded.modules.get('model.layers.0.self_attn.o_proj')!;
    assert.deepEqual([o.rank, o.inFeatures, o.outFeatures, o.alpha], [2, 3, 3, 32]);
    // rsLoRA: scale = alpha / sqrt(r); row 2 of B @ A = [1+4, 2+5, 3+6].
    const delta = loraDelta(o, true);
    const scale = 32 / Math.sqrt(2);
    [5, 7, 9].forEach((want, i) => assert.ok(Math.abs(delta[6 + i] - want * scale) < 1e-4, `delta[2][${i}]`));
    assert.equal(loaded.modules.get('model.layers.0.mlp.down_proj')!.rank, 1);
  });

  test('checks adapter shapes against the base model config', () => {
    const base = parseModelConfig({
      architectures: ['LlamaForCausalLM'], hidden_size: 8, intermediate_size: 16, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 32,
    });
    const good = adapter(2, 4, 3);
    checkAdapterShapes(good, base);
    good.modules.set('model.layers.1.mlp.up_proj', loraModule(2, 16, 8, 4, 9));
    assert.throws(() => checkAdapterShapes(good, base, 'ad'), /ad\/adapter_model\.safetensors: model\.layers\.1\.mlp\.up_proj: shape mismatch: LoRA for \[16,8\] found B \[8,2\] A \[2,16\]/);
    const stray = adapter(2, 4, 3, ['model.layers.7.self_attn.q_proj']);
    assert.throws(() => checkAdapterShapes(stray, base), /model\.layers\.7\.self_attn\.q_proj: a linear layer of the base llama model/);
  });

  test('rejects what the engine cannot apply, naming the file and field', () => {
    const out = join(dir, 'bad');
    saveLoraAdapter(out, adapter(2, 4, 5));
    const configPath = join(out, 'adapter_config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    writeFileSync(configPath, JSON.stringify({ ...config, bias: 'all' }));
    assert.throws(() => loadLoraAdapter(out), (e: unknown) => e instanceof InputError && /adapter_config\.json: bias: "none"/.test(e.message));
    writeFileSync(configPath, JSON.stringify({ ...config, peft_type: 'IA3' }));
    assert.throws(() => loadLoraAdapter(out), /adapter_config\.json: peft_type/);
    writeFileSync(configPath, JSON.stringify({ ...config, r: 3 }));
    assert.throws(() => loadLoraAdapter(out), /lora_A\.weight: shape \[3, in\]/);
    writeFileSync(configPath, JSON.stringify(config));
    writeSafetensors(join(out, 'adapter_model.safetensors'), [{ name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', shape: [2, 8], data: new Float32Array(16) }]);
    assert.throws(() => loadLoraAdapter(out), /both lora_A and lora_B for model\.layers\.0\.self_attn\.q_proj/);
    rmSync(join(out, 'adapter_model.safetensors'));
    writeFileSync(join(out, 'adapter_model.bin'), 'pickle');
    assert.throws(() => loadLoraAdapter(out), /found only adapter_model\.bin/);
  });

  test('saving replaces a previous adapter directory whole', () => {
    const out = join(dir, 'replace');
    saveLoraAdapter(out, adapter(2, 4, 6));
    writeFileSync(join(out, 'stale.txt'), 'x');
    saveLoraAdapter(out, adapter(4, 4, 7));
    assert.ok(!existsSync(join(out, 'stale.txt')));
    assert.equal(loadLoraAdapter(out).config.r, 4);
  });
});

describe('mixing adapters', () => {
  test('"cat" mixing is exact: the mixed delta equals the weighted sum of deltas (DPO 1.0 + SFT 0.25)', () => {
    const dpo = adapter(4, 8, 11);
    const sft = adapter(2, 16, 12);
    sft.config.useRslora = true;
    const mixed = mixLoraAdapters([{ adapter: dpo, weight: 1 }, { adapter: sft, weight: 0.25 }]);
    assert.equal(mixed.config.r, 6);
    assert.equal(mixed.config.loraAlpha, 6);
    for (const [name, m] of mixed.modules) {
      const want = loraDelta(dpo.modules.get(name)!, false).map((x, i) => x + loraDelta(sft.modules.get(name)!, true, 0.25)[i]);
      assert.ok(maxAbsDiff(loraDelta(m, false), want) < 1e-5, name);
    }
    // Summing A's and B's is not the same thing: the cross terms B_1 A_2 + B_2 A_1 remain.
    const a = adapter(2, 2, 21);
    const b = adapter(2, 2, 22);
    const name = 'model.layers.0.self_attn.q_proj';
    const [ma, mb] = [a.modules.get(name)!, b.modules.get(name)!];
    const summed: LoraModule = { ...ma, A: ma.A.map((x, i) => x + mb.A[i]), B: ma.B.map((x, i) => x + mb.B[i]) };
    const exact = loraDelta(ma, false).map((x, i) => x + loraDelta(mb, false)[i]);
    assert.ok(maxAbsDiff(loraDelta(summed, false), exact) > 0.1);
    assert.ok(maxAbsDiff(loraDelta(mixLoraAdapters([{ adapter: a, weight: 1 }, { adapter: b, weight: 1 }]).modules.get(name)!, false), exact) < 1e-5);
  });

  test('modules only one adapter targets keep their own rank, recorded in rank_pattern so PEFT rebuilds them', () => {
    const a = adapter(4, 4, 31, ['model.layers.0.self_attn.q_proj', 'model.layers.1.self_attn.q_proj']);
    const b = adapter(2, 2, 32, ['model.layers.0.self_attn.q_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj']);
    const mixed = mixLoraAdapters([{ adapter: a, weight: 0.5 }, { adapter: b, weight: 2 }]);
    assert.equal(mixed.modules.get('model.layers.1.self_attn.v_proj')!.rank, 2);
    const out = join(dir, 'mixed');
    saveLoraAdapter(out, mixed);
    const config = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    assert.equal(config.r, 6);
    assert.deepEqual(config.rank_pattern, { 'layers.1.self_attn.v_proj': 2 });
    assert.deepEqual(config.alpha_pattern, { 'layers.1.self_attn.v_proj': 2 });
    const back = loadLoraAdapter(out);
    const v = back.modules.get('model.layers.1.self_attn.v_proj')!;
    assert.deepEqual([v.rank, v.alpha], [2, 2]);
    assert.ok(maxAbsDiff(loraDelta(v, false), loraDelta(b.modules.get('model.layers.1.self_attn.v_proj')!, false, 2)) < 1e-5);
    assert.equal(back.modules.get('model.layers.0.self_attn.q_proj')!.rank, 6);
  });
});
