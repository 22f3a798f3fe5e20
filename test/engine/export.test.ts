/**
 * Model export round trips: the merged Hugging Face directory loads in the engine with the logits of
 * base + adapters applied unmerged; the merged GGUF holds exactly the merged weights (in llama.cpp's
 * layout); llama.cpp (node-llama-cpp, when installed) runs the merged GGUF and base + LoRA GGUF to the
 * engine's greedy tokens. The CLI checks its input before it writes anything.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { exportModel } from '../../src/engine/export.js';
import { Model } from '../../src/engine/generate/model.js';
import { parseLocalModelRef } from '../../src/providers/index.js';
import { ggufTensorName } from '../../src/engine/models/llama.js';
import { fromFloat32, permuteForLlamaRope, SafetensorsModel, toFloat32, type FloatDtype } from '../../src/engine/io/index.js';
import { runCli } from '../support/cli.js';
import { maxAbsDiff, modelDir } from './model/fixtures.js';
import { llamaCpp } from '../support/node-llama-cpp.js';

const BASE = modelDir('llama');
const A = modelDir('llama-lora-a');
const B = modelDir('llama-lora-b');
const PROMPTS = [[1, 5, 9, 12, 40, 7], [286, 100, 3, 77]];


/** Every F32 tensor of a GGUF file, read at its offset. */
async function ggufTensors(path: string): Promise<{ metadata: Record<string, unknown>; tensors: Map<string, Float32Array> }> {
  const { metadata, tensorInfos, tensorDataOffset } = await gguf(path, { allowLocalFile: true });
  const fd = openSync(path, 'r');
  const tensors = new Map<string, Float32Array>();
  try {
    for (const t of tensorInfos) {
      assert.equal(t.dtype, 0, `${t.name} is F32`);
      const n = t.shape.map(Number).reduce((a, b) => a * b, 1);
      const bytes = Buffer.alloc(n * 4);
      readSync(fd, bytes, 0, bytes.length, Number(tensorDataOffset + t.offset));
      tensors.set(t.name, new Float32Array(bytes.buffer, bytes.byteOffset, n).slice());
    }
  } finally {
    closeSync(fd);
  }
  return { metadata: metadata as Record<string, unknown>, tensors };
}

describe('model export', () => {
  let tmp: string;
  const ref = parseLocalModelRef(`local:${BASE}+${A}*0.5+${B}*2`);
  let unmerged: Model;
  let expected: Float32Array[];
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'export-'));
    unmerged = Model.load(BASE, { adapters: ref.adapters, threads: 1 });
    expected = await unmerged.logits(PROMPTS);
  });
  after(async () => {
    await unmerged.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('hf: the merged directory loads in the engine with the logits of base + adapters unmerged', async () => {
    const out = join(tmp, 'merged');
    const result = exportModel(ref, 'hf', out, { dtype: 'F32' });
    assert.deepEqual(readdirSync(out).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    assert.equal(result.adapters, 2);
    const merged = Model.load(out, { threads: 1 });
    try {
      const got = await merged.logits(PROMPTS);
      got.forEach((g, i) => assert.ok(maxAbsDiff(g, expected[i]) < 1e-4, `prompt ${i}: max |diff| ${maxAbsDiff(g, expected[i])}`));
      const base = await Model.load(BASE, { threads: 1 }).logits(PROMPTS);
      assert.ok(maxAbsDiff(base[0], expected[0]) > 1e-3, 'the adapters change the logits (the comparison can fail)');
    } finally {
      await merged.close();
    }
  });

  test('hf: sharded output with an index, each tensor stored in the base dtype unless told', async () => {
    const out = join(tmp, 'sharded');
    exportModel(ref, 'hf', out, { shardBytes: 20_000 });
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const shards = new Set(Object.values(index.weight_map));
    assert.ok(shards.size > 1, `${shards.size} shards`);
    exportModel(ref, 'hf', join(tmp, 'single-f32'), { dtype: 'F32' });
    const source = SafetensorsModel.open(BASE);
    const written = SafetensorsModel.open(out);
    const exact = SafetensorsModel.open(join(tmp, 'single-f32'));
    try {
      assert.deepEqual(written.names().sort(), source.names().sort());
      for (const n of source.names()) {
        const dtype = source.info(n).dtype;
        assert.equal(written.info(n).dtype, dtype, n);
        // the merged float32 weight, rounded once to the base's dtype
        assert.deepEqual(written.readFloat32(n), toFloat32(fromFloat32(exact.readFloat32(n), dtype as FloatDtype), dtype), n);
      }
    } finally {
      source.close();
      written.close();
      exact.close();
    }
  });

  test('gguf: the merged file holds exactly the merged weights in llama.cpp layout', async () => {
    const path = join(tmp, 'merged.gguf');
    exportModel(ref, 'gguf', path, { dtype: 'F32' });
    exportModel(ref, 'hf', join(tmp, 'merged-f32'), { dtype: 'F32' });
    const { metadata, tensors } = await ggufTensors(path);
    assert.equal(metadata['general.architecture'], 'llama');
    const merged = SafetensorsModel.open(join(tmp, 'merged-f32'));
    try {
      const config = unmerged.config;
      for (const n of merged.names()) {
        let want = merged.readFloat32(n);
        if (/self_attn\.[qk]_proj\.weight$/.test(n)) want = permuteForLlamaRope(want, n.includes('q_proj') ? config.numHeads : config.numKvHeads, merged.info(n).shape[1]);
        assert.deepEqual(tensors.get(ggufTensorName(n)), want, n);
      }
    } finally {
      merged.close();
    }
  });

  test('llama.cpp runs the merged GGUF, and the base GGUF + LoRA GGUF, to the engine\'s greedy tokens', { skip: llamaCpp ? false : 'node-llama-cpp is not installed' }, async () => {
    const single = parseLocalModelRef(`local:${BASE}+${A}`);
    const mergedPath = join(tmp, 'single-merged.gguf');
    const basePath = join(tmp, 'base.gguf');
    const loraPath = join(tmp, 'lora.gguf');
    exportModel(single, 'gguf', mergedPath, { dtype: 'F32' });
    exportModel(parseLocalModelRef(`local:${BASE}`), 'gguf', basePath, { dtype: 'F32' });
    exportModel(single, 'gguf-lora', loraPath, { dtype: 'F32' });
    const engine = Model.load(BASE, { adapters: single.adapters, threads: 1 });
    const llama = await llamaCpp!.getLlama({ gpu: false, build: 'never', logLevel: llamaCpp!.LlamaLogLevel.error });
    const run = async (modelPath: string, prompt: number[], lora?: string) => {
      const model = await llama.loadModel({ modelPath });
      const context = await model.createContext({ contextSize: 64, sequences: 1, threads: 1, ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}) });
      const out: number[] = [];
      for await (const token of context.getSequence().evaluate(prompt as never, { temperature: 0 })) {
        out.push(Number(token));
        if (out.length === 8) break;
      }
      await context.dispose();
      await model.dispose();
      return out;
    };
    try {
      for (const prompt of PROMPTS) {
        const [ours] = await engine.generate([prompt], { temperature: 0, maxTokens: 8, stopTokens: [] });
        assert.deepEqual(await run(mergedPath, prompt), ours.tokens, `merged, prompt ${JSON.stringify(prompt)}`);
        assert.deepEqual(await run(basePath, prompt, loraPath), ours.tokens, `base + LoRA GGUF, prompt ${JSON.stringify(prompt)}`);
      }
    } finally {
      await engine.close();
      await llama.dispose();
    }
  });

  test('CLI: export --to gguf / gguf-lora / hf; bad input exits 2 and writes nothing', async () => {
    const ok = await runCli(['--json', 'export', `local:${BASE}`, join(tmp, 'cli.gguf'), '--to', 'gguf', '--adapter', `${A}*0.5`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { adapters: number }).adapters, 1);
    assert.equal(readFileSync(join(tmp, 'cli.gguf')).subarray(0, 4).toString(), 'GGUF');
    const hf = await runCli(['export', BASE, join(tmp, 'cli-hf'), '--to', 'hf', '--adapter', A, '--dtype', 'bf16']);
    assert.equal(hf.code, 0, hf.stderr);
    assert.ok(existsSync(join(tmp, 'cli-hf', 'model.safetensors')));
    for (const [args, message] of [
      [['export', BASE, join(tmp, 'bad.gguf'), '--to', 'gguf-lora'], /at least one adapter/],
      [['export', BASE, join(tmp, 'bad.gguf'), '--to', 'gguf', '--dtype', 'q4'], /dtype/],
      [['export', BASE, join(tmp, 'bad.gguf'), '--to', 'gguf', '--adapter', join(tmp, 'missing')], /adapter_config\.json/],
    ] as const) {
      const bad = await runCli([...args]);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, message);
      assert.equal(existsSync(join(tmp, 'bad.gguf')), false);
    }
  });
});
