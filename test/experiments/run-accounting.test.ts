/**
 * accounting.json loses nothing and exit codes tell the truth, through the real CLI and loopback
 * server: `generate` then an `eval` whose subject endpoint fails for good. Each invocation's usage is
 * appended per stage and model - the failed eval's calls, retries and failures included - the
 * totals add up and reach the report; the failed eval makes the command exit 1 with one line, no
 * stack trace.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { accountingFileSchema } from '../../src/providers/accounting-file.js';
import { runCli } from '../support/cli.js';
import { startFakeServer, type FakeServer } from '../support/openai-server.js';
import { SMALL_GENERATE, worldChat, writeProject } from './run-support.js';

let server: FakeServer;
let subjectDown = false;
before(async () => {
  server = await startFakeServer({
    chat: (body) => {
      if (subjectDown && body.model === 'base') return { fault: 'status', status: 500 };
      if (body.model === 'judge-mute') return 'I would rather not rate this.';
      return worldChat(body);
    },
  });
});
after(async () => {
  await server.close();
});

test('accounting.json appends every invocation per stage and model, a failed eval included; the failed eval exits 1 in one line', async () => {
  const project = writeProject({
    name: 'accounting',
    models: {
      subject: { provider: 'openai', model: 'base', baseURL: server.baseURL, maxAttempts: 2, pricing: { input: 1, output: 2 } },
      teacher: `openai:teacher@${server.baseURL}`,
      judge: `openai:judge-1@${server.baseURL}`,
    },
    seeds: [7],
    generate: { ...SMALL_GENERATE, datasets: ['prompts', 'probes'] },
    run: { methods: [] },
    eval: { evals: ['identity'], bootstrap: 100, concurrency: 2 },
  });
  const read = () => accountingFileSchema.parse(JSON.parse(readFileSync(join(project.runDir, 'accounting.json'), 'utf8')));
  try {
    const generated = await runCli(['--no-cache', 'generate', project.file]);
    assert.equal(generated.code, 0, generated.stderr);
    const first = read();
    assert.equal(first.invocations.length, 1);
    assert.deepEqual(first.invocations[0].stages.map((s) => s.stage), ['generate']);
    const teacherCalls = server.requests.filter((r) => r.model === 'teacher').length;
    assert.ok(teacherCalls > 0);
    assert.equal(first.total.calls, first.invocations[0].stages[0].total.calls);

    subjectDown = true;
    const evaluated = await runCli(['--no-cache', 'eval', project.file]);
    assert.equal(evaluated.code, 1, evaluated.stderr);
    assert.match(evaluated.stdout, /^identity: failed /m);
    assert.match(evaluated.stderr.trim().split('\n').at(-1)!, /^error: eval: identity failed/);
    assert.doesNotMatch(evaluated.stderr, /^\s+at /m, 'no stack trace');

    const second = read();
    assert.equal(second.invocations.length, 2, 'the second invocation is appended, the first kept');
    assert.deepEqual(second.invocations[0], first.invocations[0]);
    const evalStage = second.invocations[1].stages.find((s) => s.stage === 'eval')!;
    assert.ok(evalStage, 'the failed stage is accounted');
    const subject = Object.values(evalStage.models).find((u) => u.failures > 0)!;
    assert.ok(subject, 'the failing subject is accounted');
    assert.ok(subject.retries >= 1, 'its retries are counted');
    const stageSum = second.invocations.flatMap((i) => i.stages).reduce((n, s) => n + s.total.calls, 0);
    assert.equal(second.total.calls, stageSum, 'totals add up over invocations');

    const report = await runCli(['report', project.runDir]);
    assert.equal(report.code, 0, report.stderr);
    assert.match(readFileSync(join(project.runDir, 'report.md'), 'utf8'), new RegExp(`model usage.*${second.total.calls} calls.*over 2 invocation\\(s\\)`));
  } finally {
    project.remove();
  }
});

test('an eval whose judge gives no usable score fails the command; changed eval options are refused', async () => {
  subjectDown = false;
  const project = writeProject({
    name: 'mute-judge',
    models: { subject: `openai:base@${server.baseURL}`, teacher: `openai:teacher@${server.baseURL}`, judge: `openai:judge-mute@${server.baseURL}` },
    seeds: [7],
    generate: { ...SMALL_GENERATE, datasets: ['prompts'] },
    run: { methods: [] },
    eval: { evals: ['traitExpression'], bootstrap: 100, concurrency: 2, traitExpression: { samplesPerTrait: 1 } },
  });
  try {
    const generated = await runCli(['--no-cache', 'generate', project.file]);
    assert.equal(generated.code, 0, generated.stderr);
    const evaluated = await runCli(['--no-cache', 'eval', project.file]);
    assert.equal(evaluated.code, 1, evaluated.stderr);
    assert.match(evaluated.stdout, /^traitExpression: failed \(no usable score: the judge's \d+ verdict\(s\) were all unparsed or missing\)$/m);
    assert.doesNotMatch(evaluated.stderr, /^\s+at /m);

    const e = parse(readFileSync(project.file, 'utf8')) as { eval: { bootstrap: number } };
    e.eval.bootstrap = 200;
    writeFileSync(project.file, stringify(e));
    const changed = await runCli(['--no-cache', 'eval', project.file]);
    assert.equal(changed.code, 2, changed.stderr);
    assert.match(changed.stderr, /experiment\.yaml: eval\.bootstrap: eval in .* was made with other options \(eval\.bootstrap 100 -> 200\); rerun with --on-change redo/);
    const redo = await runCli(['--no-cache', '--on-change', 'redo', 'eval', project.file]);
    assert.equal(redo.code, 1, redo.stderr);
    assert.ok(readdirSync(join(project.runDir, 'superseded')).length === 1, 'the old eval results moved aside');
  } finally {
    project.remove();
  }
});
