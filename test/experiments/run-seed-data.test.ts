/**
 * generate.seedVaries through the real CLI, on the fixture model (test/fixtures/models/llama) with the
 * loopback server's scripted teacher (its replies depend on each request's seed): each run seed gets
 * its own sampling of the training data on the base seed's prompts and held-out split, each seed's
 * cell trains on its own seed's data, the dry run counts the extra calls, turning the option on in an
 * existing run is refused, and off writes exactly what a run without the option writes.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../support/cli.js';
import { FIXTURE_GENERATE, snapshot, worldServer, writeProject } from './run-support.js';

const world = worldServer();

const short = { lora: { rank: 2, alpha: 4, targets: ['q', 'v'] }, maxSteps: 1, batchSize: 1, gradAccumulation: 1, maxLength: 48, checkpointEvery: 1 };

function experiment(name: string, generate: Record<string, unknown>, stages: string[]) {
  return {
    name,
    models: { subject: `local:${resolve('test/fixtures/models/llama')}`, teacher: `openai:teacher@${world.server.baseURL}`, judge: `openai:judge-1@${world.server.baseURL}` },
    seeds: [7, 8],
    generate: { ...FIXTURE_GENERATE, datasets: ['prompts', 'chat', 'probes'], ...generate },
    train: { sft: short },
    run: { formats: ['chat'], methods: ['sft'], stages, threads: 1 },
  };
}

const rows = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { messages: { role: string; content: string }[]; meta: { seed: number } });
const manifest = (dir: string, name: string) => JSON.parse(readFileSync(join(dir, `${name}.manifest.json`), 'utf8')) as { seed: number; configHash: string };
const options = (runDir: string) => JSON.parse(readFileSync(join(runDir, 'options.json'), 'utf8')) as Record<string, { hash: string; options: { datasets?: Record<string, string>; generate?: Record<string, unknown> } }>;

test('with generate.seedVaries each seed samples its own training data on the base seed\'s prompts, and each cell trains on its own seed\'s', async () => {
  const project = writeProject(experiment('varies', { seedVaries: true }, ['generate', 'train', 'report']));
  try {
    // The dry run counts the training data's teacher calls once per seed (the prompt expansion once).
    const estimate = async (seedVaries: boolean) => (JSON.parse((await runCli(['--json', 'run', '--dry-run', '--set', `generate.seedVaries=${seedVaries}`, project.file])).stdout) as { estimate: { roles: { teacher: { calls: number } } } }).estimate.roles.teacher.calls;
    const [off, on] = [await estimate(false), await estimate(true)];
    // 2 traits x 5 prompts, 10% held out: 9 chat prompts; 2 expansion rounds (3 seed questions, batches of 5)
    assert.equal(off, 2 + 9);
    assert.equal(on, 2 + 2 * 9);

    const result = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(result.code, 0, result.stderr);
    const datasets = join(project.runDir, 'datasets');
    const base = join(datasets, 'captain-salt');
    const later = join(datasets, 'seed-8', 'captain-salt');
    // The base seed (generate.seed 7) keeps the usual place; seed 8's data has its own folder, without prompts of its own.
    assert.deepEqual(readdirSync(join(datasets, 'seed-8')), ['captain-salt']);
    assert.ok(!readdirSync(later).some((f) => f.startsWith('prompts')), 'the prompt pool is the base seed\'s');
    const [seven, eight] = [rows(join(base, 'chat.jsonl')), rows(join(later, 'chat.jsonl'))];
    assert.ok(seven.every((r) => r.meta.seed === 7) && eight.every((r) => r.meta.seed === 8));
    assert.equal(manifest(base, 'chat').seed, 7);
    assert.equal(manifest(later, 'chat').seed, 8);
    assert.notEqual(manifest(base, 'chat').configHash, manifest(later, 'chat').configHash);
    const replies = (rs: typeof seven) => rs.map((r) => r.messages.at(-1)!.content);
    assert.ok(replies(eight).every((reply) => !replies(seven).includes(reply)), 'seed 8\'s teacher replies are a sampling of their own');
    // Same user prompts: the base seed's training split, none of its held-out prompts.
    const users = (rs: typeof seven) => rs.map((r) => r.messages[0].content).sort();
    assert.deepEqual(users(eight), users(seven));
    const heldOut = readFileSync(join(base, 'prompts.heldout.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { prompt: string }).prompt);
    assert.ok(heldOut.length > 0);
    assert.ok(users(eight).every((u) => !heldOut.includes(u)), 'no held-out prompt in any seed\'s training data');

    // Each seed's cell trained on its own seed's chat data (the options that trained it name that file's hash).
    const record = options(project.runDir);
    assert.equal(record['train/captain-salt/sft-chat/seed-7'].options.datasets!.chat, manifest(base, 'chat').configHash);
    assert.equal(record['train/captain-salt/sft-chat/seed-8'].options.datasets!.chat, manifest(later, 'chat').configHash);
    assert.notEqual(record['train/captain-salt/sft-chat/seed-7'].hash, record['train/captain-salt/sft-chat/seed-8'].hash);
    assert.equal(record.generate.options.generate!.seedVaries, true);
    for (const seed of [7, 8]) assert.ok(existsSync(join(project.runDir, 'adapters', 'captain-salt', 'sft-chat', `seed-${seed}`, 'adapter', 'adapter_config.json')));
    // The report says what varied with the seed.
    assert.match(readFileSync(join(project.runDir, 'report.md'), 'utf8'), /varies with the seed.*training initialization and data order; training data \(generate\.seedVaries\)/);

    // A rerun resumes: nothing is sampled again.
    const requests = world.server.requests.length;
    const again = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(world.server.requests.slice(requests).filter((r) => r.model === 'teacher').length, 0, 'every seed\'s data was journaled');
  } finally {
    project.remove();
  }
});

test('off writes what a run without the option writes; turning it on in that run is refused with nothing written', async () => {
  const unset = writeProject(experiment('same', {}, ['generate']));
  const off = writeProject(experiment('same', { seedVaries: false }, ['generate']));
  try {
    for (const p of [unset, off]) {
      const r = await runCli(['--no-cache', 'run', p.file]);
      assert.equal(r.code, 0, r.stderr);
    }
    const files = (p: typeof unset) => snapshot(join(p.runDir, 'datasets')).replaceAll(p.runDir, '<run>');
    assert.equal(files(off), files(unset), 'the same datasets, byte for byte');
    assert.ok(!existsSync(join(off.runDir, 'datasets', 'seed-8')));
    assert.equal(options(off.runDir).generate.hash, options(unset.runDir).generate.hash, 'the same recorded options');
    assert.equal('seedVaries' in options(off.runDir).generate.options.generate!, false);

    const before = snapshot(off.runDir);
    const on = await runCli(['--no-cache', 'run', '--set', 'generate.seedVaries=true', off.file]);
    assert.equal(on.code, 2, on.stderr);
    assert.match(on.stderr, /generate\.seedVaries: generate in .* was made with other options \(generate\.seedVaries \(unset\) -> true\)/);
    assert.equal(snapshot(off.runDir), before, 'nothing written');
  } finally {
    unset.remove();
    off.remove();
  }
});
