/**
 * The architecture registry: a family added as one entry (here a Llama under another class name and
 * model_type) is recognised in config.json, loads with its shape checks, generates, trains a LoRA
 * adapter and exports that adapter to GGUF, all through the real engine and trainer. Before the entry
 * exists the same directory is refused with the registered families listed.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InputError } from '../../../src/core/errors.js';
import { ARCHITECTURES, loadModel } from '../../../src/engine/index.js';
import { gguf } from '@huggingface/gguf';
import { loadLoraAdapter, parseModelConfig, writeGgufLora } from '../../../src/engine/io/index.js';
import { createChatModel } from '../../../src/providers/index.js';
import { sftOptionsSchema, trainSft } from '../../../src/train/index.js';
import { modelDir } from './fixtures.js';

let tmp: string;
let renamed: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'engine-architecture-'));
  renamed = join(tmp, 'renamed');
  cpSync(modelDir('llama'), renamed, { recursive: true });
  const file = join(renamed, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...config, architectures: ['RenamedLlamaForCausalLM'], model_type: 'renamed_llama' }));
});
after(() => {
  delete ARCHITECTURES.renamed;
  rmSync(tmp, { recursive: true, force: true });
});

test('a family added as one registry entry loads, generates, trains and exports like the family it renames', async () => {
  assert.throws(
    () => loadModel(renamed),
    (e: unknown) => e instanceof InputError && /unsupported architecture RenamedLlamaForCausalLM; supported: LlamaForCausalLM, MistralForCausalLM/.test(e.message),
  );
  ARCHITECTURES.renamed = { ...ARCHITECTURES.llama, hfClass: 'RenamedLlamaForCausalLM', modelType: 'renamed_llama', gguf: { ...ARCHITECTURES.llama.gguf } };
  assert.equal(parseModelConfig(JSON.parse(readFileSync(join(renamed, 'config.json'), 'utf8'))).family, 'renamed');

  const messages = [{ role: 'user' as const, content: 'Tell me about the sea.' }];
  const [plain, other] = await Promise.all([modelDir('llama'), renamed].map((dir) => createChatModel(`local:${dir}`, { noCache: true })));
  try {
    const [a, b] = await Promise.all([plain, other].map((m) => m.chat({ messages, temperature: 0, maxTokens: 12 })));
    assert.ok(a.choices[0].text.length > 0);
    assert.equal(b.choices[0].text, a.choices[0].text, 'the same weights through the same decoder');
  } finally {
    await plain.close?.();
    await other.close?.();
  }

  const options = sftOptionsSchema.parse({ lora: { rank: 2, alpha: 4, targets: ['q', 'down'] }, maxSteps: 2, batchSize: 1, gradAccumulation: 1, maxLength: 48 });
  const rows = [0, 1].map((i) => ({ messages: [{ role: 'user' as const, content: `Question ${i}?` }, { role: 'assistant' as const, content: `Answer ${i}, matey.` }] }));
  const [base, trained] = await Promise.all(
    [modelDir('llama'), renamed].map((model, i) => trainSft({ model, rows, options, seed: 5, threads: 1, runDir: join(tmp, `train-${i}`) })),
  );
  assert.deepEqual(
    trained.log.map((l) => l.loss),
    base.log.map((l) => l.loss),
    'identical losses: the renamed family trains through the same graph',
  );
  const adapter = loadLoraAdapter(trained.outputDir);
  assert.deepEqual(adapter.config.targetModules, ['q_proj', 'down_proj']);

  const file = join(tmp, 'adapter.gguf');
  writeGgufLora(file, adapter, parseModelConfig(JSON.parse(readFileSync(join(renamed, 'config.json'), 'utf8'))));
  const read = await gguf(file, { allowLocalFile: true });
  assert.equal(read.metadata['general.architecture'], 'llama');
  assert.ok(read.tensorInfos.some((t) => t.name === 'blk.0.attn_q.weight.lora_a'));
});
