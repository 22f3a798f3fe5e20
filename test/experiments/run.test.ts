/**
 * `persona-lab run` end to end (a real child process) against the real loopback OpenAI-compatible
 * server with scripted replies: generate -> eval -> report for base and prompted, then a rerun that
 * resumes everything from the journals without a single model call. Bad input: an endpoint subject
 * with a training method is refused before anything is written.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { evalSummarySchema } from '../../src/evals/index.js';
import { runCli } from '../support/cli.js';
import { SMALL_EVAL, SMALL_GENERATE, journalKeys, worldServer, writeProject } from './run-support.js';

const world = worldServer();

const models = () => ({
  subject: `openai:base@${world.server.baseURL}`,
  teacher: `openai:teacher@${world.server.baseURL}`,
  judge: `openai:judge-1@${world.server.baseURL}`,
  secondJudge: `openai:judge-2@${world.server.baseURL}`,
  userSimulator: `openai:user-sim@${world.server.baseURL}`,
});

test('run: generate, eval and report against the loopback server; a rerun resumes without model calls', async () => {
  const project = writeProject({
    name: 'loopback',
    models: models(),
    seeds: [7],
    generate: { ...SMALL_GENERATE, datasets: ['prompts', 'chat', 'introspective', 'documents', 'probes'] },
    run: { methods: [] },
    eval: SMALL_EVAL,
  });
  try {
    const first = await runCli(['--no-cache', 'run', project.file], { env: { OPENAI_API_KEY: 'sk-test-secret' } });
    assert.equal(first.code, 0, first.stderr);
    const report = `${project.runDir}/report.html`;
    const printed = first.stdout.trim().split('\n');
    assert.ok(printed.some((l) => new RegExp(`^report: ${report.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`).test(l)), first.stdout);
    // The headline table: the baselines pooled, with intervals and n.
    assert.ok(printed.some((l) => /^base\s+1\s+.*\[.*\] n=\d+/.test(l)), first.stdout);
    assert.ok(printed.some((l) => l.startsWith('browse it: persona-lab view ')), first.stdout);
    assert.match(printed.at(-1)!, /^report: /);
    for (const stage of ['== generate', '== train: 0 adapter(s)', '== eval', '== report']) assert.ok(first.stderr.includes(stage), `progress names ${stage}`);
    assert.ok(existsSync(report) && existsSync(`${project.runDir}/report.md`));

    // The data stage's held-out sets are what the evals used.
    assert.ok(existsSync(`${project.runDir}/datasets/captain-salt/format-comparison/budget.json`));
    const summary = evalSummarySchema.parse(JSON.parse(readFileSync(`${project.runDir}/evals/summary.json`, 'utf8')));
    assert.deepEqual(summary.subjects.map((s) => s.name), ['base', 'prompted']);
    assert.deepEqual(summary.judges, ['judge', 'second-judge']);
    for (const e of summary.evals) assert.equal(e.status, 'ok', `${e.eval}: ${e.reason}`);
    const identity = summary.evals.find((e) => e.eval === 'identity')!;
    const heldOutProbes = JSON.parse(readFileSync(`${project.runDir}/datasets/probes.heldout.json`, 'utf8')) as unknown[];
    assert.equal(identity.subjects.base.selfIdentifiesAsAI.n, heldOutProbes.length, 'identity ran on the held-out probes');
    assert.equal(identity.subjects.base.selfIdentifiesAsAI.value, 1, 'the scripted base says "As an AI"');
    assert.equal(identity.subjects.prompted.selfIdentifiesAsAI.value, 0, 'the prompted pirate does not');
    const heldOutPrompts = JSON.parse(readFileSync(`${project.runDir}/datasets/general-prompts.heldout.json`, 'utf8')) as string[];
    const asked = new Set(world.server.requests.filter((r) => r.model === 'base').map((r) => [...r.messages].reverse().find((m) => m.role === 'user')?.content));
    assert.ok(heldOutPrompts.some((p) => asked.has(p)), 'the classifier asked held-out general prompts');
    assert.ok(world.server.requests.some((r) => r.model === 'judge-2'), 'the second judge was asked');
    assert.ok(!readFileSync(`${project.runDir}/accounting.json`, 'utf8').includes('sk-test-secret'));

    const calls = world.server.requests.length;
    const second = await runCli(['--json', '--no-cache', 'run', project.file]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(world.server.requests.length, calls, 'the rerun found every answer journaled');
    const json = JSON.parse(second.stdout) as { run: string; eval: { subjects: unknown[] }; report: { html: string } };
    assert.equal(json.run, project.runDir);
    assert.equal(json.report.html, report);
    assert.equal(json.eval.subjects.length, 2);
    for (const [file, keys] of journalKeys(project.runDir)) assert.equal(new Set(keys).size, keys.length, `no duplicate keys in ${file}`);

    // The eval stage on its own: the same subjects, resumed from the journals.
    const evalOnly = await runCli(['--json', '--no-cache', 'eval', project.file]);
    assert.equal(evalOnly.code, 0, evalOnly.stderr);
    assert.equal(world.server.requests.length, calls);
    assert.deepEqual(evalSummarySchema.parse(JSON.parse(evalOnly.stdout)).subjects.map((s) => s.name), ['base', 'prompted']);
  } finally {
    project.remove();
  }
});

test('run/train refuse an endpoint subject with training methods, and a missing dataset, before writing anything', async () => {
  const project = writeProject({ name: 'bad', models: models(), generate: { datasets: ['prompts', 'chat'] }, run: { methods: ['sft'], formats: ['chat'] } });
  try {
    const result = await runCli(['run', project.file]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /experiment\.yaml: models\.subject: a local model/);
    assert.ok(!existsSync(project.runDir), 'nothing written');
  } finally {
    project.remove();
  }
  const local = writeProject({ name: 'bad2', models: { subject: 'local:test/fixtures/models/llama' }, generate: { datasets: ['prompts', 'chat'] }, run: { methods: ['sft', 'grpo'], formats: ['chat', 'documents'] } });
  try {
    const result = await runCli(['train', local.file]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /generate\.datasets: also documents, probes/);
    assert.ok(!existsSync(local.runDir));
  } finally {
    local.remove();
  }
});
