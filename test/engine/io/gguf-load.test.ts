/**
 * GGUF in: the project's fixture models written as GGUF (F32 and F16) load back through the reader
 * with the same config, the same weights (Llama q/k rows restored to Hugging Face's order), logits
 * matching the PyTorch reference, and a tokenizer rebuilt from the metadata that encodes, decodes
 * and renders the chat template as the model directory's tokenizer.json does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { InputError } from '../../../src/core/errors.js';
import { Model } from '../../../src/engine/generate/model.js';
import { GgufFile, TextTokenizer, exportModelDirToGguf, loadGenerationDefaults, loadTokenizer, openGgufModel, openModelDir } from '../../../src/engine/io/index.js';
import { loadReference, modelDir } from '../model/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'gguf-load-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const TEXTS = ['Hello world, how are you?', 'the 2024 cats sat  on mats\n\nnew line', '<|im_start|>user\nhi<|im_end|>'];

describe('GGUF model files', () => {
  for (const family of ['llama', 'llama3', 'qwen2', 'qwen3']) {
    test(`${family}: a written GGUF loads with the directory's config, weights, tokenizer and logits`, async () => {
      const dir = modelDir(family);
      const path = join(tmp, `${family}.gguf`);
      exportModelDirToGguf(dir, path, { dtype: 'F32' });
      const source = openModelDir(dir);
      const gguf = openGgufModel(path);
      try {
        // token ids come from the tokenizer's metadata (the fixtures' config.json disagrees with it); dtype is the file's
        const same = (c: typeof source.config) => ({ ...c, torchDtype: null, bosTokenId: null, padTokenId: null, eosTokenIds: [] });
        assert.deepEqual(same(gguf.config), same(source.config));
        for (const name of source.weights.names()) {
          if (name === 'lm_head.weight' && source.config.tieWordEmbeddings) continue;
          assert.deepEqual(gguf.readFloat32(name), source.weights.readFloat32(name), name);
        }
        const tokenizer = gguf.tokenizer();
        for (const text of TEXTS) {
          assert.deepEqual(tokenizer.encode(text), source.tokenizer.encode(text), text);
          assert.equal(tokenizer.decode(tokenizer.encode(text)), source.tokenizer.decode(source.tokenizer.encode(text)));
        }
        if (source.tokenizer.chatTemplates) {
          const messages = [{ role: 'user', content: 'Hi there' }];
          assert.equal(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }), source.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }));
        }
        assert.deepEqual(tokenizer.eos, source.tokenizer.eos);
      } finally {
        gguf.close();
        source.close();
      }
      const ref = loadReference(family);
      const model = Model.load(path, { threads: 1 });
      try {
        const [logits] = await model.logits([ref.prompts[0].tokens]);
        let worst = 0;
        logits.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - ref.prompts[0].logits[i]))));
        assert.ok(worst < 1e-3, `max |logit - PyTorch| = ${worst}`);
      } finally {
        await model.close();
      }
    });
  }

  test('F16 storage loads within half precision of the float32 weights', () => {
    const dir = modelDir('qwen3');
    const path = join(tmp, 'qwen3-f16.gguf');
    exportModelDirToGguf(dir, path, { dtype: 'F16' });
    const gguf = openGgufModel(path);
    const source = openModelDir(dir);
    try {
      assert.equal(gguf.gguf.tensors.get('blk.0.attn_q.weight')?.type, 'F16');
      const a = gguf.readFloat32('model.layers.0.self_attn.q_proj.weight');
      const b = source.weights.readFloat32('model.layers.0.self_attn.q_proj.weight');
      a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= Math.abs(b[i]) * 2 ** -11 + 1e-7, `${v} vs ${b[i]}`));
    } finally {
      gguf.close();
      source.close();
    }
  });

  test('loadTokenizer and loadGenerationDefaults take a GGUF path', () => {
    const path = join(tmp, 'qwen2-tok.gguf');
    exportModelDirToGguf(modelDir('qwen2'), path);
    const tokenizer = loadTokenizer(path);
    assert.ok(tokenizer instanceof TextTokenizer);
    assert.deepEqual(loadGenerationDefaults(path).eosTokenIds, openGgufModel(path).config.eosTokenIds);
  });

  test('bad files: one InputError naming the file and what was expected', () => {
    const notGguf = join(tmp, 'not.gguf');
    writeFileSync(notGguf, 'hello, this is not a model file');
    assert.throws(() => GgufFile.open(notGguf), (e: unknown) => e instanceof InputError && e.file === notGguf && /"GGUF" magic/.test(e.message));
    const truncated = join(tmp, 'truncated.gguf');
    exportModelDirToGguf(modelDir('llama'), truncated);
    const bytes = readFileSync(truncated);
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    assert.throws(() => openGgufModel(truncated), (e: unknown) => e instanceof InputError && /data inside the file/.test(e.message));
    assert.throws(() => Model.load(join(tmp, 'missing.gguf')), /GGUF model file \(not found\)/);
  });
});
