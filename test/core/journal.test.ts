import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { Journal, RunDir } from '../../src/core/journal.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'pl-journal-'));

test('a torn last line is dropped and cut off, so the next append starts a clean line', () => {
  const path = join(tmp(), 'j.jsonl');
  writeFileSync(path, '{"key":"a","value":1}\n{"key":"b","value":2}\n{"key":"c","val');
  const journal = Journal.open<number>(path);
  assert.deepEqual(journal.keys(), ['a', 'b']);
  assert.equal(journal.dropped, 1);
  journal.append('c', 3);
  journal.close();
  assert.equal(readFileSync(path, 'utf8'), '{"key":"a","value":1}\n{"key":"b","value":2}\n{"key":"c","value":3}\n');
  assert.deepEqual(Journal.open<number>(path).entries(), [['a', 1], ['b', 2], ['c', 3]]);
});

test('lines that fail the schema are dropped and counted; keys are never appended twice', () => {
  const path = join(tmp(), 'j.jsonl');
  writeFileSync(path, '{"key":"a","value":{"n":1}}\n{"key":"b","value":{"n":"x"}}\n');
  const journal = Journal.open(path, z.object({ n: z.number() }));
  assert.deepEqual(journal.keys(), ['a']);
  assert.equal(journal.dropped, 1);
  journal.append('a', { n: 99 });
  journal.close();
  assert.equal(readFileSync(path, 'utf8').split('\n').filter((l) => l.includes('"a"')).length, 1);
  assert.throws(() => Journal.open(path, z.object({ n: z.number() })).append('z', { n: 'bad' } as never));
});

test('runAll skips finished items and returns every value in input order', async () => {
  const path = join(tmp(), 'j.jsonl');
  const first = Journal.open<number>(path);
  first.append('k2', 4);
  const calls: number[] = [];
  const values = await first.runAll([1, 2, 3], (i) => `k${i}`, async (i) => (calls.push(i), i * i));
  assert.deepEqual(values, [1, 4, 9]);
  assert.deepEqual(calls.sort(), [1, 3]);
  await assert.rejects(first.runAll([1, 1], () => 'same', async () => 0), /duplicate item keys/);
});

test('a run directory keeps its first manifest and records resumes', () => {
  const dir = tmp();
  const fresh = { name: 'r', personaLabVersion: '0.1.0', gitRevision: 'abc', seeds: [1, 2], config: { a: 1 } };
  const first = RunDir.open(dir, fresh);
  const second = RunDir.open(dir, { ...fresh, config: { a: 2 } });
  assert.deepEqual(second.manifest.config, { a: 1 });
  assert.equal(second.manifest.startedAt, first.manifest.startedAt);
  assert.equal(second.manifest.resumedAt?.length, 1);
});

test('SIGKILL mid-run loses only in-flight items; the resumed run finishes every item exactly once', async () => {
  const dir = tmp();
  const count = 300;
  const journalPath = join(dir, 'journals', 'items.jsonl');
  const worker = (): ReturnType<typeof spawn> =>
    spawn(process.execPath, ['--import', 'tsx', 'test/support/journal-worker.ts', dir, String(count)], { stdio: 'inherit' });

  const victim = worker();
  // Kill once a good share (but not all) of the items are journaled.
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      const lines = existsSync(journalPath) ? readFileSync(journalPath, 'utf8').split('\n').length - 1 : 0;
      if (lines >= 40) {
        clearInterval(timer);
        victim.kill('SIGKILL');
        resolve();
      }
    }, 5);
    victim.on('exit', () => (clearInterval(timer), reject(new Error('worker finished before it could be killed'))));
  });
  await new Promise((r) => victim.once('exit', r));
  assert.equal(victim.signalCode, 'SIGKILL');
  const finishedBeforeKill = Journal.open<unknown>(journalPath).keys();
  assert.ok(finishedBeforeKill.length > 0 && finishedBeforeKill.length < count, `killed after ${finishedBeforeKill.length} items`);
  // Simulate the worst case as well: a torn half-line at the end of the journal.
  appendFileSync(journalPath, '{"key":"item-torn","valu');

  const resumed = worker();
  const code = await new Promise((r) => resumed.once('exit', r));
  assert.equal(code, 0);

  const lines = readFileSync(journalPath, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { key: string; value: { square: number } });
  assert.equal(lines.length, count);
  assert.equal(new Set(lines.map((l) => l.key)).size, count);
  for (const { key, value } of lines) assert.equal(value.square, Number(key.slice(5)) ** 2);
  // The resumed run started none of the items that had finished before the kill.
  const resumedLog = readdirSync(dir).find((f) => f === `started-${resumed.pid}.log`);
  assert.ok(resumedLog);
  const redone = readFileSync(join(dir, resumedLog), 'utf8').split('\n').filter((k) => finishedBeforeKill.includes(k));
  assert.deepEqual(redone, []);
});
