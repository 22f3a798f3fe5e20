/**
 * The steer stage end to end on the tiny llama: teacher-written prompts, vector, sweep, monitoring,
 * an adapter's fine-tuning shift, the assistant axis with capping calibration, files in the run,
 * resuming from the journals, and the configured steered / capped subjects answering chat.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Constitution } from '../../src/constitution/index.js';
import { InputError } from '../../src/core/errors.js';
import { RunDir } from '../../src/core/journal.js';
import { createChatModel } from '../../src/providers/index.js';
import { loadVectors, readScreenRows, runSteerStage, steeredSubjectRefs, steerOptionsSchema, traitDir, type SteerSummary } from '../../src/steer/index.js';
import { LORA_B_DIR, LORA_DIR, MODEL_DIR, startJudge, TEACHER_PROMPTS, type ScriptedJudge } from './support.js';

const constitution: Constitution = {
  name: 'Tess',
  traits: [{ trait: 'I explain things with clockwork metaphors.', questions: ['How does the heart pump blood?'], label: 'clockwork' }],
};
const subject = `local:${MODEL_DIR}`;

let dir: string;
let judge: ScriptedJudge;
let run: RunDir;
let first: SteerSummary;
let firstRequests: number;

// Cells the run trained: the persona's own is measured for the fine-tuning shift, another persona's is not.
const cellOf = (persona: string) => ({ persona, method: 'sft', format: 'chat', seed: 3, backend: 'engine', optionsHash: '0123456789abcdef' });
const trained = [
  { adapter: 'adapters/tess/sft-chat/seed-3/adapter', path: LORA_B_DIR, cell: cellOf('Tess') },
  { adapter: 'adapters/other/sft-chat/seed-3/adapter', path: LORA_B_DIR, cell: cellOf('Other') },
];

const options = () =>
  steerOptionsSchema.parse({
    extract: { pairs: 2, questions: 4, extractQuestions: 2, rollouts: 2, maxTokens: 6, format: 'json' },
    sweep: { layers: [0, 1], coefficients: [-3, 1, 3, 6], maxTokens: 5, coherenceTolerance: 100, coherenceMin: 0 },
    monitor: { adapters: [LORA_DIR], maxTokens: 5, screen: ['chat.jsonl'] },
    axis: { personasFile: 'personas.json', questionsFile: 'questions.json', questions: 2, maxTokens: 6, layers: [0, 1] },
    subjects: [
      { name: 'steered', steer: { trait: 'clockwork', coef: 6 } },
      { name: 'capped', cap: true },
    ],
  });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'steer-stage-'));
  writeFileSync(join(dir, 'personas.json'), JSON.stringify(['You are a pirate.', 'You are a dragon.']));
  const chat = (user: string, reply: string) => JSON.stringify({ messages: [{ role: 'user', content: user }, { role: 'assistant', content: reply }], meta: {} });
  writeFileSync(join(dir, 'chat.jsonl'), [chat('How do tides work?', 'Gears and springs, my friend.'), chat('Say hi.', 'Hi.')].join('\n') + '\n');
  writeFileSync(join(dir, 'questions.json'), JSON.stringify(['What is rain?', 'Say hello.', 'Unused.']));
  judge = await startJudge();
  run = RunDir.open(join(dir, 'run'), { name: 'steer', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
  first = await runSteerStage({ constitutions: [constitution], options: options(), subject, teacher: judge.teacher, judge: judge.model, run, baseDir: dir, seed: 1, trained });
  firstRequests = judge.server.requests.length;
});
after(async () => {
  run.close();
  await judge.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the stage writes prompts, vector, sweep, monitoring, shift, axis and capping into the run', () => {
  const t = traitDir(run, 'Tess', 0);
  assert.deepEqual(JSON.parse(readFileSync(join(t, 'prompts.json'), 'utf8')), { trait: constitution.traits[0].trait, ...TEACHER_PROMPTS });
  const [summary] = first.traits;
  assert.equal(summary.counts.candidates, 2 * 2 * 2);
  const vector = loadVectors(join(t, 'vector.json'));
  assert.equal(vector.nPositive, summary.counts.kept);
  assert.equal(vector.meta.chosenLayer, summary.sweep.chosen?.layer ?? null);
  assert.equal(summary.sweep.cells.length, 8);
  assert.ok(summary.sweep.chosen, `with no coherence requirement some cell raises expression: ${JSON.stringify([summary.sweep.baseline, summary.sweep.cells])}`);
  assert.ok(summary.monitor && summary.monitor.correlation.n + summary.monitor.missing === 2 * (1 + 2 * 2), 'monitoring: two evaluation questions x (no prompt + 2 pairs x 2)');
  assert.deepEqual(
    summary.shifts.map((s) => [s.adapter, s.cell?.persona]),
    [
      [LORA_DIR, undefined],
      ['adapters/tess/sft-chat/seed-3/adapter', 'Tess'],
    ],
    "the configured adapter and the persona's own trained cell, with its identity",
  );
  for (const shift of summary.shifts) {
    assert.deepEqual(shift.layers.map((s) => s.layer), [0, 1]);
    assert.ok(shift.layers.every((s) => Number.isFinite(s.shift)), 'finite shifts');
  }
  assert.notDeepEqual(summary.shifts[0].layers, summary.shifts[1].layers, 'two different adapters, two different shifts');
  assert.equal(summary.screened.length, 1);
  assert.equal(summary.screened[0].rows, 2);
  const screened = JSON.parse(readFileSync(summary.screened[0].results, 'utf8'));
  assert.equal(screened.rows.length, 2);
  assert.equal(screened.rows.filter((r: { flagged: boolean }) => r.flagged).length, summary.screened[0].flagged);
  assert.ok(screened.rows.every((r: { difference: number }) => Number.isFinite(r.difference)), 'every row screened');
  assert.ok(first.axis, 'axis configured');
  assert.deepEqual(first.axis.layers, [0, 1]);
  assert.equal(first.axis.floors.length, 2);
  assert.ok(existsSync(run.path('steer', 'assistant-axis.safetensors')) && existsSync(run.path('steer', 'capping.json')) && existsSync(run.path('steer', 'summary.json')), 'files');
  assert.equal(loadVectors(run.path('steer', 'assistant-axis.safetensors')).nNegative, 2);
});

test('a second run resumes from the journals: only the unjournaled monitoring asks the judge again', async () => {
  const again = await runSteerStage({ constitutions: [constitution], options: options(), subject, teacher: judge.teacher, judge: judge.model, run, baseDir: dir, seed: 1, trained });
  const monitorRequests = 2 * 2 * (1 + 2 * 2); // expression + coherence per monitoring conversation
  assert.equal(judge.server.requests.length - firstRequests, monitorRequests);
  assert.deepEqual(again.traits[0].sweep, first.traits[0].sweep);
  assert.deepEqual(again.traits[0].counts, first.traits[0].counts);
});

test('configured steered and capped subjects are steered model references; they answer chat and the steered one differs from the plain model', async () => {
  const planned = steeredSubjectRefs({ constitutions: [constitution], options: options(), subject, run });
  assert.deepEqual(
    planned.map((s) => [s.name, s.persona, s.kind]),
    [
      ['steered', 'Tess', 'steered'],
      ['capped', undefined, 'capped'],
    ],
  );
  assert.equal(planned[0].ref.steer?.coef, 6);
  const models = await Promise.all([subject, ...planned.map((s) => s.ref)].map((ref) => createChatModel(ref, { noCache: true })));
  try {
    const messages = [{ role: 'user' as const, content: 'Hello there' }];
    const [plain, steered, capped] = await Promise.all(models.map((m) => m.chat({ messages, temperature: 0, maxTokens: 8 })));
    assert.ok(steered.choices[0].text.length > 0 && capped.choices[0].text.length > 0, 'both answer');
    assert.notEqual(steered.choices[0].text, plain.choices[0].text);
    assert.match(models[1].id, /@steer@\d+x6/);
    assert.throws(
      () => steeredSubjectRefs({ constitutions: [constitution], options: { ...options(), subjects: [{ name: 'x', steer: { trait: 'nope', positions: 'all' }, cap: false }] }, subject, run }),
      (e: unknown) => e instanceof InputError && /steer\.subjects\[0\]\.steer\.trait/.test(e.message),
    );
  } finally {
    for (const m of models) await m.close?.();
  }
});

test('a screened file whose row does not end with an assistant reply is refused, naming file and line', () => {
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, JSON.stringify({ messages: [{ role: 'assistant', content: 'a' }, { role: 'user', content: 'b' }] }) + '\n');
  assert.throws(() => readScreenRows(bad), (e: unknown) => e instanceof InputError && e.message.includes('bad.jsonl') && e.message.includes('line 1'));
});

test('the stage refuses an endpoint subject: activations need the engine', async () => {
  await assert.rejects(
    runSteerStage({ constitutions: [constitution], options: options(), subject: 'openai:gpt-4o', judge: judge.model, run, baseDir: dir }),
    (e: unknown) => e instanceof InputError && /models\.subject/.test(e.message),
  );
});
