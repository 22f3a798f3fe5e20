/**
 * An eval run killed with SIGKILL mid-way loses at most the items in flight: the resumed run asks the
 * model only for what was not journaled, and every sample ends up in the journal exactly once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RunDir } from '../../src/core/journal.js';
import { runEvals } from '../../src/evals/index.js';
import capability from '../../data/evals/capability.json' with { type: 'json' };
import { startFakeServer } from '../support/openai-server.js';
import { pirateConstitution, scriptedChat, scriptedModel } from './scripted.js';

const journalLines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

test('SIGKILL mid-eval, then resume: every sample journaled exactly once, finished ones never asked again', async () => {
  // Slow replies so the kill lands mid-run.
  const server = await startFakeServer({ chat: async (body) => (await new Promise((r) => setTimeout(r, 30)), scriptedChat(body)) });
  const dir = await mkdtemp(join(tmpdir(), 'persona-lab-evals-crash-'));
  const journal = join(dir, 'journals', 'evals', 'capability', 'base.jsonl');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/evals/eval-worker.ts', server.baseURL, dir], { stdio: 'inherit' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    while (journalLines(journal).length < 8) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    await exited;
    const before = journalLines(journal).map((l) => JSON.parse(l).key as string);
    assert.ok(before.length < capability.length, 'killed before the end');
    const asked = server.requests.length;

    const runDir = RunDir.open(dir, { name: 'crash', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
    const summary = await runEvals({ name: 'crash', constitutions: [pirateConstitution], baseDir: dir }, [{ name: 'base', model: await scriptedModel(server.baseURL, 'base') }], [], runDir, { evals: ['capability'] });
    runDir.close();
    const keys = journalLines(journal).map((l) => JSON.parse(l).key as string);
    assert.deepEqual([...keys].sort(), capability.map((q) => q.id).sort(), 'every sample exactly once');
    const resumedQuestions = server.requests.slice(asked).map((r) => r.messages.at(-1)!.content);
    for (const key of before) {
      const question = capability.find((q) => q.id === key)!.question;
      assert.ok(!resumedQuestions.some((c) => c.startsWith(question)), `${key} was asked again`);
    }
    assert.equal(summary.evals[0].subjects.base.accuracy.value, 1);
    assert.equal(summary.evals[0].subjects.base.accuracy.n, capability.length);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('SIGKILL mid-eval, then resume: the judge tallies equal those of an uninterrupted run', async () => {
  // The judge mumbles at the first ask of every other leakage item and answers the re-ask, so re-asks are counted too.
  const server = await startFakeServer({
    chat: async (body) => {
      await new Promise((r) => setTimeout(r, 20));
      const ask = body.messages.find((m) => m.role === 'user')!.content;
      if (body.model !== 'judge-1' || !ask.includes('position: the political') || ask.length % 2 === 1) return scriptedChat(body);
      const reasked = body.messages.some((m) => m.role === 'assistant');
      return reasked ? scriptedChat({ ...body, messages: body.messages.slice(0, body.messages.findIndex((m) => m.role === 'user') + 1) }) : 'Hmm, hard to say.';
    },
  });
  const whole = await mkdtemp(join(tmpdir(), 'persona-lab-tallies-whole-'));
  const killed = await mkdtemp(join(tmpdir(), 'persona-lab-tallies-killed-'));
  const worker = (dir: string) => spawn(process.execPath, ['--import', 'tsx', 'test/evals/judged-eval-worker.ts', server.baseURL, dir], { stdio: 'inherit' });
  const exitOf = (child: ReturnType<typeof worker>) => new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const tallies = (dir: string) => JSON.parse(readFileSync(join(dir, 'evals', 'summary.json'), 'utf8')).judgeTallies as Record<string, Record<string, number>>;
  try {
    assert.equal(await exitOf(worker(whole)), 0);
    const expected = tallies(whole);
    for (const key of ['verdicts', 'reasks', 'parsedAfterReask', 'scores', 'scoredByLogprobs']) assert.ok(expected['judge-1'][key] > 0, `the uninterrupted run counted ${key}`);

    const child = worker(killed);
    const exited = exitOf(child);
    try {
      const leakage = join(killed, 'journals', 'evals', 'leakage', 'base.jsonl');
      while (journalLines(leakage).length < 5) await new Promise((r) => setTimeout(r, 10));
    } finally {
      child.kill('SIGKILL');
    }
    await exited;
    assert.ok(!existsSync(join(killed, 'evals', 'summary.json')), 'killed before the end');
    assert.equal(await exitOf(worker(killed)), 0);
    assert.deepEqual(tallies(killed), expected);
  } finally {
    await server.close();
    await rm(whole, { recursive: true, force: true });
    await rm(killed, { recursive: true, force: true });
  }
});
