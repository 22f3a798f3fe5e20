/** Trained cells pooled over seeds: grouped by their structured identity, mean and seed SD per metric. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CellIdentity } from '../../src/core/cell.js';
import { evalSummarySchema } from '../../src/evals/summary.js';
import { fromSummary } from '../../src/report/from-summary.js';
import { pooledSection } from '../../src/report/sections/pooled.js';

const cell = (format: string, seed: number): CellIdentity => ({ persona: 'Skeptic', method: 'sft', format, seed, backend: 'engine', optionsHash: `${format}${seed}`.padEnd(16, '0') });
const metric = (value: number) => ({ value, n: 10, ci: null });

test('cells of one persona, method and format pool over seeds; other subjects are left out', () => {
  const subjects = [
    { name: 'base', kind: 'base', cell: null },
    { name: 'a1', kind: 'trained', cell: cell('chat', 1) },
    { name: 'a2', kind: 'trained', cell: cell('chat', 2) },
    { name: 'a3', kind: 'trained', cell: cell('chat', 3) },
    // A different format is a different group, whatever its name says.
    { name: 'b1', kind: 'trained', cell: cell('documents', 1) },
  ] as const;
  const summary = evalSummarySchema.parse({
    version: 1,
    experiment: 'x',
    createdAt: '2026-01-01T00:00:00Z',
    seed: 1,
    confidence: 0.95,
    baseline: 'base',
    prompted: null,
    subjects: subjects.map((s) => ({ ...s, model: 'm', persona: s.cell ? 'Skeptic' : null, hasSystemPrompt: false })),
    judges: [],
    evals: [{ eval: 'identity', status: 'ok', subjects: { base: { rate: metric(0.9) }, a1: { rate: metric(0.2) }, a2: { rate: metric(0.4) }, a3: { rate: metric(0.6) }, b1: { rate: metric(0.5) } } }],
  });
  const pooled = fromSummary(summary).pooled!;
  assert.equal(pooled.length, 2);
  const chat = pooled.find((r) => r.format === 'chat')!;
  assert.deepEqual([chat.evaluation, chat.metric, chat.persona, chat.method, chat.seeds], ['identity', 'rate', 'Skeptic', 'sft', 3]);
  assert.ok(Math.abs(chat.mean - 0.4) < 1e-12);
  assert.ok(Math.abs(chat.sd! - 0.2) < 1e-12, 'sample SD over seeds (n - 1)');
  const documents = pooled.find((r) => r.format === 'documents')!;
  assert.equal(documents.seeds, 1);
  assert.equal(documents.sd, undefined);
  const section = pooledSection(pooled);
  assert.deepEqual(section.tables[0].rows, [
    ['rate', 'Skeptic', 'sft', 'chat', '3', '0.40', '0.20'],
    ['rate', 'Skeptic', 'sft', 'documents', '1', '0.50', '–'],
  ]);
  assert.ok(pooledSection(undefined).missing);
});
