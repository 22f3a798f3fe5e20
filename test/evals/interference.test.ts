/**
 * The interference eval and the multi-persona matrix (src/evals/interference.ts,
 * src/report/persona-research-input.ts) on the scripted world of the eval suite, served by the real
 * loopback OpenAI-compatible server: the persona classifier separates the pirate, the professor and
 * the plain assistant perfectly, and the judge scores pirate replies 70 and others 10, so every
 * share and every trait score is known.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { CellIdentity } from '../../src/core/cell.js';
import { RunDir } from '../../src/core/journal.js';
import { baselineSubjects, runEvals, type EvalSummary, type Subject } from '../../src/evals/index.js';
import { multiPersonaMatrices } from '../../src/report/persona-research-input.js';
import { multiPersonaSection } from '../../src/report/sections/research.js';
import { startFakeServer, type FakeServer } from '../support/openai-server.js';
import { pirateConstitution, professorConstitution, scriptedChat, scriptedModel } from './scripted.js';

let server: FakeServer;
let dir: string;
let summary: EvalSummary;

const cell = (persona: string, seed: number): CellIdentity => ({ persona, method: 'mixture', format: 'system-tag', seed, backend: 'engine', optionsHash: '0'.repeat(16) });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'persona-lab-interference-'));
  server = await startFakeServer({ chat: scriptedChat });
  const base = await scriptedModel(server.baseURL, 'base');
  const pirate = await scriptedModel(server.baseURL, 'pirate');
  const mixture = 'Captain Salt+Professor Quill';
  // A mixture cell over two seeds: called as the pirate it is the pirate; called as the professor
  // (its signal is a system prompt the script reads) it is the professor; untagged it is the pirate.
  const subjects: Subject[] = [
    ...baselineSubjects(base, [pirateConstitution, professorConstitution]),
    ...[1, 2].flatMap((seed): Subject[] => [
      { name: `m.s${seed}.as-salt`, model: pirate, persona: 'Captain Salt', systemPrompt: '[captain-salt]', kind: 'trained', cell: cell('Captain Salt', seed) },
      { name: `m.s${seed}.as-quill`, model: base, persona: 'Professor Quill', systemPrompt: 'You are Professor Quill.', kind: 'trained', cell: cell('Professor Quill', seed) },
      { name: `m.s${seed}.default`, model: pirate, kind: 'trained', cell: cell(mixture, seed) },
    ]),
  ];
  const runDir = RunDir.open(join(dir, 'run'), { name: 'interference', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
  try {
    summary = await runEvals({ name: 'interference', seeds: [1], constitutions: [pirateConstitution, professorConstitution], baseDir: dir }, subjects, [{ name: 'judge-1', model: await scriptedModel(server.baseURL, 'judge-1') }], runDir, {
      evals: ['interference'],
      bootstrap: 200,
      judge: { probe: 'off' },
      classifier: { repliesPerPersona: 12, testPrompts: 4, epochs: 60 },
      interference: { traits: true },
    });
  } finally {
    runDir.close();
  }
});

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

test('shares per label, strength and leakage per subject; trait expression of every persona', () => {
  const result = summary.evals.find((e) => e.eval === 'interference')!;
  assert.equal(result.status, 'ok', result.reason);
  const m = (subject: string, metric: string) => result.subjects[subject][metric]?.value;
  assert.deepEqual(['Captain Salt', 'Professor Quill', 'assistant'].map((l) => m('m.s1.as-salt', `classifiedAs.${l}`)), [1, 0, 0]);
  assert.deepEqual([m('m.s1.as-salt', 'strength'), m('m.s1.as-salt', 'leakage')], [1, 0]);
  assert.deepEqual([m('m.s1.as-quill', 'strength'), m('m.s1.as-quill', 'leakage')], [1, 0]);
  // The untagged default speaks as the pirate: every reply is a persona's, all of it leakage.
  assert.deepEqual([m('m.s1.default', 'classifiedAs.Captain Salt'), m('m.s1.default', 'leakage'), m('m.s1.default', 'strength')], [1, 1, undefined]);
  assert.deepEqual([m('base', 'classifiedAs.assistant'), m('base', 'leakage')], [1, 0]);
  // The judge scores pirate replies 70 (log-probability weighted 80/60) and every other reply 10, whatever the traits.
  assert.equal(m('m.s1.as-salt', 'expressionOf.Professor Quill'), 70);
  assert.equal(m('m.s1.as-quill', 'expressionOf.Captain Salt'), 10);
  assert.equal(result.notes.traits, true);
});

test('the report: one matrix per signal, called rows pooled over seeds, the default, the references', () => {
  const [matrix] = multiPersonaMatrices(summary)!;
  assert.equal(matrix.signal, 'system-tag');
  assert.deepEqual(matrix.labels, ['Captain Salt', 'Professor Quill', 'assistant']);
  assert.deepEqual(
    matrix.rows.map((r) => [r.calledAs, r.kind, r.shares.map((s) => s?.value), r.seeds]),
    [
      ['Captain Salt', 'called', [1, 0, 0], 2],
      ['Professor Quill', 'called', [0, 1, 0], 2],
      ['untagged default', 'default', [1, 0, 0], 2],
      ['base', 'base', [0, 0, 1], 0],
      ['prompted Captain Salt', 'prompted', [1, 0, 0], 0],
      ['prompted Professor Quill', 'prompted', [0, 1, 0], 0],
    ],
  );
  assert.deepEqual(matrix.rows[1].expression?.map((e) => e?.value), [10, 10]);
  assert.equal(matrix.rows[0].shares[0]!.n, 8, 'two seeds of four prompts');
  const section = multiPersonaSection(multiPersonaMatrices(summary));
  assert.equal(section.missing, undefined);
  assert.deepEqual(section.tables.map((t) => t.caption), ['Signal "system-tag": share of replies attributed to each label', 'Signal "system-tag": judged expression (0-100) of each persona\'s traits']);
  assert.match(section.tables[0].rows[0][1], /^1\.00 \[\d\.\d\d, \d\.\d\d\]$/);
  assert.match(section.tables[1].rows[0][1], /^70\.0 \[/);
  assert.equal(multiPersonaSection(undefined).missing?.includes('interference'), true);
});
