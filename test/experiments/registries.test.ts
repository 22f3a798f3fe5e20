/**
 * The seams are registries: a training method, a training backend and a model provider added by a
 * test (one entry each) run through the real stage code. The method trains SFT on the data stage's
 * chat file (found through its manifest) on the fixture model with the real engine backend, behind a
 * backend entry that records the jobs it is handed; the provider is a run.subjects model the eval
 * stage measures beside base, prompted and the trained cell. The summary keeps every cell structured.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { evalSummarySchema } from '../../src/evals/index.js';
import { METHODS } from '../../src/experiments/methods/index.js';
import { runExperiment } from '../../src/experiments/runner.js';
import { PROVIDERS, type ChatModel, type ChatRequest } from '../../src/providers/index.js';
import { TRAIN_BACKENDS, type TrainJob } from '../../src/train/backends/index.js';
import { SMALL_GENERATE, worldServer, writeProject } from './run-support.js';

const world = worldServer();

/** A model that says the last user message back after a fixed word (the provider's only option). */
class Parrot implements ChatModel {
  constructor(readonly word: string) {}
  get id() {
    return `parrot:${this.word}`;
  }
  async chat(request: ChatRequest) {
    const said = request.messages.at(-1)?.content ?? '';
    return { choices: Array.from({ length: request.n ?? 1 }, () => ({ text: `${this.word} ${said}`, finishReason: 'stop' as const })), usage: { promptTokens: 1, completionTokens: 2 }, model: this.id, cached: false };
  }
}

test('a method, a backend and a provider added as registry entries run through the real train and eval stages', async () => {
  const jobs: TrainJob[] = [];
  TRAIN_BACKENDS.recording = {
    name: 'recording',
    train: (job) => {
      jobs.push(job);
      return TRAIN_BACKENDS.engine.train(job);
    },
  };
  // SFT on the chat data for twice the configured steps: a method of its own, with its own options.
  METHODS['sft-twice'] = {
    formats: () => [null],
    datasets: () => ['chat'],
    options: (train) => ({ sft: train.sft, factor: 2 }),
    train: ({ backend, job, train, datasets }) => backend.train({ ...job, objective: 'sft', options: { ...train.sft, maxSteps: 2 * (train.sft.maxSteps ?? 1) }, dataset: datasets[0] }),
  };
  PROVIDERS.parrot = {
    grammar: ['parrot:<word>'],
    claims: (ref) => ref.startsWith('parrot:'),
    schema: z.object({ provider: z.literal('parrot'), word: z.string().min(1) }).strict(),
    parse: (ref) => ({ provider: 'parrot', word: ref.slice('parrot:'.length) }),
    create: async (ref) => ({ model: new Parrot((ref as unknown as { word: string }).word) }),
    capabilities: { generate: true, logprobs: false, steer: false, train: false },
  };

  const project = writeProject({
    name: 'registries',
    models: { subject: `local:${resolve('test/fixtures/models/llama')}`, teacher: `openai:teacher@${world.server.baseURL}`, judge: `openai:judge-1@${world.server.baseURL}` },
    seeds: [1],
    generate: { ...SMALL_GENERATE, datasets: ['prompts', 'chat', 'probes'], probes: { heldOutFraction: 0.05 }, filters: { minWords: 0 } },
    train: { backend: 'recording', sft: { lora: { rank: 2, alpha: 4, targets: ['q', 'v'] }, maxSteps: 1, batchSize: 1, gradAccumulation: 1, maxLength: 64 } },
    run: { stages: ['generate', 'train', 'eval'], methods: ['sft-twice'], threads: 1, subjects: [{ name: 'parrot', model: 'parrot:Arr!', persona: 'Captain Salt' }] },
    eval: { evals: ['identity'], bootstrap: 100, identity: { maxTokens: 8 } },
  });
  try {
    const summary = await runExperiment(project.file, { noCache: true, progress: 'lines', log: () => {} });
    assert.equal(summary.train?.trained, 1);
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0].dataset, join(project.runDir, 'datasets', 'captain-salt', 'chat.jsonl'), "the chat file the data stage's manifest names");
    assert.equal(jobs[0].options.maxSteps, 2);
    const steps = readFileSync(join(project.runDir, 'adapters', 'captain-salt', 'sft-twice', 'seed-1', 'train.jsonl'), 'utf8').trim().split('\n');
    assert.equal(steps.length, 2, 'the engine trained the method’s two steps');

    const written = evalSummarySchema.parse(JSON.parse(readFileSync(join(project.runDir, 'evals', 'summary.json'), 'utf8')));
    assert.deepEqual(
      written.subjects.map((s) => [s.name, s.kind]),
      [
        ['base', 'base'],
        ['prompted', 'prompted'],
        ['captain-salt.sft-twice.seed-1', 'trained'],
        ['parrot', 'other'],
      ],
    );
    const cell = written.subjects[2].cell!;
    assert.deepEqual({ ...cell, optionsHash: undefined }, { persona: 'Captain Salt', method: 'sft-twice', format: null, seed: 1, backend: 'recording', optionsHash: undefined });
    assert.equal(written.subjects[3].model, 'parrot:Arr!');
    const identity = written.evals.find((e) => e.eval === 'identity')!;
    assert.equal(identity.status, 'ok', identity.reason);
    assert.ok(identity.subjects.parrot, 'the provider entry was measured');
  } finally {
    project.remove();
    delete METHODS['sft-twice'];
    delete TRAIN_BACKENDS.recording;
    delete PROVIDERS.parrot;
  }
});

test('names outside the registries are refused with the registered ones listed', async () => {
  const bad = [
    [{ models: { subject: 'parrot-less:x' } }, /models\.subject.*expected "openai:<model>\[@<baseURL>\]", "local:<model dir>/],
    [{ models: { subject: 'tiny' }, run: { methods: ['nope'] } }, /run\.methods\[0\]: expected one of 'sft', 'dpo', 'dpo-introspection', 'grpo', 'grpo-consistency', 'mixture'$/],
    [{ models: { subject: `local:${resolve('test/fixtures/models/llama')}` }, train: { backend: 'nope' } }, /train\.backend: one of engine/],
    [{ models: { subject: `local:${resolve('test/fixtures/models/llama')}` }, train: { methodBackends: { sft: { backend: 'nope' } } } }, /train\.methodBackends\.sft\.backend: one of engine/],
    [{ models: { subject: `local:${resolve('test/fixtures/models/llama')}` }, train: { methodBackends: { nope: { backend: 'engine' } } } }, /train\.methodBackends\.nope: a training method \(sft, dpo/],
  ] as const;
  for (const [experiment, message] of bad) {
    const project = writeProject({ name: 'unknown', ...experiment });
    try {
      await assert.rejects(runExperiment(project.file, { log: () => {} }), message);
    } finally {
      project.remove();
    }
  }
});
