/**
 * The trait-space report section from an eval summary with a planted structure: the summary's paired
 * shifts from the base go through the real mapping and analysis, and the section comes out in both the
 * HTML page (with its plot) and the Markdown summary; without enough subjects it is left out. With a
 * steer stage's persona vectors and assistant axis in the run, the first component is compared with
 * the axis through the vectors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evalSummarySchema, type EvalSummary } from '../../src/evals/summary.js';
import { congruence } from '../../src/evals/trait-space.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { steerSummarySchema } from '../../src/steer/artifacts.js';
import { saveVectors } from '../../src/steer/vectors.js';
import { fromSummary } from '../../src/report/from-summary.js';
import { readRun, renderReport, type ReportData } from '../../src/report/index.js';

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

test('with the steer stage\'s vectors and axis in the run, the first component is compared with the assistant axis', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'persona-lab-trait-axis-'));
  try {
    const hidden = 6;
    const layer = 2;
    // Trait j's persona vector: 3 x the j-th unit vector (any length: the alignment uses unit vectors).
    const traitVector = (j: number) => Array.from({ length: hidden }, (_, d) => (d === j ? 3 : 0));
    const norm = Math.hypot(...DIRECTION);
    const write = (file: string, kind: 'persona' | 'assistantAxis', trait: string, v: number[]) =>
      saveVectors(join(dir, file), { kind, trait, modelId: 'm', layers: [1, layer], vectors: [new Float32Array(hidden), Float32Array.from(v)], nPositive: 1, nNegative: 1, meta: {} });
    mkdirSync(join(dir, 'steer'), { recursive: true });
    TRAITS.forEach((t, j) => write(`steer/t${j}.json`, 'persona', t, traitVector(j)));
    // The axis built from the planted direction through the trait vectors, plus a part off their span.
    write('steer/axis.json', 'assistantAxis', 'assistant', [...DIRECTION.map((x) => x / norm), 0, 0]);
    const traitEntry = (j: number) => ({ persona: 'P', traitIndex: j, trait: TRAITS[j], vectorFile: `steer/t${j}.json`, counts: {}, sweep: { baseline: { expression: null, coherence: null, n: 0 }, cells: [], chosen: null, coherenceFloor: null, halves: { selection: [], report: [] }, held: { baseline: { expression: null, coherence: null, n: 0 }, cells: [], chosen: null } }, monitor: null, shifts: [], screened: [] });
    const steer = steerSummarySchema.parse({ model: 'm', traits: TRAITS.map((_, j) => traitEntry(j)), axis: { layers: [layer], axisLayer: layer, floors: [0], observed: 10, percentile: 25, file: 'steer/axis.json' } });
    writeFileSync(join(dir, 'steer', 'summary.json'), JSON.stringify(steer));
    const constitution = { name: 'P', traits: TRAITS.map((label) => ({ trait: `I show ${label}.`, label, questions: ['?'] })) };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ name: 'r', personaLabVersion: 'test', gitRevision: null, startedAt: '2026-01-01T00:00:00Z', seeds: [1], config: { constitutions: [{ path: 'p.yaml', constitution }] } }));
    mkdirSync(join(dir, 'evals'));
    writeFileSync(join(dir, 'evals', 'summary.json'), JSON.stringify(summaryWith(12)));
    const data = readRun(dir);
    const axis = data.traitSpace!.axis!;
    assert.equal(axis.layer, layer);
    assert.equal(axis.traits, 4);
    assert.ok(axis.cosine > 0.99, `cosine ${axis.cosine}`);
    assert.ok(axis.randomBaseline < 0.9);
    assert.match((await renderReport(data)).markdown, /cosine.{0,3} with the assistant axis is 1\.00/);
    // A trait without a vector: the two spaces are not comparable, and nothing is claimed.
    writeFileSync(join(dir, 'steer', 'summary.json'), JSON.stringify({ ...steer, traits: steer.traits.slice(1) }));
    assert.equal(readRun(dir).traitSpace!.axis, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
