/**
 * `persona-lab run` with training, offline on a small fixture model the project makes
 * (test/fixtures/models/llama, random weights: its replies are noise, but every stage runs through
 * the real engine and trainer): the loopback server's scripted teacher writes the data, the matrix
 * trains SFT on a format, DPO, the DPO + introspection recipe (introspection data written by the
 * DPO-trained fixture model itself) and GRPO, and the eval stage measures every adapter beside base
 * and prompted. The first run is killed with SIGKILL while DPO trains; the rerun skips the finished
 * SFT adapter, resumes DPO from its checkpoint and finishes the matrix.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { evalSummarySchema } from '../../src/evals/index.js';
import { runCli } from '../support/cli.js';
import { FIXTURE_GENERATE, journalKeys, killRunWhen, worldServer, writeProject } from './run-support.js';

const world = worldServer();

const short = { lora: { rank: 2, alpha: 4, targets: ['q', 'v'] }, maxSteps: 2, batchSize: 1, gradAccumulation: 1, maxLength: 64, checkpointEvery: 1 };

test('run trains every method on the fixture model and evaluates each adapter against base and prompted', async (t) => {
  const project = writeProject({
    name: 'offline',
    models: { subject: `local:${resolve('test/fixtures/models/llama')}`, teacher: `openai:teacher@${world.server.baseURL}`, judge: `openai:judge-1@${world.server.baseURL}` },
    seeds: [1],
    generate: FIXTURE_GENERATE,
    train: { sft: short, dpo: { ...short, maxSteps: 3 }, grpo: { ...short, groupSize: 2, maxNewTokens: 6, maxSteps: 1 } },
    run: { formats: ['chat'], methods: ['sft', 'dpo-introspection', 'grpo'], introspection: { datasets: ['reflection'] }, threads: 1 },
    eval: { evals: ['identity', 'capability'], bootstrap: 100, identity: { maxTokens: 8 }, capability: { maxTokens: 8, questions: 'capability.json' } },
  });
  writeFileSync(join(project.dir, 'capability.json'), JSON.stringify([{ id: 'q1', kind: 'arithmetic', question: 'What is 2 + 2?', answer: '4' }, { id: 'q2', kind: 'facts', question: 'What is the capital of France?', answer: 'Paris' }]));
  try {
    const cell = (method: string) => join(project.runDir, 'adapters', 'captain-salt', method, 'seed-1');
    const latest = join(cell('dpo'), 'checkpoints', 'latest');
    await killRunWhen(project.file, () => existsSync(latest), `${latest} appeared`);
    const sftAdapter = join(cell('sft-chat'), 'adapter', 'adapter_model.safetensors');
    const sftWritten = statSync(sftAdapter).mtimeMs;
    const dpoFinishedBeforeKill = readFileSync(join(project.runDir, 'journals', 'train', 'adapters.jsonl'), 'utf8').includes('"captain-salt/dpo/seed-1"');

    const first = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /report: .*report\.html\n$/);
    assert.equal(statSync(sftAdapter).mtimeMs, sftWritten, 'the finished SFT adapter was not trained again');
    const journaled = readFileSync(join(project.runDir, 'journals', 'train', 'adapters.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { key: string; value: { resumedFrom: number } });
    const dpo = journaled.find((l) => l.key === 'captain-salt/dpo/seed-1')!;
    t.diagnostic(`killed ${dpoFinishedBeforeKill ? 'after DPO finished' : `during DPO; it resumed from step ${dpo.value.resumedFrom}`}`);
    if (!dpoFinishedBeforeKill) assert.ok(dpo.value.resumedFrom >= 1, 'DPO resumed from its checkpoint');
    const steps = readFileSync(join(cell('dpo'), 'train.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { key: string }).key);
    assert.deepEqual(steps, ['step-1', 'step-2', 'step-3'], 'every DPO step logged once');
    const cells = ['sft-chat', 'dpo', 'dpo-introspection', 'grpo'];
    for (const method of cells) assert.ok(existsSync(join(cell(method), 'adapter', 'adapter_config.json')), `${method} adapter written`);
    assert.ok(existsSync(`${project.runDir}/adapters/captain-salt/dpo-introspection/seed-1/introspection/datasets/captain-salt/reflection.jsonl`), 'introspection data written by the DPO-trained model');
    const summary = evalSummarySchema.parse(JSON.parse(readFileSync(`${project.runDir}/evals/summary.json`, 'utf8')));
    assert.deepEqual(summary.subjects.map((s) => s.name), ['base', 'prompted', ...cells.map((m) => `captain-salt.${m}.seed-1`)]);
    for (const s of summary.subjects.slice(2)) assert.match(s.model, /\+/, `${s.name} runs with its adapter`);
    for (const e of summary.evals) assert.equal(e.status, 'ok', `${e.eval}: ${e.reason}`);
    const capability = summary.evals.find((e) => e.eval === 'capability')!;
    assert.ok(capability.subjects['captain-salt.grpo.seed-1'].accuracy.comparisons.some((c) => c.against === 'base'));

    // Every eval journal record names its subject structurally: a trained one with its cell, as in the summary.
    for (const s of summary.subjects) {
      const journal = join(project.runDir, 'journals', 'evals', 'capability', `${s.name}.jsonl`);
      for (const line of readFileSync(journal, 'utf8').trim().split('\n')) {
        assert.deepEqual((JSON.parse(line) as { value: { subject: unknown } }).value.subject, { name: s.name, kind: s.kind, cell: s.cell ?? null }, journal);
      }
    }
    assert.equal(summary.subjects.at(-1)!.cell?.method, 'grpo');

    for (const [file, keys] of journalKeys(project.runDir)) assert.equal(new Set(keys).size, keys.length, `no duplicate keys in ${file}`);
  } finally {
    project.remove();
  }
});
