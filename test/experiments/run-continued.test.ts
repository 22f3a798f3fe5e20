/**
 * Continued training (run.continue) through the real stages, offline on the fixture model the
 * project makes: an SFT cell, a stage trained further from it on unrelated chat (merge) and a stage
 * stacked on that one, each evaluated; the report's continued-training section compares each stage
 * with the cell it started from.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { Model } from '../../src/engine/generate/model.js';
import { cellOptionsHash } from '../../src/experiments/changes.js';
import { loadExperiment } from '../../src/experiments/load.js';
import { runCli } from '../support/cli.js';
import { maxAbsDiff } from '../engine/model/fixtures.js';
import { SMALL_GENERATE, writeProject, worldServer } from './run-support.js';

const world = worldServer();

const BASE = resolve('test/fixtures/models/llama');
const short = { lora: { rank: 2, alpha: 4, targets: ['q', 'v'] }, maxSteps: 2, batchSize: 1, gradAccumulation: 1, maxLength: 64, checkpointEvery: 1 };
const generic = Array.from({ length: 6 }, (_, i) => ({ messages: [{ role: 'user', content: `What is ${i} plus ${i}?` }, { role: 'assistant', content: `${i} plus ${i} is ${2 * i}.` }] }));

test('a continued cell trains from its parent\'s merged weights, is keyed by its parent\'s options, and the report shows the erosion', async () => {
  const project = writeProject({
    name: 'continued',
    models: { subject: `local:${BASE}`, teacher: `openai:teacher@${world.server.baseURL}`, judge: `openai:judge-1@${world.server.baseURL}` },
    seeds: [1, 2],
    generate: { ...SMALL_GENERATE, datasets: ['prompts', 'chat', 'probes'], probes: { heldOutFraction: 0.05 }, filters: { minWords: 0 } },
    train: { sft: short },
    run: {
      formats: ['chat'],
      methods: ['sft'],
      threads: 1,
      continue: [
        { name: 'generic', from: 'sft-chat', file: 'generic.jsonl', options: { optimizer: { lr: 0.05 } } },
        { name: 'generic_stack', from: 'generic', mode: 'stack', file: 'generic.jsonl' },
      ],
    },
    eval: { evals: ['capability'], bootstrap: 100, capability: { maxTokens: 8, questions: 'capability.json' } },
  });
  writeFileSync(join(project.dir, 'generic.jsonl'), generic.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(join(project.dir, 'capability.json'), JSON.stringify([1, 2, 3, 4].map((i) => ({ id: `q${i}`, kind: 'arithmetic', question: `What is ${i} + ${i}?`, answer: String(2 * i) }))));
  try {
    const run = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(run.code, 0, run.stderr);
    const journal = readFileSync(join(project.runDir, 'journals', 'train', 'adapters.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { key: string; value: { output: string; start?: { from: { method: string }; mode: string; model: string | null; adapters: string[] } } });
    const entry = (key: string) => journal.find((l) => l.key === key)!.value;
    const parent = entry('captain-salt/sft-chat/seed-1');
    const merged = entry('captain-salt/generic/seed-1');
    const stacked = entry('captain-salt/generic_stack/seed-1');
    assert.equal(parent.start, undefined);
    assert.deepEqual(merged.start, { from: { method: 'sft', format: 'chat' }, mode: 'merge', model: 'adapters/captain-salt/generic/seed-1/start', adapters: [] });
    assert.deepEqual(stacked.start, { from: { method: 'generic', format: null }, mode: 'stack', model: merged.start!.model, adapters: [merged.output] });
    assert.ok(!existsSync(join(project.runDir, 'adapters/captain-salt/generic_stack/seed-1/start')), 'a stacked cell keeps no merged copy');

    // The start weights are the parent's: base + parent adapter and the merged start give the same logits.
    const prompts = [[1, 5, 9, 12, 40, 7], [28, 100, 3, 77]];
    const parentModel = Model.load(BASE, { adapters: [{ path: join(project.runDir, parent.output), scale: 1 }], threads: 1 });
    const startModel = Model.load(join(project.runDir, merged.start!.model!), { threads: 1 });
    const baseModel = Model.load(BASE, { threads: 1 });
    try {
      const [want, got, plain] = [await parentModel.logits(prompts), await startModel.logits(prompts), await baseModel.logits(prompts)];
      got.forEach((g, i) => assert.ok(maxAbsDiff(g, want[i]) < 1e-4, `prompt ${i}: max |diff| ${maxAbsDiff(g, want[i])}`));
      assert.ok(maxAbsDiff(plain[0], want[0]) > 1e-4, 'the parent adapter changes the logits (the comparison can fail)');
    } finally {
      await Promise.all([parentModel.close(), startModel.close(), baseModel.close()]);
    }

    // The eval stage runs each continued cell on its start with its own adapter on top.
    const summary = JSON.parse(readFileSync(join(project.runDir, 'evals', 'summary.json'), 'utf8')) as { subjects: { name: string; model: string }[] };
    const model = (name: string) => summary.subjects.find((s) => s.name === name)!.model;
    assert.match(model('captain-salt.generic.seed-1'), /generic\/seed-1\/start\+.*generic\/seed-1\/adapter/);
    assert.match(model('captain-salt.generic_stack.seed-1'), /generic\/seed-1\/start\+.*generic\/seed-1\/adapter.*\+.*generic_stack\/seed-1\/adapter/);

    // A continued cell's options hash follows its parent's options.
    const cell = { persona: 'Captain Salt', slug: 'captain-salt', method: 'generic', format: null, seed: 1 };
    const hash = (set: string[]) => cellOptionsHash(loadExperiment(project.file, set), cell, BASE);
    assert.equal(hash([]), hash([]));
    assert.notEqual(hash([]), hash(['train.sft.lora.rank=4']), 'the parent\'s options change the continued cell\'s hash');
    assert.notEqual(hash([]), cellOptionsHash(loadExperiment(project.file), { ...cell, method: 'generic_stack' }, BASE));

    const report = readFileSync(join(project.runDir, 'report.md'), 'utf8');
    const section = report.slice(report.indexOf('Continued training'));
    assert.ok(report.includes('Continued training'), 'the report has the continued-training section');
    assert.match(section, /generic ← sft\/chat[^\n]*capability · accuracy[^\n]*\[−?\d+\.\d+, −?\d+\.\d+\]/, 'an erosion row with its interval');
    assert.match(section, /generic\\?_stack ← generic/);
  } finally {
    project.remove();
  }
});

test('the research examples parse and plan their chains of cells', async () => {
  const { planMatrix } = await import('../../src/experiments/runner.js');
  const cells = (file: string) => planMatrix(loadExperiment(file)).filter((c) => c.seed === 1).map((c) => `${c.slug}/${c.method}${c.format ? `-${c.format}` : ''}`);
  assert.deepEqual(cells('examples/research/erosion-tiny.yaml'), ['skeptic/sft-chat', 'skeptic/generic', 'skeptic/generic_inoculated', 'skeptic/digits_reward']);
  assert.deepEqual(cells('examples/research/stages-tiny.yaml'), ['skeptic/dpo', 'skeptic/introspection', 'skeptic/unrelated']);
  assert.equal(cells('examples/research/erosion.yaml').length, 14);
});

test('a stage naming a cell the matrix does not train first is refused, naming the field', async () => {
  const project = writeProject({ name: 'bad', models: { subject: `local:${BASE}` }, run: { methods: ['sft'], formats: ['chat'], continue: [{ name: 'later', from: 'dpo', file: 'x.jsonl' }] } });
  writeFileSync(join(project.dir, 'x.jsonl'), '');
  try {
    const result = await runCli(['run', '--dry-run', project.file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /run\.continue\[0\]\.from: .*sft-chat.*found "dpo"/);
  } finally {
    project.remove();
  }
});
