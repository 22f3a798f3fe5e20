/**
 * The dashboard's reading of runs without a browser: pooling over seeds, the two-run difference,
 * paging through a journal while streaming it (torn last line skipped), thinning a long step log, and
 * a bad runs directory refused with exit 2.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Journal, RunDir } from '../../src/core/journal.js';
import type { Metric } from '../../src/evals/summary.js';
import { compareRuns, groupsOf, headlineOfRun, metricTables, pooledOf } from '../../src/view/headline.js';
import { findSamples, listRun, readCurve, readSummary, runDirOf, subjectsOf, trainedCells } from '../../src/view/runs.js';
import { runCli } from '../support/cli.js';
import { makeFinishedRun } from './fixture.js';

const m = (value: number | null, n = 10, ci: Metric['ci'] = value === null ? null : { low: value - 0.1, high: value + 0.1 }): Metric => ({ value, n, ci, comparisons: [], missing: 0 });

describe('view: reading runs', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'persona-lab-view-data-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('pools a metric over seeds: one seed keeps its interval, more get mean, seed SD and a t interval', () => {
    assert.deepEqual(pooledOf([m(0.5)]), { value: 0.5, ci: { low: 0.4, high: 0.6 }, n: 10, seeds: 1, seedSd: null });
    const two = pooledOf([m(0.4), m(0.6), m(null, 0)]);
    assert.equal(two.seeds, 2);
    assert.equal(two.n, 20);
    assert.ok(Math.abs(two.value! - 0.5) < 1e-12);
    assert.ok(Math.abs(two.seedSd! - Math.SQRT2 * 0.1) < 1e-12);
    // t(0.975, 1 df) * sd / sqrt(2) = 12.706 * 0.1
    assert.ok(Math.abs(two.ci!.high - (0.5 + 12.706 * 0.1)) < 1e-9);
    assert.deepEqual(pooledOf([m(null, 0)]), { value: null, ci: null, n: 0, seeds: 0, seedSd: null });
  });

  it('groups trained subjects by cell (from the summary, else the train journal) and compares two runs', async () => {
    const a = makeFinishedRun(join(dir, 'runs'), 'a');
    makeFinishedRun(join(dir, 'runs'), 'b', 0.1);
    const load = async (name: string) => {
      const runDir = runDirOf(join(dir, 'runs'), name)!;
      const summary = readSummary(runDir)!;
      const groups = groupsOf(subjectsOf(summary, await trainedCells(runDir)));
      return { groups, tables: metricTables(summary, groups) };
    };
    const ra = await load('a');
    assert.deepEqual(
      ra.groups.map((g) => [g.label, g.kind, g.subjects.length]),
      [
        ['base', 'base', 1],
        ['prompted', 'prompted', 1],
        ['sailor.steered', 'steered', 1],
        ['sailor · dpo', 'trained', 1],
        ['sailor · sft · chat', 'trained', 2],
      ],
    );
    assert.equal(a.trainedSubject, 'sailor.sft-chat.seed-1');
    const rows = compareRuns(ra, await load('b'));
    const sft = rows.find((r) => r.eval === 'traitExpression' && r.group === 'sailor · sft · chat')!;
    assert.ok(Math.abs(sft.difference! - 0.1) < 1e-9);
    assert.ok(sft.ci!.low < 0.1 && sft.ci!.high > 0.1);
    const base = rows.find((r) => r.eval === 'traitExpression' && r.group === 'base')!;
    assert.equal(base.difference, 0);

    // The terminal headline `run` prints: the same pooled values, one row per group.
    const runDir = runDirOf(join(dir, 'runs'), 'a')!;
    const text = await headlineOfRun(runDir, readSummary(runDir)!);
    const sftLine = text.split('\n').find((l) => l.startsWith('sailor · sft · chat'))!;
    assert.match(sftLine, /^sailor · sft · chat\s+2\s+0\.660 \[-?\d\.\d{3}, \d\.\d{3}\] n=6/);
    assert.match(text.split('\n')[0], /traitExpression expression/);
  });

  it("a trained cell's pooled estimate comes from the summary's two-level bootstrap when the eval stage wrote one", async () => {
    makeFinishedRun(join(dir, 'runs'), 'pooled');
    const runDir = runDirOf(join(dir, 'runs'), 'pooled')!;
    const summary = readSummary(runDir)!;
    const groups = groupsOf(subjectsOf(summary, await trainedCells(runDir)));
    const sft = groups.find((g) => g.label === 'sailor · sft · chat')!;
    const result = summary.evals.find((r) => r.eval === 'traitExpression')!;
    const before = metricTables(summary, groups).find((t) => t.eval === 'traitExpression' && t.metric === 'expression')!.rows.find((r) => r.group === sft.id)!.pooled;
    result.pooled = [{ persona: sft.persona!, method: sft.method!, format: sft.format, metric: 'expression', subjects: sft.subjects, value: 0.42, betweenSeedSd: 0.05, ci: { low: 0.3, high: 0.54 }, seeds: 2, n: 6, perSeed: [], comparisons: [] }];
    const after = metricTables(summary, groups).find((t) => t.eval === 'traitExpression' && t.metric === 'expression')!.rows.find((r) => r.group === sft.id)!.pooled;
    assert.notEqual(before.value, 0.42);
    assert.deepEqual(after, { value: 0.42, ci: { low: 0.3, high: 0.54 }, n: 6, seeds: 2, seedSd: 0.05 });
  });

  it('pages through a journal while streaming it, skipping a torn last line', async () => {
    const runDir = join(dir, 'runs', 'a');
    const journal = Journal.open(join(runDir, 'journals', 'evals', 'capability', 'big.jsonl'));
    const subject = { name: 'big', kind: 'other', cell: null };
    for (let i = 0; i < 1000; i++) journal.append(`k${i}`, { subject, sample: { id: `k${i}`, kind: 'facts', question: `prompt ${i}`, answer: 'x' }, solved: { reply: i % 2 ? 'odd' : 'even' }, score: { correct: false } });
    journal.close();
    appendFileSync(join(runDir, 'journals', 'evals', 'capability', 'big.jsonl'), '{"key": "torn", "value": {"sam');
    const page = await findSamples(runDir, [], { eval: 'capability', q: 'odd' }, 100, 20);
    assert.equal(page.total, 500);
    assert.equal(page.items.length, 20);
    assert.equal(page.items[0].key, 'k201');
    assert.equal(page.items[0].prompt, 'prompt 201');
  });

  it('thins a long step log evenly, keeping the first step', async () => {
    const runDir = join(dir, 'runs', 'a');
    const log = Journal.open(join(runDir, 'adapters', 'sailor', 'grpo', 'seed-1', 'train.jsonl'));
    for (let step = 1; step <= 5000; step++) log.append(String(step), { step, loss: 1 / step });
    log.close();
    const curve = (await readCurve(runDir, 'sailor/grpo/seed-1'))!;
    assert.equal(curve.steps, 5000);
    assert.ok(curve.points.length <= 2000 && curve.points.length >= 1000, `${curve.points.length} points`);
    assert.equal(curve.points[0].step, 1);
    assert.equal(await readCurve(runDir, '../../../etc'), undefined);
  });

  it('tells a finished run from one writing now and one that stopped', () => {
    const runs = join(dir, 'status');
    makeFinishedRun(runs, 'done');
    RunDir.open(join(runs, 'busy'), { name: 'busy', personaLabVersion: '0', gitRevision: null, seeds: [1], config: {} }).close();
    RunDir.open(join(runs, 'idle'), { name: 'idle', personaLabVersion: '0', gitRevision: null, seeds: [1], config: {} }).close();
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const p of [join(runs, 'idle', 'manifest.json'), join(runs, 'idle')]) utimesSync(p, hourAgo, hourAgo);
    assert.equal(listRun(runs, 'done')?.status, 'finished');
    assert.equal(listRun(runs, 'busy')?.status, 'running');
    assert.equal(listRun(runs, 'idle')?.status, 'stopped');
    assert.equal(listRun(runs, '..'), undefined);
  });

  it('refuses a runs directory that is not there: one line, exit 2', async () => {
    const result = await runCli(['view', join(dir, 'missing'), '--port', '0']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /missing.*runs directory/);
  });
});
