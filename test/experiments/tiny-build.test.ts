/**
 * `buildTinyModel` end to end at a toy size: the directory it writes loads in the engine and through the
 * chat template, the same options and seed give byte-identical weights (another seed does not), and a
 * rerun over a kept work dir resumes instead of training again.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildTinyModel, type TinyBuildOptions } from '../../src/experiments/tiny/index.js';
import { TextTokenizer, loadModelConfig } from '../../src/engine/io/index.js';

const root = mkdtempSync(join(tmpdir(), 'tiny-build-'));
after(() => rmSync(root, { recursive: true, force: true }));

const toy = (name: string, seed: number): TinyBuildOptions => ({
  outDir: join(root, name),
  seed,
  examples: 150,
  steps: 12,
  batchSize: 2,
  seqLength: 128,
  warmupSteps: 1,
  threads: 1,
  shape: { vocabSize: 384, hiddenSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 64, maxPositionEmbeddings: 128 },
});

test('tiny build: a loadable HF directory, reproducible per seed', async () => {
  const stages = new Set<string>();
  const a = await buildTinyModel({ ...toy('a', 5), keepWorkDir: true }, { onProgress: (p) => stages.add(p.stage) });
  const b = await buildTinyModel(toy('b', 5));
  const c = await buildTinyModel(toy('c', 6));
  assert.deepEqual([...stages], ['corpus', 'tokenizer', 'init', 'train', 'write', 'quality']);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'README.md', 'tiny-build.json']) {
    assert.ok(existsSync(join(a.outDir, f)), f);
  }
  const config = loadModelConfig(join(a.outDir, 'config.json'));
  assert.equal(config.family, 'llama');
  assert.equal(config.tieWordEmbeddings, true);
  const tok = TextTokenizer.load(a.outDir);
  assert.equal(tok.eos?.id, config.eosTokenIds[0]);
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }), '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(a.steps, 12);
  assert.ok(a.finalLoss! < a.firstLoss!, `loss ${a.firstLoss} -> ${a.finalLoss}`);
  const weights = (o: { outDir: string }) => readFileSync(join(o.outDir, 'model.safetensors'));
  assert.ok(weights(a).equals(weights(b)), 'same seed, same bytes');
  assert.ok(!weights(a).equals(weights(c)), 'another seed, other weights');
  assert.match(readFileSync(join(a.outDir, 'README.md'), 'utf8'), /hidden 32, 1 layers/);
  assert.ok(!existsSync(join(root, 'b.build')), 'work dir removed after success');

  // a rerun over a kept work dir resumes from its last checkpoint (here: the end) and writes the same weights
  let trainedSteps = 0;
  const again = await buildTinyModel({ ...toy('again', 5), workDir: join(root, 'a.build') }, { onProgress: (p) => (trainedSteps += p.stage === 'train' ? 1 : 0) });
  assert.equal(trainedSteps, 0);
  assert.ok(weights(again).equals(weights(a)));
});
