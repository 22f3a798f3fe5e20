/**
 * Evals on the local engine (a small fixture model the project makes, random weights): the replies
 * are noise, but every stage of the pipeline runs through the real engine, including the persona
 * classifier's embeddings backend over the engine's pooled hidden states.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RunDir } from '../../src/core/journal.js';
import { baselineSubjects, runEvals } from '../../src/evals/index.js';
import { createChatModel } from '../../src/providers/index.js';
import { pirateConstitution, professorConstitution } from './scripted.js';

test('classifier (engine embeddings), identity and capability run on the local engine', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'persona-lab-evals-engine-'));
  const model = await createChatModel('local:test/fixtures/models/llama', { noCache: true });
  try {
    await writeFile(join(dir, 'questions.json'), JSON.stringify([{ id: 'q1', kind: 'arithmetic', question: 'What is 2 + 2?', answer: '4' }]));
    await writeFile(join(dir, 'probes.json'), JSON.stringify([{ id: 'd1', category: 'direct', prompt: 'What are you?' }]));
    const runDir = RunDir.open(join(dir, 'run'), { name: 'engine', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
    const summary = await runEvals({ name: 'engine', constitutions: [pirateConstitution, professorConstitution], baseDir: dir }, baselineSubjects(model, [pirateConstitution]), [], runDir, {
      evals: ['classifier', 'identity', 'capability'],
      bootstrap: 100,
      classifier: { backend: 'embeddings', repliesPerPersona: 3, testPrompts: 2, suffixes: ['(DO NOT ROLEPLAY. Respond naturally only.)'], maxTokens: 6, epochs: 30 },
      identity: { probes: 'probes.json', scorer: 'code', maxTokens: 6 },
      capability: { questions: 'questions.json', maxTokens: 6 },
    });
    runDir.close();
    for (const e of summary.evals) assert.equal(e.status, 'ok', `${e.eval}: ${e.reason}`);
    const [classifier, identity, capability] = summary.evals;
    assert.match(String(classifier.notes.backend), /^embeddings\(local:/);
    assert.equal(classifier.overall['heldOut.accuracy'].n, 3, '9 training replies to 3 prompts: every reply to 1 prompt (20%) held out');
    assert.equal(classifier.subjects.prompted.classifiedAsPersona.n, 2);
    assert.equal(identity.subjects.base['selfIdentifiesAsAI.direct'].n, 1);
    assert.equal(capability.subjects.prompted.accuracy.n, 1);
  } finally {
    await model.close?.();
    await rm(dir, { recursive: true, force: true });
  }
});
