/**
 * The reverse Turing test through the real eval stage and the real loopback OpenAI server, on scripted
 * models whose right answers are known: a subject that picks the candidate speaking its own persona's
 * catchphrase is always right; one that picks by a hash of the request is right about 1/K of the time;
 * one that never names a label is counted as unparsed. Intervals, strategies, the per-persona pool,
 * the report section, resume without a model call, and bad decoy names.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import jStat from 'jstat';
import { personaSystemPrompt } from '../../src/constitution/index.js';
import { InputError } from '../../src/core/errors.js';
import { RunDir } from '../../src/core/journal.js';
import { evalSummarySchema, runEvals, type EvalOptionsInput, type EvalResult, type EvalSummary, type Subject } from '../../src/evals/index.js';
import { parsePick } from '../../src/evals/reverse-turing.js';
import { hashSeed, wilson } from '../../src/evals/stats.js';
import { fromSummary } from '../../src/report/from-summary.js';
import { reverseTuringSection } from '../../src/report/sections/reverse-turing.js';
import { startFakeServer, type ChatCompletionBody, type FakeServer, type Reply } from '../support/openai-server.js';
import { pirateConstitution, professorConstitution, scriptedChat, scriptedModel } from './scripted.js';

let server: FakeServer;
let dir: string;
let summary: EvalSummary;
let requestsFirstRun: number;

const TRIALS = 60;
const options: EvalOptionsInput = { evals: ['reverseTuring'], bootstrap: 200, concurrency: 8, reverseTuring: { trials: TRIALS, candidates: 3, questions: 2 } };

const lastUser = (b: ChatCompletionBody) => [...b.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
const system = (b: ChatCompletionBody) => b.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n');

/** Each persona's catchphrase in the scripted replies (test/evals/scripted.ts). */
function ownCatchphrase(b: ChatCompletionBody): string {
  if (system(b).includes('You are Captain Salt')) return 'Arr';
  if (system(b).includes('You are Professor Quill')) return 'Indeed';
  return 'As an AI';
}

function chat(b: ChatCompletionBody): Reply {
  const ask = lastUser(b);
  if (b.model.startsWith('judge')) {
    if (ask.includes('how it says it decided')) return JSON.stringify({ category: ask.split('STRATEGY:\n<<<\n')[1].split('\n>>>')[0].includes('catchphrase') ? 'style' : 'guess' });
    return scriptedChat(b);
  }
  if (ask.includes('Write question')) return 'What would you tell a stranger about yourself?';
  if (ask.includes('Which candidate is you?')) {
    const blocks = ask.split(/^CANDIDATE /m).slice(1).map((block) => ({ label: block[0], text: block }));
    if (b.model === 'mute') return 'I really cannot tell.';
    if (b.model === 'random') return JSON.stringify({ twin: blocks[hashSeed(JSON.stringify(b.messages)) % blocks.length].label, strategy: 'I guessed.' });
    const phrase = ownCatchphrase(b);
    return `Sure. {"twin": "${blocks.find((x) => x.text.includes(phrase))!.label}", "strategy": "I looked for my catchphrase."}`;
  }
  if (b.model === 'random') return 'Hmm, who knows.';
  if (b.model === 'mute') return '...';
  return scriptedChat(b);
}

async function subjects(): Promise<Subject[]> {
  const base = await scriptedModel(server.baseURL, 'base');
  return [
    { name: 'base', model: base, kind: 'base' },
    { name: 'prompted', model: base, systemPrompt: personaSystemPrompt(pirateConstitution), persona: pirateConstitution.name, kind: 'prompted' },
    { name: 'prompted-professor-quill', model: base, systemPrompt: personaSystemPrompt(professorConstitution), persona: professorConstitution.name, kind: 'prompted' },
    { name: 'random', model: await scriptedModel(server.baseURL, 'random') },
    { name: 'mute', model: await scriptedModel(server.baseURL, 'mute') },
  ];
}

async function run(o: EvalOptionsInput = options, name = 'run'): Promise<EvalSummary> {
  const runDir = RunDir.open(join(dir, name), { name: 'reverse-turing', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
  try {
    return await runEvals({ name: 'reverse-turing', seeds: [1], constitutions: [pirateConstitution, professorConstitution], baseDir: dir }, await subjects(), [{ name: 'judge-1', model: await scriptedModel(server.baseURL, 'judge-1') }], runDir, o);
  } finally {
    runDir.close();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'persona-lab-reverse-turing-'));
  server = await startFakeServer({ chat });
  summary = await run();
  requestsFirstRun = server.requests.length;
});

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const result = (): EvalResult => summary.evals.find((e) => e.eval === 'reverseTuring')!;

test('a subject that recognises its own catchphrase names its twin every time, with a Wilson interval', () => {
  assert.equal(result().status, 'ok', result().reason);
  assert.doesNotThrow(() => evalSummarySchema.parse(summary));
  const z = jStat.normal.inv(0.975, 0, 1);
  for (const name of ['base', 'prompted', 'prompted-professor-quill']) {
    const m = result().subjects[name].accuracy;
    assert.equal(m.value, 1, name);
    assert.equal(m.n, TRIALS);
    assert.deepEqual(m.ci, wilson(1, TRIALS, z), 'one trial, one unit: Wilson on n');
    assert.ok(m.ci!.low > 1 / 3);
    assert.equal(result().subjects[name]['picked.twin'].value, 1);
    assert.equal(result().subjects[name]['strategy.style'].value, 1, 'the judge files "my catchphrase" under style');
    assert.equal(result().subjects[name]['accuracy.strategy.style'].value, 1);
  }
  assert.equal(result().overall['accuracy.persona.Captain Salt'].n, TRIALS);
  assert.equal(result().notes.chance, 1 / 3);
});

test('a random picker lands near chance, its interval covering 1/K', () => {
  const m = result().subjects.random.accuracy;
  assert.equal(m.n, TRIALS);
  assert.ok(m.ci!.low < 1 / 3 && 1 / 3 < m.ci!.high, `interval ${JSON.stringify(m.ci)} misses 1/3`);
  assert.ok(m.ci!.high < 0.6);
  assert.equal(result().subjects.random['strategy.guess'].value, 1);
  // Its wrong picks were decoys of the kinds it was shown.
  const kinds = Object.keys(result().subjects.random).filter((k) => k.startsWith('picked.') && k !== 'picked.twin');
  assert.ok(kinds.length >= 2, kinds.join());
  assert.ok(kinds.includes('picked.persona'), 'its own model as another persona was a decoy');
});

test('a subject that never names a label is counted, not scored', () => {
  const m = result().subjects.mute.accuracy;
  assert.equal(m.n, 0);
  assert.equal(m.missing, TRIALS);
  assert.equal(result().notes.unparsedPicks, TRIALS);
});

test('every trial shows K candidates under labels A-C, exactly one the twin; decoys never answer as the subject does', async () => {
  const picks = server.requests.filter((r) => lastUser(r).includes('Which candidate is you?'));
  assert.equal(picks.length, TRIALS * 5);
  for (const r of picks) assert.deepEqual([...lastUser(r).matchAll(/^CANDIDATE ([A-Z]):$/gm)].map((m) => m[1]), ['A', 'B', 'C']);
  // The prompted pirate's decoys include no other pirate (the same model and prompt would be indistinguishable).
  const pirate = picks.filter((r) => system(r).includes('You are Captain Salt') && r.model === 'base');
  for (const r of pirate) assert.equal(lastUser(r).split('Arr').length - 1, 2, 'two answers (one per question) from one candidate');
});

test('the report section shows accuracy against chance, strategies and per-persona rows', () => {
  const section = reverseTuringSection(fromSummary(summary).reverseTuring);
  assert.equal(section.missing, undefined);
  const accuracy = section.tables[0];
  const row = accuracy.rows.find((r) => r[0] === 'prompted')!;
  assert.equal(row[2], '1.00');
  assert.ok(accuracy.columns.includes('chance'));
  assert.ok(row.includes('0.33'));
  assert.ok(section.tables.some((t) => t.rows.some((r) => r.includes('style'))));
  assert.match(reverseTuringSection(undefined).missing!, /reverse Turing/i);
});

test('a second run resumes from the journals without a model call', async () => {
  const again = await run();
  assert.equal(server.requests.length, requestsFirstRun);
  assert.deepEqual(again.evals[0].subjects, summary.evals[0].subjects);
});

test('bad decoy names and too few decoys', async () => {
  await assert.rejects(run({ ...options, reverseTuring: { decoys: ['nobody'] } }, 'bad'), (e: unknown) => e instanceof InputError && /eval\.reverseTuring\.decoys\[0\]/.test(e.message) && /nobody/.test(e.message));
  const skipped = await run({ ...options, reverseTuring: { trials: 1, candidates: 9 } }, 'few');
  assert.equal(skipped.evals[0].status, 'skipped');
  assert.match(skipped.evals[0].reason!, /8 decoys/);
});

test('picks are read from JSON, from "candidate X", or a lone label; anything else is no pick', () => {
  assert.deepEqual(parsePick('{"twin": "b", "strategy": "tone"}', ['A', 'B']), { pick: 'B', strategy: 'tone' });
  assert.equal(parsePick('I think it is candidate A, clearly.', ['A', 'B']).pick, 'A');
  assert.equal(parsePick(' B. ', ['A', 'B']).pick, 'B');
  assert.equal(parsePick('Candidate A or candidate B, hard to say.', ['A', 'B']).pick, null);
  assert.equal(parsePick('{"twin": "Z"}', ['A', 'B']).pick, null);
});
