/**
 * SIGKILL during `persona-lab run` (a real child process), twice: once while the data stage is
 * writing its journals, once while the evals are; then a rerun finishes. Every journal holds every
 * key exactly once, the evals covered every held-out probe, and the report is written.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { evalSummarySchema } from '../../src/evals/index.js';
import { runCli } from '../support/cli.js';
import { startFakeServer, type FakeServer } from '../support/openai-server.js';
import { SMALL_EVAL, SMALL_GENERATE, journalKeys, killRunWhen, worldChat, writeProject } from './run-support.js';

let server: FakeServer;
before(async () => {
  // A little latency per reply, so the kill lands with calls in flight.
  server = await startFakeServer({ chat: async (body) => (await sleep(15), worldChat(body)) });
});
after(async () => {
  await server.close();
});

/** Kills `run` with SIGKILL as soon as some journal under `prefix` holds `lines` items. */
const killWhen = (file: string, runDir: string, prefix: string, lines: number) =>
  killRunWhen(
    file,
    () => [...journalKeys(runDir, true)].some(([path, keys]) => path.includes(join('journals', prefix)) && keys.length >= lines),
    `any ${prefix} journal reached ${lines} items`,
  );

test('run killed with SIGKILL during generate and during eval resumes: every item once, report written', async () => {
  const project = writeProject({
    name: 'crash',
    models: { subject: `openai:base@${server.baseURL}`, teacher: `openai:teacher@${server.baseURL}`, judge: `openai:judge-1@${server.baseURL}` },
    seeds: [7],
    generate: { ...SMALL_GENERATE, datasets: ['prompts', 'chat', 'introspective', 'documents', 'probes'] },
    run: { methods: [] },
    eval: SMALL_EVAL,
  });
  try {
    await killWhen(project.file, project.runDir, 'generate', 3);
    assert.ok(!existsSync(join(project.runDir, 'evals', 'summary.json')));
    await killWhen(project.file, project.runDir, 'evals', 2);
    assert.ok(!existsSync(join(project.runDir, 'report.html')));

    const last = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(last.code, 0, last.stderr);
    assert.ok(existsSync(join(project.runDir, 'report.html')) && existsSync(join(project.runDir, 'report.md')));
    for (const [path, keys] of journalKeys(project.runDir)) assert.equal(new Set(keys).size, keys.length, `every key once in ${path}`);
    const summary = evalSummarySchema.parse(JSON.parse(readFileSync(join(project.runDir, 'evals', 'summary.json'), 'utf8')));
    for (const e of summary.evals) assert.equal(e.status, 'ok', `${e.eval}: ${e.reason}`);
    const probes = JSON.parse(readFileSync(join(project.runDir, 'datasets', 'probes.heldout.json'), 'utf8')) as unknown[];
    const identity = summary.evals.find((e) => e.eval === 'identity')!;
    for (const subject of ['base', 'prompted']) assert.equal(identity.subjects[subject].selfIdentifiesAsAI.n, probes.length, `${subject}: every held-out probe scored once`);
    const manifest = JSON.parse(readFileSync(join(project.runDir, 'manifest.json'), 'utf8')) as { resumedAt?: string[] };
    assert.equal(manifest.resumedAt?.length, 2, 'two resumes recorded');
  } finally {
    project.remove();
  }
});
