/**
 * Each subject is compared with the base and with its own persona's prompted baseline, paired on the
 * same sample keys: a two-persona table where the right paired differences are known.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { baselineSubjects, type Subject } from '../../src/evals/index.js';
import { assemble, MetricTable } from '../../src/evals/metrics.js';
import { evalOptionsSchema } from '../../src/evals/options.js';
import { cellOf, kindOf, promptedByPersona } from '../../src/evals/subjects.js';
import type { EvalContext } from '../../src/evals/types.js';
import type { ChatModel } from '../../src/providers/types.js';
import { pirateConstitution, professorConstitution } from './scripted.js';

const model = { id: 'scripted' } as ChatModel;
const constitutions = [pirateConstitution, professorConstitution];
const subjects: Subject[] = [
  ...baselineSubjects(model, constitutions),
  { name: 'captain-salt.sft-chat.seed-1', model, persona: pirateConstitution.name },
  { name: 'professor-quill.dpo.seed-1', model, persona: professorConstitution.name },
];
const prompted = promptedByPersona(subjects, constitutions.map((c) => c.name), 'prompted');
const ctx = { seed: 1, subjects, constitutions, options: evalOptionsSchema.parse({ bootstrap: 200 }), base: subjects[0], prompted: prompted.get(pirateConstitution.name), promptedByPersona: prompted } as unknown as EvalContext;

test('each persona has its own prompted baseline, and trained subjects carry their cell', () => {
  assert.deepEqual([...prompted].map(([p, s]) => [p, s.name]), [
    ['Captain Salt', 'prompted'],
    ['Professor Quill', 'prompted-professor-quill'],
  ]);
  assert.equal(kindOf(subjects[3], subjects[0], prompted), 'trained');
  assert.equal(kindOf(subjects[2], subjects[0], prompted), 'prompted');
  assert.deepEqual(cellOf(subjects[3]), { persona: 'Captain Salt', method: 'sft', format: 'chat', seed: 1, backend: 'unknown', optionsHash: '' });
  assert.equal(cellOf(subjects[4])!.format, null);
});

test('trained subjects are compared with the base and their own prompted subject, paired on keys', () => {
  const table = new MetricTable();
  // The base answers every persona's prompts; each persona's subjects answer only their own.
  for (const k of [0, 1, 2, 3]) {
    table.add('expression', 'base', `Captain Salt/${k}`, 10);
    table.add('expression', 'base', `Professor Quill/${k}`, 20);
    table.add('expression', 'prompted', `Captain Salt/${k}`, 50 + k);
    table.add('expression', 'prompted-professor-quill', `Professor Quill/${k}`, 30);
    table.add('expression', 'captain-salt.sft-chat.seed-1', `Captain Salt/${k}`, 60 + k);
    table.add('expression', 'professor-quill.dpo.seed-1', `Professor Quill/${k}`, 70);
  }
  const out = assemble(ctx, 'traitExpression', table);
  const vs = (subject: string) => Object.fromEntries(out[subject].expression.comparisons.map((c) => [c.against, [c.difference, c.paired, c.n]]));
  assert.deepEqual(vs('professor-quill.dpo.seed-1'), { base: [50, true, 4], 'prompted-professor-quill': [40, true, 4] }, 'never the first persona\'s prompted replies');
  assert.deepEqual(vs('captain-salt.sft-chat.seed-1'), { base: [51.5, true, 4], prompted: [10, true, 4] });
  assert.deepEqual(vs('prompted-professor-quill'), { base: [10, true, 4] }, 'a prompted baseline is compared with the base only');
  assert.deepEqual(out.base.expression.comparisons, []);
});

test('two sides without a shared key are not compared, and say so', () => {
  const table = new MetricTable();
  table.add('expression', 'base', 'Captain Salt/0', 10);
  table.add('expression', 'captain-salt.sft-chat.seed-1', 'Captain Salt/9', 60);
  const c = assemble(ctx, 'traitExpression', table)['captain-salt.sft-chat.seed-1'].expression.comparisons[0];
  assert.deepEqual([c.against, c.difference, c.paired, c.ci], ['base', null, false, null]);
  assert.match(c.unpaired!, /no sample scored on both sides/);
});
