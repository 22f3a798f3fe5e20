/**
 * GGUF written by src/engine/io/gguf.ts, loaded by llama.cpp (node-llama-cpp, prebuilt CPU binary),
 * generates the same greedy tokens as the engine. Mistral is left out on purpose: llama.cpp runs the
 * llama-architecture GGUF without Mistral's sliding window (with the window removed from the
 * fixture's config both agree); SmolLM3's NoPE layers have no GGUF form.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsModel, TextTokenizer, writeGgufModel } from '../../../src/engine/io/index.js';
import { Model } from '../../../src/engine/generate/model.js';
import { loadReference, modelDir } from './fixtures.js';
import { llamaCpp, type NodeLlamaCpp } from '../../support/node-llama-cpp.js';


describe('GGUF in llama.cpp', { skip: llamaCpp ? false : 'node-llama-cpp is not installed' }, () => {
  let tmp: string;
  let llama: Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'engine-gguf-'));
    llama = await llamaCpp!.getLlama({ gpu: false, build: 'never', logLevel: llamaCpp!.LlamaLogLevel.error });
  });
  after(async () => {
    await llama?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const family of ['llama', 'llama3', 'qwen2', 'qwen3']) {
    test(`${family}: greedy tokens from llama.cpp equal the engine's`, async () => {
      const dir = modelDir(family);
      const engine = Model.load(dir, { threads: 1 });
      const path = join(tmp, `${family}.gguf`);
      const st = SafetensorsModel.open(dir);
      try {
        writeGgufModel(path, engine.config, (name) => st.readFloat32(name), TextTokenizer.load(dir), { dtype: 'F32' });
      } finally {
        st.close();
      }
      const ref = loadReference(family);
      const model = await llama.loadModel({ modelPath: path });
      try {
        for (const prompt of ref.prompts.map((p) => p.tokens)) {
          const [ours] = await engine.generate([prompt], { temperature: 0, maxTokens: 8, stopTokens: [] });
          const context = await model.createContext({ contextSize: 64, sequences: 1, threads: 1 });
          const theirs: number[] = [];
          for await (const token of context.getSequence().evaluate(prompt as never, { temperature: 0 })) {
            theirs.push(Number(token));
            if (theirs.length === 8) break;
          }
          await context.dispose();
          assert.deepEqual(theirs, ours.tokens, `prompt ${JSON.stringify(prompt)}`);
        }
      } finally {
        await model.dispose();
        await engine.close();
      }
    });
  }
});
