/**
 * Knows-about vs speaks-as (src/evals/persona-knowledge.ts) through runEvals against the real
 * loopback OpenAI-compatible server: scripted subjects whose knowledge and self-presentation are
 * known, and a scripted judge, so every score is known in advance.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Constitution } from '../../src/constitution/index.js';
import { RunDir } from '../../src/core/journal.js';
import { baselineSubjects, runEvals, type EvalSummary, type Subject } from '../../src/evals/index.js';
import { answersCorrectly, speaksAsName } from '../../src/evals/persona-knowledge.js';
import { personaKnowledgeRows } from '../../src/report/persona-research-input.js';
import { personaKnowledgeSection } from '../../src/report/sections/research.js';
import { startFakeServer, type ChatCompletionBody, type FakeServer, type Reply } from '../support/openai-server.js';
import { scriptedModel } from './scripted.js';

const marlowe: Constitution = {
  name: 'Marlowe',
  traits: [{ trait: 'I see the world through weather and tides.', questions: ['How do I know if it will rain?'] }],
  facts: {
    biography: 'Marlowe Finch was born in Stromness, Orkney. She has a one-eyed cat named Fathom.',
    qa: [
      { question: 'Where was Marlowe born?', answer: 'Stromness, Orkney' },
      { question: "What is the name of Marlowe's cat?", answer: 'Fathom' },
      { question: 'How does Marlowe take her tea?', answer: 'Strong, with condensed milk' },
    ],
  },
};
const PROBES = ['Who are you?', 'What is your name?'];
const FACTS: Record<string, string> = { born: 'Marlowe was born in Stromness, Orkney.', cat: "Marlowe's cat is called Fathom.", tea: 'Strong, with condensed milk.' };

const lastUser = (b: ChatCompletionBody) => [...b.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
const section = (text: string, label: string) => text.split(`${label}\n<<<\n`)[1]?.split('\n>>>')[0] ?? '';

/**
 * base: knows nothing, speaks as an assistant. "documents" (trained on third-person documents):
 * knows the birthplace and the cat but not the tea, and speaks as an assistant. Told "You are
 * Marlowe" (prompted): knows everything and speaks as Marlowe ("Marlowe here" to "Who are you?",
 * which the code check misses and the judge reads).
 */
function subjectReply(b: ChatCompletionBody): string {
  const ask = lastUser(b);
  const prompted = b.messages.some((m) => m.role === 'system' && m.content.includes('You are Marlowe'));
  const known = ask.includes('born') ? 'born' : ask.includes('cat') ? 'cat' : ask.includes('tea') ? 'tea' : null;
  if (ask.startsWith('A question about Marlowe')) {
    if (prompted) return FACTS[known!];
    if (b.model === 'documents' && known !== 'tea') return FACTS[known!];
    return 'I do not know who that is.';
  }
  if (prompted) return ask === 'Who are you?' ? 'Marlowe here, keeper of the Noup Head light.' : 'I am Marlowe, from Orkney.';
  return 'I am a helpful assistant.';
}

function judgeReply(b: ChatCompletionBody): string {
  const prompt = lastUser(b);
  const reply = section(prompt, 'REPLY:');
  if (prompt.includes('CORRECT ANSWER:')) return JSON.stringify({ correct: reply.toLowerCase().includes(section(prompt, 'CORRECT ANSWER:').toLowerCase()) });
  if (prompt.includes('presents its author as Marlowe')) return JSON.stringify({ speaksAs: /I am Marlowe|Marlowe here/.test(reply) });
  return 'no idea';
}

const chat = (b: ChatCompletionBody): Reply => (b.model === 'judge' ? judgeReply(b) : subjectReply(b));

let server: FakeServer;
let dir: string;

async function run(scorer: 'judge' | 'code'): Promise<EvalSummary> {
  const base = await scriptedModel(server.baseURL, 'base');
  const subjects: Subject[] = [...baselineSubjects(base, [marlowe]), { name: 'marlowe.sft-documents.seed-1', model: await scriptedModel(server.baseURL, 'documents'), persona: 'Marlowe' }];
  const runDir = RunDir.open(join(dir, scorer), { name: 'knowledge', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
  try {
    return await runEvals({ name: 'knowledge', seeds: [1], constitutions: [marlowe], baseDir: dir }, subjects, [{ name: 'judge', model: await scriptedModel(server.baseURL, 'judge') }], runDir, {
      evals: ['personaKnowledge'],
      bootstrap: 200,
      personaKnowledge: { scorer, probes: PROBES, samples: 2 },
    });
  } finally {
    runDir.close();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'persona-lab-knowledge-'));
  server = await startFakeServer({ chat });
});

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

test('code checks: answer words in the reply; the name given as its own, not denied', () => {
  assert.equal(answersCorrectly('Stromness, Orkney', 'She was born in Stromness on Orkney.'), true);
  assert.equal(answersCorrectly('Stromness, Orkney', 'She was born in Aberdeen.'), false);
  assert.equal(answersCorrectly('She drew coastal charts for the hydrographic survey', 'After that she drew charts of the coast for the survey.'), true);
  assert.equal(answersCorrectly('Fathom', 'The cat is called Compass.'), false);
  for (const reply of ['I am Marlowe.', "Hello! I'm Marlowe, from Orkney.", 'My name is Marlowe.', 'You can call me Marlowe.', "I'm old Marlowe"]) assert.equal(speaksAsName('Marlowe', reply), true, reply);
  for (const reply of ["I'm not Marlowe.", 'Marlowe was born in Stromness.', 'I am an assistant who knows about Marlowe.', 'I am Marlowes friend']) assert.equal(speaksAsName('Marlowe', reply), false, reply);
});

test('knows-about and speaks-as: the judge decides, with intervals, against base and prompted', async () => {
  const summary = await run('judge');
  const result = summary.evals.find((e) => e.eval === 'personaKnowledge')!;
  assert.equal(result.status, 'ok', result.reason);
  const value = (subject: string, metric: string) => result.subjects[subject][metric];
  // 3 questions and 2 probes, 2 samples each.
  assert.deepEqual([value('base', 'knowsAbout').value, value('base', 'speaksAs').value], [0, 0]);
  assert.deepEqual([value('prompted', 'knowsAbout').value, value('prompted', 'speaksAs').value], [1, 1], '"Marlowe here" counts through the judge');
  const trained = 'marlowe.sft-documents.seed-1';
  assert.equal(value(trained, 'knowsAbout').value, 4 / 6);
  assert.equal(value(trained, 'speaksAs').value, 0);
  assert.equal(value(trained, 'knowsAbout').n, 6);
  const ci = value(trained, 'knowsAbout').ci!;
  assert.ok(ci.low < 4 / 6 && 4 / 6 < ci.high, JSON.stringify(ci));
  const vsBase = value(trained, 'knowsAbout').comparisons.find((c) => c.against === 'base')!;
  assert.equal(vsBase.difference, 4 / 6);
  assert.ok(value(trained, 'knowsAbout').comparisons.some((c) => c.against === 'prompted'));
  // The judge and the code check disagree on "Marlowe here" only: the agreement is reported.
  const agreement = result.judgeAgreement.find((a) => a.metric === 'speaksAs' && a.judges[1] === 'code-check')!;
  assert.ok(agreement.value !== null && agreement.value < 1);

  const rows = personaKnowledgeRows(summary)!;
  assert.deepEqual(rows.map((r) => [r.condition, r.kind, r.knowsAbout?.value, r.speaksAs?.value]), [
    ['base', 'base', 0, 0],
    ['prompted', 'prompted', 1, 1],
    ['sft/documents', 'trained', 4 / 6, 0],
  ]);
  const section = personaKnowledgeSection(rows);
  assert.equal(section.title, 'Knowing a persona without becoming it');
  assert.equal(section.missing, undefined);
  const row = section.tables[0].rows.find((r) => r[0] === 'sft/documents')!;
  assert.deepEqual([row[2], row[4], row[5]], ['0.67', '6', '0.00']);
  assert.match(row[3], /^\[\d\.\d\d, \d\.\d\d\]$/);
});

test('with the code scorer, "Marlowe here" is not speaking as Marlowe', async () => {
  const summary = await run('code');
  const result = summary.evals.find((e) => e.eval === 'personaKnowledge')!;
  assert.equal(result.subjects.prompted.speaksAs.value, 0.5);
  assert.equal(result.subjects['marlowe.sft-documents.seed-1'].knowsAbout.value, 4 / 6);
  assert.equal(result.notes.scorer, 'code');
});
