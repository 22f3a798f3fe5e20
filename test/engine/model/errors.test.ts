/** Broken model directories give one clear error naming the file and the tensor or field. */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../../src/core/errors.js';
import { loadModel } from '../../../src/engine/index.js';
import { writeSafetensors } from '../../../src/engine/io/index.js';
import { modelDir } from './fixtures.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'engine-errors-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function copy(name: string, edit?: (dir: string) => void): string {
  const dir = join(tmp, `${name}-${Math.random().toString(36).slice(2)}`);
  cpSync(modelDir('llama'), dir, { recursive: true });
  edit?.(dir);
  return dir;
}

function editConfig(dir: string, change: (c: Record<string, unknown>) => void): void {
  const file = join(dir, 'config.json');
  const c = JSON.parse(readFileSync(file, 'utf8'));
  change(c);
  writeFileSync(file, JSON.stringify(c));
}

function throwsInput(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InputError, `expected an InputError, got ${e}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('a missing directory or config.json is named', () => {
  throwsInput(() => loadModel(join(tmp, 'nope')), /nope/, /not found/);
  throwsInput(() => loadModel(copy('noconfig', (d) => rmSync(join(d, 'config.json')))), /config\.json/);
});

test('an unsupported architecture lists the supported ones', () => {
  const dir = copy('arch', (d) => editConfig(d, (c) => {
    c.architectures = ['GPT2LMHeadModel'];
    c.model_type = 'gpt2';
  }));
  throwsInput(() => loadModel(dir), /config\.json/, /GPT2LMHeadModel/, /LlamaForCausalLM/, /Qwen3ForCausalLM/);
});

test('a shape mismatch names the safetensors file and the tensor', () => {
  const dir = copy('shape', (d) => editConfig(d, (c) => (c.intermediate_size = 96)));
  throwsInput(() => loadModel(dir), /model\.safetensors/, /model\.layers\.0\.mlp\.(gate|up|down)_proj\.weight/, /\[96,64\]|\[64,96\]/);
});

test('a truncated safetensors file is reported, naming it', () => {
  const dir = copy('trunc', (d) => truncateSync(join(d, 'model.safetensors'), 5000));
  throwsInput(() => loadModel(dir), /model\.safetensors/);
});

test('an adapter that does not fit the model names its file and tensor', () => {
  throwsInput(() => loadModel(modelDir('llama'), { adapters: [{ path: join(tmp, 'missing-adapter') }] }), /adapter_config\.json/, /not found/);
  const adapter = join(tmp, 'bad-adapter');
  cpSync(modelDir('llama-lora-a'), adapter, { recursive: true });
  const name = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
  writeSafetensors(join(adapter, 'adapter_model.safetensors'), [
    { name, shape: [4, 32], data: new Float32Array(128) },
    { name: name.replace('lora_A', 'lora_B'), shape: [64, 4], data: new Float32Array(256) },
  ]);
  throwsInput(() => loadModel(modelDir('llama'), { adapters: [{ path: adapter }] }), /adapter_model\.safetensors/, /layers\.0\.self_attn\.q_proj/, /A \[4,32\]/);
  const cfg = join(adapter, 'adapter_config.json');
  writeFileSync(cfg, JSON.stringify({ ...JSON.parse(readFileSync(cfg, 'utf8')), use_dora: true }));
  throwsInput(() => loadModel(modelDir('llama'), { adapters: [{ path: adapter }] }), /adapter_config\.json/, /use_dora/);
});
