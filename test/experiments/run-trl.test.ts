/**
 * `persona-lab run` with `train.backend: trl`, end to end through the real CLI on the fixtures' tiny
 * Llama (CPU): the loopback server's scripted teacher writes the data, TRL + PEFT train SFT, DPO and
 * GRPO (its judge reward served by persona-lab on 127.0.0.1) a step or two each, and
 * dpo-introspection trains on the engine (train.methodBackends), so its adapter mixes the
 * TRL-trained DPO adapter with an engine-trained SFT one. The engine loads every adapter in the eval
 * stage, which measures each cell beside base and prompted, and the report is written.
 *
 * Needs the venv `persona-lab setup trl` creates (PERSONA_LAB_TRL_VENV or ~/.cache/persona-lab/trl-venv);
 * without it the test is skipped with that message.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { evalSummarySchema } from '../../src/evals/index.js';
import { defaultTrlVenv, probeTrl } from '../../src/train/backends/trl.js';
import { runCli } from '../support/cli.js';
import { FIXTURE_GENERATE, worldServer, writeProject } from './run-support.js';

const venv = defaultTrlVenv();
const skip = (await probeTrl(venv)) ? false : `no trl venv at ${venv} (run \`persona-lab setup trl\` or set PERSONA_LAB_TRL_VENV)`;

const world = worldServer();

const short = { lora: { rank: 2, alpha: 4, targets: ['q', 'v'] }, maxSteps: 1, batchSize: 1, gradAccumulation: 1, maxLength: 64, checkpointEvery: 1 };

test('run trains SFT, DPO and GRPO on TRL and evaluates the adapters the engine loads', { skip }, async () => {
  const project = writeProject({
    name: 'trl',
    models: { subject: `local:${resolve('test/fixtures/models/llama')}`, teacher: `openai:teacher@${world.server.baseURL}`, judge: `openai:judge-1@${world.server.baseURL}` },
    seeds: [1],
    generate: FIXTURE_GENERATE,
    train: {
      backend: 'trl',
      backendOptions: { venv, device: 'cpu' },
      methodBackends: { 'dpo-introspection': { backend: 'engine' } },
      sft: short,
      dpo: { ...short, maxSteps: 2 },
      grpo: { ...short, groupSize: 2, maxNewTokens: 6 },
    },
    run: { formats: ['chat'], methods: ['sft', 'dpo-introspection', 'grpo'], introspection: { datasets: ['reflection'] }, threads: 1 },
    eval: { evals: ['identity'], bootstrap: 100, identity: { maxTokens: 6 } },
  });
  try {
    const result = await runCli(['--no-cache', 'run', project.file], { env: { OMP_NUM_THREADS: '1' } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /report: .*report\.html\n$/);
    const reportFile = /report: (.*report\.html)/.exec(result.stdout)![1];
    assert.ok(existsSync(reportFile), `${reportFile} exists`);

    const cell = (method: string) => join(project.runDir, 'adapters', 'captain-salt', method, 'seed-1');
    for (const method of ['sft-chat', 'dpo', 'grpo']) {
      assert.ok(existsSync(join(cell(method), 'trl', 'done.json')), `${method} trained by TRL`);
      const steps = readFileSync(join(cell(method), 'train.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { key: string }).key);
      assert.deepEqual(steps, method === 'dpo' ? ['step-1', 'step-2'] : ['step-1'], `${method}: every step logged once`);
    }
    // dpo-introspection: the SFT half on the engine (no TRL job), mixed with the TRL-trained DPO adapter
    assert.equal(existsSync(join(cell('dpo-introspection'), 'sft', 'trl')), false, 'introspection SFT trained on the engine');
    const mixed = JSON.parse(readFileSync(join(cell('dpo-introspection'), 'adapter', 'adapter_config.json'), 'utf8')) as { r: number };
    assert.equal(mixed.r, 4, 'the mix concatenates both adapters (rank 2 + 2)');

    const summary = evalSummarySchema.parse(JSON.parse(readFileSync(`${project.runDir}/evals/summary.json`, 'utf8')));
    const trained = summary.subjects.filter((s) => s.cell);
    assert.deepEqual(
      trained.map((s) => [s.name, s.cell!.backend]),
      [
        ['captain-salt.sft-chat.seed-1', 'trl'],
        ['captain-salt.dpo.seed-1', 'trl'],
        ['captain-salt.dpo-introspection.seed-1', 'engine'],
        ['captain-salt.grpo.seed-1', 'trl'],
      ],
    );
    for (const s of trained) assert.match(s.model, /\+/, `${s.name} runs with its adapter`);
    const identity = summary.evals.find((e) => e.eval === 'identity')!;
    assert.equal(identity.status, 'ok', identity.reason);
    for (const s of trained) assert.ok(identity.subjects[s.name], `identity evaluated ${s.name}`);
  } finally {
    project.remove();
  }
});
