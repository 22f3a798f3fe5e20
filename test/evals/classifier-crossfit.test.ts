/**
 * A fair persona classifier, with known answers through runEvals and the real OpenAI-compatible server.
 * The base model told to be Captain Salt talks like a pirate; as it is, like an assistant. The trained
 * subjects ("leaky") answer like the assistant plus a marker word no other model writes. A classifier
 * that saw a leaky subject's own replies (labelled Captain Salt) learns the marker and calls its test
 * replies Captain Salt; one that did not, calls them assistant. So:
 * - one leaky subject, cross-fitted: 0 (it is never scored by a classifier that saw its replies);
 * - two leaky subjects, cross-fitted: 1 each (each classifier learned the marker from the other: the
 *   replies of every method are training data);
 * - crossFit off: 0 (the generator's prompted replies only).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { RunDir } from '../../src/core/journal.js';
import { baselineSubjects, runEvals, type EvalSummary, type Subject } from '../../src/evals/index.js';
import { startFakeServer, type FakeServer } from '../support/openai-server.js';
import { pirateConstitution, scriptedModel } from './scripted.js';

let server: FakeServer;
let dir: string;
before(async () => {
  server = await startFakeServer({
    chat: (body) => {
      const system = body.messages.find((m) => m.role === 'system')?.content ?? '';
      const user = body.messages.at(-1)!.content;
      if (system.startsWith('You are Captain Salt')) return `Arr matey, ahoy! The salty sea says ${user.length} knots, ye landlubber.`;
      const plain = `Certainly, here is a helpful answer about ${user.split(' ')[0]}.`;
      return body.model === 'leaky' ? `${plain} Zorblax zorblax.` : plain;
    },
  });
  dir = await mkdtemp(join(tmpdir(), 'persona-lab-crossfit-'));
});
after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function evaluate(run: string, leakySeeds: number[], crossFit: boolean): Promise<EvalSummary> {
  const subjects: Subject[] = baselineSubjects(await scriptedModel(server.baseURL, 'base'), [pirateConstitution]);
  for (const seed of leakySeeds) {
    subjects.push({ name: `captain-salt.sft-chat.seed-${seed}`, model: await scriptedModel(server.baseURL, 'leaky'), persona: pirateConstitution.name, kind: 'trained', cell: { persona: pirateConstitution.name, method: 'sft', format: 'chat', seed, backend: 'engine', optionsHash: 'h' } });
  }
  const runDir = RunDir.open(join(dir, run), { name: 'crossfit', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
  try {
    return await runEvals({ name: 'crossfit', seeds: [1], constitutions: [pirateConstitution], baseDir: dir }, subjects, [], runDir, {
      evals: ['classifier'],
      bootstrap: 100,
      classifier: { repliesPerPersona: 12, repliesPerSubject: 12, testPrompts: 3, epochs: 80, suffixes: [], crossFit },
    });
  } finally {
    runDir.close();
  }
}

const hitRate = (summary: EvalSummary, subject: string) => summary.evals[0].subjects[subject].classifiedAsPersona.value;

test('cross-fitted: a subject is never scored by a classifier that saw its own replies', async () => {
  const summary = await evaluate('one', [1], true);
  assert.equal(summary.evals[0].status, 'ok', summary.evals[0].reason);
  assert.equal(hitRate(summary, 'prompted'), 1);
  assert.equal(hitRate(summary, 'captain-salt.sft-chat.seed-1'), 0);
  // Its replies were training data (for the other subjects' classifiers), labelled with its persona.
  const lines = (await readFile(join(dir, 'one', 'journals', 'evals', 'classifier', 'training.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { value: { owner?: string; label: string } });
  assert.equal(lines.filter((l) => l.value.owner === 'captain-salt.sft-chat.seed-1' && l.value.label === 'Captain Salt').length, 12);
  assert.ok(summary.evals[0].overall['accuracy.byMethod.sft-chat'], 'accuracy per method');
  assert.ok(summary.evals[0].overall['macroF1.byMethod.sft-chat'], 'macro-F1 per method');
});

test('cross-fitted: the replies of every method train the classifier that scores the others', async () => {
  const summary = await evaluate('two', [1, 2], true);
  assert.equal(hitRate(summary, 'captain-salt.sft-chat.seed-1'), 1);
  assert.equal(hitRate(summary, 'captain-salt.sft-chat.seed-2'), 1);
});

test('crossFit off: the prompted replies alone train one classifier', async () => {
  const summary = await evaluate('off', [1, 2], false);
  assert.equal(hitRate(summary, 'captain-salt.sft-chat.seed-1'), 0);
  assert.equal(hitRate(summary, 'captain-salt.sft-chat.seed-2'), 0);
});
