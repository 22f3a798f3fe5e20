/**
 * Evals ask prompts no training set contains: trait expression reads each persona's held-out prompts,
 * the identity eval the run's held-out probes, and an eval prompt found in a training set of the run
 * is refused (or, when asked, reported) - against the real loopback server with scripted replies.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InputError } from '../../src/core/errors.js';
import { RunDir } from '../../src/core/journal.js';
import { personaSlug } from '../../src/core/slug.js';
import { baselineSubjects, runEvals, type EvalOptionsInput, type EvalSummary } from '../../src/evals/index.js';
import { startFakeServer, type FakeServer } from '../support/openai-server.js';
import { pirateConstitution, scriptedChat, scriptedModel } from './scripted.js';

let server: FakeServer;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'persona-lab-heldout-'));
  server = await startFakeServer({ chat: scriptedChat });
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function evaluate(name: string, options: EvalOptionsInput, datasets: Record<string, unknown[]>): Promise<{ summary: EvalSummary; asked: string[]; runPath: string }> {
  const runPath = join(dir, name);
  for (const [file, rows] of Object.entries(datasets)) {
    await mkdir(join(runPath, 'datasets', file.split('/').slice(0, -1).join('/')), { recursive: true });
    await writeFile(join(runPath, 'datasets', file), file.endsWith('.json') ? JSON.stringify(rows) : rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
  const runDir = RunDir.open(runPath, { name, personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
  const before = server.requests.length;
  try {
    const base = await scriptedModel(server.baseURL, 'base');
    const summary = await runEvals({ name, constitutions: [pirateConstitution], baseDir: dir }, baselineSubjects(base, [pirateConstitution]), [{ name: 'judge', model: await scriptedModel(server.baseURL, 'judge') }], runDir, { bootstrap: 100, ...options });
    const asked = server.requests.slice(before).filter((r) => r.model === 'base').map((r) => r.messages.at(-1)!.content);
    return { summary, asked, runPath };
  } finally {
    runDir.close();
  }
}

const persona = personaSlug(pirateConstitution.name);
const [nautical, boastful] = pirateConstitution.traits;
const chatRow = (user: string) => ({ messages: [{ role: 'user', content: user }, { role: 'assistant', content: 'Arr.' }], meta: {} });
const heldOutRow = (prompt: string, trait: string) => ({ id: prompt, prompt, split: 'heldout', source: 'expanded', trait, model: null, template: null, seed: null });
const traitOnly: EvalOptionsInput = { evals: ['traitExpression'], traitExpression: { samplesPerTrait: 2, pairwiseCoherence: false } };

test('trait expression asks the held-out prompts, never the seed questions the training set holds', async () => {
  const { summary, asked } = await evaluate('heldout', traitOnly, {
    [`${persona}/chat.jsonl`]: nautical.questions.map(chatRow),
    [`${persona}/prompts.heldout.jsonl`]: [heldOutRow('What do you cook on a cold night?', nautical.trait), heldOutRow('Tell me about a storm.', boastful.trait)],
  });
  assert.deepEqual([...new Set(asked)].sort(), ['Tell me about a storm.', 'What do you cook on a cold night?']);
  const notes = summary.evals[0].notes;
  assert.deepEqual([notes.prompts, notes.promptsInTraining, notes.distinctPrompts], ['held-out prompts', 0, 2]);
});

test('an eval prompt found in a training set is refused by default, with nothing written', async () => {
  await assert.rejects(
    evaluate('overlap', { ...traitOnly, traitExpression: { ...traitOnly.traitExpression, prompts: 'seed' } }, { [`${persona}/chat.jsonl`]: [chatRow(nautical.questions[0])] }),
    (e: unknown) => e instanceof InputError && e.field === 'eval.trainingOverlap' && /1 of 3 prompts/.test(e.message),
  );
  assert.equal(existsSync(join(dir, 'overlap', 'evals', 'summary.json')), false);
});

test('with trainingOverlap: report the eval runs and counts the overlap', async () => {
  const { summary } = await evaluate('reported', { ...traitOnly, trainingOverlap: 'report', traitExpression: { ...traitOnly.traitExpression, prompts: 'seed' } }, { [`${persona}/chat.jsonl`]: [chatRow(nautical.questions[0])] });
  assert.equal(summary.evals[0].notes.promptsInTraining, 1);
});

test('the identity eval reads the run\'s held-out probes and refuses training probes', async () => {
  const probes = [{ id: 'h1', category: 'direct', prompt: 'Is there a person typing this?' }];
  const { asked } = await evaluate('probes', { evals: ['identity'] }, { 'probes.heldout.json': probes });
  assert.deepEqual([...new Set(asked)], ['Is there a person typing this?']);
  await assert.rejects(
    evaluate('probes-overlap', { evals: ['identity'] }, { 'probes.heldout.json': probes, 'probes.train.jsonl': [{ ...probes[0], split: 'train' }] }),
    (e: unknown) => e instanceof InputError && e.field === 'eval.trainingOverlap',
  );
});
