/**
 * Changed options are never silently kept, through the real CLI on the fixture model: after `train`
 * with LoRA rank 2, `train` with rank 4 is refused (exit 2, the changed field named, the run directory
 * byte-for-byte unchanged); `--on-change redo` trains the cell anew beside the old one; a rerun under
 * either set of options finds its own adapter. A changed data-generation option is refused the same way.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { runCli } from '../support/cli.js';
import { SMALL_GENERATE, journalKeys, snapshot, worldServer, writeProject } from './run-support.js';

const world = worldServer();

const sft = (rank: number) => ({ lora: { rank, alpha: 2 * rank, targets: ['q', 'v'] }, maxSteps: 1, batchSize: 1, gradAccumulation: 1, maxLength: 48, checkpointEvery: 1 });

test('a changed LoRA rank between two train calls is refused, or trained anew beside the old adapter with --on-change redo', async () => {
  const project = writeProject({
    name: 'changes',
    models: { subject: `local:${resolve('test/fixtures/models/llama')}`, teacher: `openai:teacher@${world.server.baseURL}` },
    seeds: [1],
    generate: { ...SMALL_GENERATE, datasets: ['prompts', 'chat'], filters: { minWords: 0 } },
    train: { sft: sft(2) },
    run: { stages: ['generate', 'train'], formats: ['chat'], methods: ['sft'], threads: 1 },
  });
  const edit = (change: (e: Record<string, any>) => void) => {
    const e = parse(readFileSync(project.file, 'utf8')) as Record<string, any>;
    change(e);
    writeFileSync(project.file, stringify(e));
  };
  const rankOf = (dir: string) => (JSON.parse(readFileSync(join(project.runDir, dir, 'adapter_config.json'), 'utf8')) as { r: number }).r;
  try {
    const first = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(first.code, 0, first.stderr);

    edit((e) => (e.train.sft.lora.rank = 4));
    const before = snapshot(project.runDir);
    const refused = await runCli(['--no-cache', 'train', project.file]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /experiment\.yaml: train\.sft\.lora\.rank: train\/captain-salt\/sft-chat\/seed-1 .* was made with other options \(train\.sft\.lora\.rank 2 -> 4\); rerun with --on-change redo/);
    assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
    assert.equal(snapshot(project.runDir), before, 'the refused train wrote nothing');

    const redo = await runCli(['--json', '--no-cache', '--on-change', 'redo', 'train', project.file]);
    assert.equal(redo.code, 0, redo.stderr);
    const summary = JSON.parse(redo.stdout) as { trained: number; cells: { output: string; variant?: string }[] };
    assert.equal(summary.trained, 1);
    assert.equal(summary.cells.length, 1);
    assert.match(summary.cells[0].output, /^adapters\/captain-salt\/sft-chat\/seed-1@[0-9a-f]{8}\/adapter$/);
    assert.equal(rankOf(summary.cells[0].output), 4, 'the new adapter has the new rank');
    assert.equal(rankOf('adapters/captain-salt/sft-chat/seed-1/adapter'), 2, 'the old adapter is kept beside it');
    const keys = [...journalKeys(project.runDir)].find(([file]) => file.endsWith(join('train', 'adapters.jsonl')))![1];
    assert.deepEqual(keys, ['captain-salt/sft-chat/seed-1', `captain-salt/sft-chat/seed-1@${summary.cells[0].variant}`]);

    // Under either set of options, a rerun finds its own adapter and trains nothing.
    const again = await runCli(['--no-cache', 'train', project.file]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^1 adapter\(s\), 0 trained now\n.*seed-1@/);
    edit((e) => (e.train.sft.lora.rank = 2));
    const back = await runCli(['--no-cache', 'train', project.file]);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /^1 adapter\(s\), 0 trained now\ncaptain-salt sft-chat seed 1: adapters\/captain-salt\/sft-chat\/seed-1\/adapter\n$/);

    // Datasets whose generation options changed: refused the same way, nothing written.
    edit((e) => (e.generate.seed = 8));
    const snap = snapshot(project.runDir);
    const regenerate = await runCli(['--no-cache', 'generate', project.file]);
    assert.equal(regenerate.code, 2, regenerate.stderr);
    assert.match(regenerate.stderr, /generate\.seed: generate in .* was made with other options \(generate\.seed 7 -> 8\)/);
    assert.equal(snapshot(project.runDir), snap);
  } finally {
    project.remove();
  }
});

test('changed eval options are refused before anything is written, by `eval` and by `run`', async () => {
  const project = writeProject({
    name: 'eval-changes',
    models: { subject: `openai:base@${world.server.baseURL}`, teacher: `openai:teacher@${world.server.baseURL}`, judge: `openai:judge-1@${world.server.baseURL}` },
    seeds: [7],
    generate: { ...SMALL_GENERATE, datasets: ['prompts', 'probes'] },
    run: { methods: [], stages: ['generate', 'eval'] },
    eval: { evals: ['identity'], bootstrap: 100, concurrency: 2 },
  });
  try {
    const first = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(first.code, 0, first.stderr);
    const e = parse(readFileSync(project.file, 'utf8')) as Record<string, any>;
    e.eval.bootstrap = 200;
    writeFileSync(project.file, stringify(e));
    for (const command of ['eval', 'run']) {
      const before = snapshot(project.runDir);
      const refused = await runCli(['--no-cache', command, project.file]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /eval\.bootstrap: eval in .* was made with other options \(eval\.bootstrap 100 -> 200\)/);
      assert.equal(snapshot(project.runDir), before, `the refused ${command} wrote nothing (manifest.json included)`);
    }
  } finally {
    project.remove();
  }
});
