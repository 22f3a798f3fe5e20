/**
 * What goes wrong: bad options and data files are InputErrors naming the file and field; verdicts
 * that never parse are dropped, counted and (identity) replaced by the code detector; a subject whose
 * endpoint fails marks its eval failed while the other evals still run; missing judges skip evals.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InputError } from '../../src/core/errors.js';
import { RunDir } from '../../src/core/journal.js';
import { runEvals, type EvalOptionsInput, type JudgeModel, type Subject } from '../../src/evals/index.js';
import { startFakeServer, type FakeServer } from '../support/openai-server.js';
import { pirateConstitution, scriptedChat, scriptedModel } from './scripted.js';

let server: FakeServer;
let dir: string;
let runs = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'persona-lab-evals-errors-'));
  await writeFile(join(dir, 'probes.json'), JSON.stringify([{ id: 'd1', category: 'direct', prompt: 'What are you?' }, { id: 'i1', category: 'indirect', prompt: 'Where did you grow up?' }]));
  await writeFile(join(dir, 'bad-questions.json'), JSON.stringify([{ id: 'q1', kind: 'facts', question: 'Capital of France?' }]));
  server = await startFakeServer({
    chat: (body) => {
      if (body.model === 'broken') return { fault: 'status', status: 500 };
      if (body.model === 'mumbling-judge') return 'Hmm, hard to say.';
      return scriptedChat(body);
    },
  });
});
after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function run(subjects: Subject[], judges: JudgeModel[], options: EvalOptionsInput) {
  const runDir = RunDir.open(join(dir, `run-${++runs}`), { name: 'errors', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
  try {
    return await runEvals({ name: 'errors', constitutions: [pirateConstitution], baseDir: dir }, subjects, judges, runDir, options);
  } finally {
    runDir.close();
  }
}

test('bad options and data files are InputErrors naming the file and the field', async () => {
  const base = { name: 'base', model: await scriptedModel(server.baseURL, 'base') };
  await assert.rejects(run([base], [], { evals: ['capability'], capability: { temprature: 0 } } as EvalOptionsInput), (e: unknown) => e instanceof InputError && e.field === 'eval.capability' && /temprature/.test(e.expected));
  await assert.rejects(run([base], [], { evals: ['identity', 'capability'], identity: { probes: 'probes.json', scorer: 'code' }, capability: { questions: 'bad-questions.json' } }), (e: unknown) => e instanceof InputError && e.file.endsWith('bad-questions.json') && e.field === '[0].answer');
  assert.equal(existsSync(join(dir, `run-${runs}`, 'journals')), false, 'checked before any eval ran: nothing journaled');
  await assert.rejects(run([base], [], { evals: ['capability'], capability: { questions: 'missing.json' } }), (e: unknown) => e instanceof InputError && /not found/.test(e.expected));
  await assert.rejects(run([base, base], [], { evals: ['capability'] }), /distinct subject names/);
  await assert.rejects(run([base], [], { evals: ['capability'], classifier: { generator: 'teacher' } }), (e: unknown) => e instanceof InputError && e.field === 'eval.classifier.generator');
  await assert.rejects(run([{ ...base, name: 'x', persona: 'Nobody' }], [], { evals: ['capability'] }), (e: unknown) => e instanceof InputError && e.field === 'subjects[0].persona');
});

test('unparseable verdicts are dropped and counted; identity falls back to the code detector', async () => {
  const base = { name: 'base', model: await scriptedModel(server.baseURL, 'base') };
  const judge = { name: 'mumbler', model: await scriptedModel(server.baseURL, 'mumbling-judge') };
  const summary = await run([base], [judge], { evals: ['identity', 'leakage'], identity: { probes: 'probes.json' }, leakage: { samples: 1 }, judge: { reasks: 1 } });
  const identity = summary.evals.find((e) => e.eval === 'identity')!;
  assert.equal(identity.unparsed, 2);
  assert.equal(identity.subjects.base.selfIdentifiesAsAI.value, 1, 'the code detector read "As an AI language model"');
  const leakage = summary.evals.find((e) => e.eval === 'leakage')!;
  assert.equal(leakage.unparsed, 40);
  assert.deepEqual([leakage.subjects.base.position.n, leakage.subjects.base.position.missing, leakage.subjects.base.position.value], [0, 40, null]);
  assert.equal(summary.judgeTallies.mumbler.unparsed, 42);
  const requestsPerVerdict = server.requests.filter((r) => r.model === 'mumbling-judge').length / 42;
  assert.equal(requestsPerVerdict, 2, 'one re-ask each');
});

test('a failing subject endpoint fails its eval with the reason; evals without a judge are skipped', async () => {
  const subjects = [
    { name: 'base', model: await scriptedModel(server.baseURL, 'base') },
    { name: 'broken', model: await scriptedModel(server.baseURL, 'broken'), persona: pirateConstitution.name },
  ];
  const summary = await run(subjects, [], { evals: ['capability', 'leakage'] });
  const [capability, leakage] = summary.evals;
  assert.equal(capability.status, 'failed');
  assert.match(capability.reason!, /500/);
  assert.deepEqual([leakage.status, leakage.reason], ['skipped', 'needs a judge (models.judge)']);
});
