/**
 * The objectives on the tiny Llama the engine's fixtures ship (test/fixtures/models/llama): SFT
 * drives the loss down and writes an adapter the engine loads; DPO raises the chosen-minus-rejected
 * log-ratio margin; GRPO raises a reward code can check; full-parameter SFT trains every weight;
 * adapters mix linearly. One ORT thread each, a few steps each.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Model } from '../../src/engine/generate/model.js';
import { createChatModel } from '../../src/providers/index.js';
import { startFakeServer } from '../support/openai-server.js';
import { loadLoraAdapter, loraDelta } from '../../src/engine/io/peft.js';
import { dpoOptionsSchema, grpoOptionsSchema, mixAdapters, sftOptionsSchema, trainDpo, trainGrpo, trainOptionsSchema, trainSft } from '../../src/train/index.js';

const MODEL = new URL('../fixtures/models/llama/', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'train-objectives-'));
after(() => rmSync(root, { recursive: true, force: true }));

const chat = (i: number) => ({
  messages: [
    { role: 'user' as const, content: `Greet guest ${i % 4}` },
    { role: 'assistant' as const, content: `Welcome, dear guest ${i % 4}, make yourself at home.` },
  ],
});
const quick = { lora: { rank: 8, alpha: 16 }, optimizer: { lr: 1e-2, schedule: 'constant' }, gradAccumulation: 1, checkpointEvery: 100 };

describe('train options', () => {
  it('default to the published values (docs/protocols.md §2-3)', () => {
    const o = trainOptionsSchema.parse({});
    assert.deepEqual([o.dpo.beta, o.dpo.nllCoef, o.dpo.lora.rank, o.dpo.lora.alpha, o.dpo.optimizer.lr, o.dpo.epochs], [0.1, 0.1, 64, 128, 5e-5, 1]);
    assert.deepEqual([o.sft.lora.rank, o.sft.maxLength], [64, 3072]);
    assert.deepEqual(o.mix.weights, { dpo: 1, sft: 0.25 });
    assert.equal(o.grpo.lora.rank, 256);
    assert.equal(o.grpo.clip, 0.2);
    assert.deepEqual(o.grpo.rewards.map((r) => r.weight), [0.6, 0.2, 0.2]);
    assert.equal(o.grpo.granularity, 100);
  });
  it('reject a signal missing what its kind needs', () => {
    const r = grpoOptionsSchema.safeParse({ rewards: [{ name: 'x', weight: 1, kind: 'regex' }] });
    assert.equal(r.success, false);
    assert.deepEqual(r.error!.issues[0].path, ['rewards', 0, 'pattern']);
  });
  it('reject int8 base weights for full-parameter training (nothing frozen to quantize)', () => {
    const r = sftOptionsSchema.safeParse({ fullParameter: true, baseWeights: 'int8' });
    assert.equal(r.success, false);
    assert.deepEqual(r.error!.issues[0].path, ['baseWeights']);
    assert.match(r.error!.issues[0].message, /need a LoRA adapter/);
  });
});

describe('objectives on a tiny model', () => {
  it('SFT drives the loss down and writes a PEFT adapter the engine loads', async () => {
    const runDir = join(root, 'sft');
    const out = await trainSft({ model: MODEL, runDir, rows: Array.from({ length: 8 }, (_, i) => chat(i)), threads: 1, options: sftOptionsSchema.parse({ ...quick, batchSize: 4, epochs: 4 }) });
    assert.equal(out.steps, 8);
    assert.ok(out.metrics.finalLoss! < 0.3 * out.metrics.firstLoss!, `loss ${out.metrics.firstLoss} -> ${out.metrics.finalLoss}`);
    const log = readFileSync(join(runDir, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).value);
    assert.equal(log.length, 8);
    assert.ok(log.every((l) => l.lr === 1e-2 && l.gradNorm > 0 && l.tokensPerSecond > 0));
    const base = Model.load(MODEL);
    const tuned = Model.load(MODEL, { adapters: [{ path: out.outputDir }] });
    try {
      const row = base.config.bosTokenId === null ? [10, 11, 12] : [base.config.bosTokenId, 11, 12];
      const [a] = await base.logits([row]);
      const [b] = await tuned.logits([row]);
      assert.ok(a.some((x, i) => Math.abs(x - b[i]) > 1e-3), 'the adapter changes the logits');
    } finally {
      await base.close();
      await tuned.close();
    }
  });

  it('DPO raises the chosen-minus-rejected margin from 0', async () => {
    const rows = Array.from({ length: 8 }, (_, i) => ({ prompt: `Question ${i}?`, chosen: `Gladly, here is answer ${i}.`, rejected: `No. Ask someone else ${i}.` }));
    const out = await trainDpo({ model: MODEL, runDir: join(root, 'dpo'), rows, threads: 1, options: dpoOptionsSchema.parse({ ...quick, optimizer: { lr: 5e-3, schedule: 'constant' }, batchSize: 4, epochs: 3 }) });
    const first = out.log[0];
    const last = out.log.at(-1)!;
    assert.ok(Math.abs(first.rewardMargin) < 1e-4, 'the policy starts as the reference');
    assert.ok(last.rewardMargin > 1 && last.rewardAccuracy === 1, `margin ${last.rewardMargin}, accuracy ${last.rewardAccuracy}`);
    assert.ok(existsSync(join(root, 'dpo', 'dpo-reference.jsonl')));
  });

  // int8 quantizes activations per tensor, so a row's log-prob moves a little with its batch-mates:
  // the reference (pairs in order) and the first step (shuffled) agree closely, not exactly
  it('DPO on an int8 base: the reference uses the same base, so the margin starts near 0, and it rises', async () => {
    const rows = Array.from({ length: 8 }, (_, i) => ({ prompt: `Question ${i}?`, chosen: `Gladly, here is answer ${i}.`, rejected: `No. Ask someone else ${i}.` }));
    const options = dpoOptionsSchema.parse({ ...quick, baseWeights: 'int8', optimizer: { lr: 5e-3, schedule: 'constant' }, batchSize: 4, epochs: 3 });
    const out = await trainDpo({ model: MODEL, runDir: join(root, 'dpo-int8'), rows, threads: 1, options });
    assert.ok(Math.abs(out.log[0].rewardMargin) < 0.1, `first margin ${out.log[0].rewardMargin}`);
    assert.ok(out.log.at(-1)!.rewardMargin > 1, `margin ${out.log.at(-1)!.rewardMargin}`);
  });

  it('GRPO raises a code-checked reward over a fixed seed', async () => {
    const runDir = join(root, 'grpo');
    const options = grpoOptionsSchema.parse({
      ...quick,
      optimizer: { lr: 2e-2, schedule: 'constant' },
      groupSize: 8,
      batchSize: 2,
      epochs: 5,
      maxNewTokens: 10,
      rewards: [{ name: 'letter_e', weight: 1, kind: 'classifier', classifier: 'share_of_e' }],
    });
    const out = await trainGrpo({
      model: MODEL,
      runDir,
      seed: 3,
      threads: 1,
      rows: Array.from({ length: 4 }, (_, i) => ({ prompt: `Tell me something ${i}` })),
      options,
      classifiers: { share_of_e: (_p, reply) => (reply.match(/e/g)?.length ?? 0) / Math.max(1, reply.length) },
    });
    const early = (out.log[0].reward + out.log[1].reward) / 2;
    const late = (out.log.at(-1)!.reward + out.log.at(-2)!.reward) / 2;
    assert.ok(late > early + 0.1, `reward ${early} -> ${late}`);
    assert.ok(out.log.every((l) => 'reward.letter_e' in l));
    const samples = readFileSync(join(runDir, 'grpo-samples.jsonl'), 'utf8').trim().split('\n');
    assert.equal(samples.length, out.steps * 2 * 8);
  });

  it('full-parameter SFT (continued pretraining on text) trains every weight', async () => {
    const rows = Array.from({ length: 4 }, () => ({ text: 'the quick brown fox jumps over the lazy dog' }));
    const out = await trainSft({ model: MODEL, runDir: join(root, 'full'), rows, threads: 1, options: sftOptionsSchema.parse({ ...quick, optimizer: { lr: 3e-3, schedule: 'constant' }, fullParameter: true, batchSize: 4, epochs: 6 }) });
    assert.ok(out.metrics.finalLoss! < 0.5 * out.metrics.firstLoss!, `loss ${out.metrics.firstLoss} -> ${out.metrics.finalLoss}`);
    const trained = Model.load(out.outputDir);
    await trained.close();
  });

  it('mixes adapters linearly: the mixed delta is the weighted sum of the deltas', () => {
    const a = join(root, 'sft', 'adapter');
    const mixedDir = mixAdapters([{ dir: a, weight: 1 }, { dir: a, weight: 0.25 }], join(root, 'mixed'));
    const one = loadLoraAdapter(a);
    const mixed = loadLoraAdapter(mixedDir);
    const module = 'model.layers.0.self_attn.q_proj';
    const expected = loraDelta(one.modules.get(module)!, false, 1.25);
    const actual = loraDelta(mixed.modules.get(module)!, false);
    expected.forEach((x, i) => assert.ok(Math.abs(x - actual[i]) < 1e-6, `delta[${i}]`));
  });

  it('trains DPO and SFT adapters from the base and mixes them 1.0 + 0.25 (the recipe)', async () => {
    const runDir = join(root, 'recipe');
    const small = { ...quick, batchSize: 4, maxSteps: 2 };
    const dpo = await trainDpo({ model: MODEL, runDir: join(runDir, 'dpo'), threads: 1, options: dpoOptionsSchema.parse(small), rows: Array.from({ length: 4 }, (_, i) => ({ prompt: `Q${i}`, chosen: 'Yes.', rejected: 'No.' })) });
    const sft = await trainSft({ model: MODEL, runDir: join(runDir, 'sft'), threads: 1, options: sftOptionsSchema.parse(small), rows: Array.from({ length: 4 }, (_, i) => chat(i)) });
    const weights = trainOptionsSchema.parse({}).mix.weights;
    const mixedDir = mixAdapters([{ dir: dpo.outputDir, weight: weights.dpo }, { dir: sft.outputDir, weight: weights.sft }], join(runDir, 'mixed'), MODEL);
    const module = 'model.layers.1.mlp.down_proj';
    const dpoDelta = loraDelta(loadLoraAdapter(dpo.outputDir).modules.get(module)!, false);
    const sftDelta = loraDelta(loadLoraAdapter(sft.outputDir).modules.get(module)!, false);
    const mixed = loraDelta(loadLoraAdapter(mixedDir).modules.get(module)!, false);
    mixed.forEach((x, i) => assert.ok(Math.abs(x - (dpoDelta[i] + 0.25 * sftDelta[i])) < 1e-6, `delta[${i}]`));
  });

  it('preventative steering: the vector is in the policy and the reference alike, and changes training', async () => {
    const rows = Array.from({ length: 4 }, (_, i) => ({ prompt: `Question ${i}?`, chosen: `Gladly ${i}.`, rejected: `No ${i}.` }));
    const vectorFile = join(root, 'vector.json');
    writeFileSync(vectorFile, JSON.stringify({ vectors: [Array.from({ length: 64 }, (_, i) => Math.sin(i)), Array.from({ length: 64 }, (_, i) => Math.cos(i))] }));
    const run = (name: string, steering?: object) =>
      trainDpo({ model: MODEL, runDir: join(root, name), rows, threads: 1, options: dpoOptionsSchema.parse({ ...quick, batchSize: 4, maxSteps: 2, steering }) });
    const steered = await run('dpo-steered', { vector: vectorFile, layer: 1, coef: 8 });
    const plain = await run('dpo-plain');
    assert.ok(Math.abs(steered.log[0].rewardMargin) < 1e-4, 'a steered reference: the margin starts at 0');
    assert.ok(Math.abs(steered.log[0].loss - plain.log[0].loss) > 1e-3, 'steering changes the NLL part of the loss');
  });

  it('GRPO rewards from a judge through a provider (a real loopback OpenAI-compatible server), at granularity 0-10', async () => {
    const server = await startFakeServer({
      chat: (body) => {
        const reply = /<reply>\n([\s\S]*)\n<\/reply>/.exec(body.messages.at(-1)!.content)?.[1] ?? '';
        return String(Math.min(10, reply.length));
      },
    });
    try {
      const judge = await createChatModel(`openai:judge@${server.baseURL}`, { noCache: true });
      const options = grpoOptionsSchema.parse({
        ...quick,
        groupSize: 4,
        batchSize: 1,
        maxSteps: 1,
        maxNewTokens: 6,
        granularity: 10,
        rewards: [
          { name: 'length', weight: 0.75, kind: 'judge', rubric: 'Is the reply long?' },
          { name: 'has_space', weight: 0.25, kind: 'regex', pattern: ' ' },
        ],
      });
      const out = await trainGrpo({ model: MODEL, runDir: join(root, 'grpo-judge'), rows: [{ prompt: 'Who are you?' }], threads: 1, options, judge });
      assert.equal(server.requests.length, 4);
      assert.match(server.requests[0].messages.at(-1)!.content, /Criterion: Is the reply long\?[\s\S]*Who are you\?[\s\S]*from 0 \(not at all\) to 10/);
      const step = out.log[0];
      assert.ok(step['reward.length'] > 0 && step['reward.length'] <= 1, `judge component ${step['reward.length']}`);
      assert.equal(step['missing.length'], 0);
      assert.ok(Math.abs(step.reward - (0.75 * step['reward.length'] + 0.25 * step['reward.has_space'])) < 1e-9);
      await judge.close?.();
    } finally {
      await server.close();
    }
  });

  it('stops with a clear error when training diverges, before the weights or a checkpoint take it', async () => {
    const runDir = join(root, 'diverge');
    const options = sftOptionsSchema.parse({ ...quick, optimizer: { lr: 1e30, schedule: 'constant', maxGradNorm: 0 }, batchSize: 4, epochs: 4, checkpointEvery: 1 });
    await assert.rejects(trainSft({ model: MODEL, runDir, rows: Array.from({ length: 4 }, (_, i) => chat(i)), threads: 1, options }), /training diverged at step \d+/);
    assert.ok(!existsSync(join(runDir, 'adapter')), 'no output adapter');
  });
});
