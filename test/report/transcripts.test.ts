import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readTranscripts } from '../../src/report/transcripts-input.js';

test('sample transcripts do not depend on the order items finished in (journals of identical runs differ in order)', () => {
  const records = ['q3', 'q1', 'q2'].map((key) => ({
    key,
    value: { sample: { prompt: `question ${key}` }, solved: { reply: `reply ${key}` }, score: { judge: { value: 1, raw: { j: [JSON.stringify({ reason: `because ${key}` })] } } } },
  }));
  const pick = (order: typeof records) => {
    const run = mkdtempSync(join(tmpdir(), 'transcripts-'));
    try {
      mkdirSync(join(run, 'journals', 'evals', 'identity'), { recursive: true });
      writeFileSync(join(run, 'journals', 'evals', 'identity', 'trained.jsonl'), order.map((r) => JSON.stringify(r)).join('\n') + '\n');
      return readTranscripts(run, []);
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  };
  const a = pick(records);
  const b = pick([...records].reverse());
  assert.deepEqual(a, b);
  assert.equal(a[0].turns[0].content, 'question q1');
});
