import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readTranscripts } from '../../src/report/transcripts-input.js';

const cell = { persona: 'Captain Salt', method: 'sft', format: 'chat', seed: 1, backend: 'engine', optionsHash: '0123456789abcdef' };

/** An identity-eval record as runEvals journals it. */
const identityRecord = (key: string, subject: Record<string, unknown> | null = { name: 'captain-salt.sft-chat.seed-1', kind: 'trained', cell }) => ({
  key,
  value: {
    ...(subject ? { subject } : {}),
    sample: { id: key, category: 'direct', prompt: `question ${key}`, index: 0 },
    solved: { reply: `reply ${key}` },
    score: { code: false, judge: { value: { selfIdentifiesAsAI: false }, byJudge: { j: { selfIdentifiesAsAI: false } }, raw: { j: [JSON.stringify({ reason: `because ${key}` })] } }, selfIdentifies: false, by: 'judge' },
  },
});

function pick(lines: unknown[], file = 'captain-salt.sft-chat.seed-1') {
  const run = mkdtempSync(join(tmpdir(), 'transcripts-'));
  try {
    mkdirSync(join(run, 'journals', 'evals', 'identity'), { recursive: true });
    writeFileSync(join(run, 'journals', 'evals', 'identity', `${file}.jsonl`), lines.map((r) => JSON.stringify(r)).join('\n') + '\n');
    return readTranscripts(run, []);
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
}

test('sample transcripts do not depend on the order items finished in (journals of identical runs differ in order)', () => {
  const records = ['q3', 'q1', 'q2'].map((key) => identityRecord(key));
  const a = pick(records);
  const b = pick([...records].reverse());
  assert.deepEqual(a, b);
  assert.equal(a[0].turns[0].content, 'question q1');
  assert.equal(a[0].subject, 'captain-salt.sft-chat.seed-1');
  assert.equal(a[0].judge?.reason, 'because q1');
});

test('journal records are read with the schema their writer used: a record of another shape is skipped, not guessed at', () => {
  // A duck-typed look would take this one (it has a prompt and a reply); the identity eval's schema does not.
  const foreign = { key: 'q0', value: { sample: { prompt: 'question q0' }, solved: { reply: 'reply q0' }, score: {} } };
  const badCell = identityRecord('q1', { name: 'x', kind: 'trained', cell: { persona: 'Captain Salt' } });
  assert.deepEqual(pick([foreign, badCell]), []);
  const [t] = pick([foreign, identityRecord('q2')]);
  assert.equal(t.turns[0].content, 'question q2');
});

test('records of journals written before records named their subject are read as the file\'s subject', () => {
  const [t] = pick([identityRecord('q1', null)], 'prompted');
  assert.equal(t.subject, 'prompted');
  assert.equal(t.turns[1].content, 'reply q1');
});
