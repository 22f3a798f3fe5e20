/**
 * The trait-space report section from an eval summary with a planted structure: the summary's paired
 * shifts from the base go through the real mapping and analysis, and the section comes out in both the
 * HTML page (with its plot) and the Markdown summary; without enough subjects it is left out.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evalSummarySchema, type EvalSummary } from '../../src/evals/summary.js';
import { congruence } from '../../src/evals/trait-space.js';
import { fromSummary } from '../../src/report/from-summary.js';
import { renderReport, type ReportData } from '../../src/report/index.js';

const TRAITS = ['wit', 'warmth', 'candour', 'calm'];
/** Every subject moves along this direction (times its own amount), plus a little noise. */
const DIRECTION = [40, 30, -20, 10];

function summaryWith(subjects: number): EvalSummary {
  const names = Array.from({ length: subjects }, (_, i) => `persona-${i}`);
  const metric = (difference: number | null) => ({ value: 50, n: 12, ci: { low: 45, high: 55 }, comparisons: difference === null ? [] : [{ against: 'base', difference, ci: { low: difference - 4, high: difference + 4 }, n: 12, paired: true }] });
  const noise = (i: number, j: number) => (((i * 7 + j * 13) % 5) - 2) * 0.3;
  return evalSummarySchema.parse({
    version: 1,
    experiment: 'trait-space',
    createdAt: '2026-01-01T00:00:00Z',
    seed: 4,
    confidence: 0.95,
    baseline: 'base',
    prompted: null,
    subjects: [{ name: 'base', model: 'm', persona: null, hasSystemPrompt: false, kind: 'base' }, ...names.map((name) => ({ name, model: 'm', persona: 'P', hasSystemPrompt: true, kind: 'prompted' }))],
    judges: ['judge'],
    evals: [
      {
        eval: 'traitExpression',
        status: 'ok',
        subjects: {
          base: Object.fromEntries(TRAITS.map((t) => [`expression.P.${t}`, metric(null)])),
          ...Object.fromEntries(names.map((name, i) => [name, Object.fromEntries(TRAITS.map((t, j) => [`expression.P.${t}`, metric(((i % 4) - 1.5) * 0.5 * DIRECTION[j] + noise(i, j))]))])),
        },
      },
    ],
  });
}

function reportData(summary: EvalSummary): ReportData {
  return {
    title: 'research',
    run: { name: 'r', version: 'test', gitRevision: null, startedAt: '2026-01-01T00:00:00Z', resumedAt: [], seeds: [1] },
    journals: [],
    summaryNote: 'test',
    confidence: 0.95,
    evalStatus: [],
    ...fromSummary(summary),
  };
}

test('a planted one-direction shift comes out as one retained component along it, in both documents', async () => {
  const data = reportData(summaryWith(12));
  const space = data.traitSpace!;
  assert.equal(space.cells, 12);
  assert.deepEqual(space.traits, TRAITS.map((t) => `expression.P.${t}`));
  assert.equal(space.dimensions, 1);
  assert.ok(Math.abs(congruence(space.components[0].loadings.map((l) => l.value), DIRECTION)) > 0.99);
  assert.ok(space.components[0].stability.cells!.low > 0.95);
  const { html, markdown } = await renderReport(data);
  assert.match(markdown, /Which traits move together/);
  assert.match(markdown, /1 component stands out/);
  assert.match(markdown, /\| PC1 \|/);
  assert.match(html, /Which traits move together/);
  assert.match(html, /Subjects on the first two components/);
  assert.ok((html.match(/<svg/g) ?? []).length >= 1);
});

test('the section is left out under three subjects, and no reverse Turing section appears without its eval', async () => {
  const data = reportData(summaryWith(2));
  assert.equal(data.traitSpace, undefined);
  assert.equal(data.reverseTuring, undefined);
  const { markdown } = await renderReport(data);
  assert.doesNotMatch(markdown, /Which traits move together|Reverse Turing/);
});
