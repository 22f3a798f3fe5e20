/** The report's steering sections from a steer summary: the chosen cell with its report-half interval, "no steering effect", monitoring, the fine-tuning shift per trained cell, and an old summary left out with a note. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RunDir } from '../../src/core/journal.js';
import type { SteeringReport } from '../../src/report/model.js';
import { readRun, renderReport } from '../../src/report/index.js';
import { steeringMonitorSection, steeringShiftSection, steeringSweepSection } from '../../src/report/sections/steering.js';

const stats = (expression: number) => ({ expression, coherence: 80, n: 6 });
const cell = (layer: number, coef: number, expression: number) => ({ layer, coef, ...stats(expression), movement: expression - 40, admissible: expression > 40 });

function trait(traitIndex: number, cells: ReturnType<typeof cell>[]): SteeringReport['traits'][number] {
  const best = cells.filter((c) => c.admissible).sort((a, b) => b.movement - a.movement)[0];
  return {
    persona: 'Skeptic',
    traitIndex,
    trait: 'I am witty.',
    vectorFile: 'v.safetensors',
    counts: { candidates: 4, kept: 4, positiveTooWeak: 0, negativeTooStrong: 0, incoherent: 0, missingScore: 0, emptyReply: 0 },
    sweep: {
      baseline: stats(40),
      cells,
      chosen: best ? { layer: best.layer, coef: best.coef, movement: best.movement, coherence: 80 } : null,
      coherenceFloor: 70,
      halves: { selection: ['a', 'c'], report: ['b', 'd'] },
      held: {
        baseline: stats(41),
        cells: cells.map(({ layer, coef, expression }) => ({ layer, coef, ...stats(expression - 5) })),
        chosen: best ? { layer: best.layer, coef: best.coef, expression: 46, baseline: 41, movement: 5, low: -1.5, high: 11.5, n: 6, questions: 2, confidence: 0.95 } : null,
      },
    },
    monitor: best ? { layer: best.layer, correlation: { r: 0.62, n: 30, low: 0.33, high: 0.8, confidence: 0.95 }, missing: 1 } : null,
    shifts: [{ adapter: 'adapters/skeptic/sft-chat/seed-1/adapter', cell: { persona: 'Skeptic', method: 'sft', format: 'chat', seed: 1, backend: 'engine', optionsHash: '0123456789abcdef' }, layers: [1, 2].map((layer) => ({ layer, shift: layer * 0.25, relative: layer * 0.1 })) }],
    screened: [],
  };
}

const data: SteeringReport = { model: 'tiny', traits: [trait(0, [cell(1, 2, 45), cell(2, 2, 52), cell(2, 4, 30)]), trait(1, [cell(1, 2, 38), cell(2, 2, 40)])], axis: null };

test('the sweep section: the chosen cell on both halves with its interval, or "no steering effect"', () => {
  const s = steeringSweepSection(data);
  assert.equal(s.missing, undefined);
  assert.equal(s.plots.length, 2, 'one heatmap per trait');
  assert.deepEqual(s.tables[0].rows, [
    ['Skeptic · t0', 'layer 2 × 2.00', '+12.0', '+5.0', '[−1.50, 11.50]', '6', '2'],
    ['Skeptic · t1', 'no steering effect', '–', '–', '–', '–', '–'],
  ]);
  assert.equal(s.tables[1].rows.length, 5, 'every cell');
  assert.deepEqual(s.tables[1].rows[2].slice(5), ['−10.0', 'no', '25.0', '6']);
});

test('monitoring and fine-tuning shift sections', () => {
  assert.deepEqual(steeringMonitorSection(data).tables[0].rows, [['Skeptic · t0', '2', '0.62', '[0.33, 0.80]', '30', '1']]);
  // the shift at the chosen layer (2) for trait 0; trait 1 chose none: the layer that moved most
  assert.deepEqual(steeringShiftSection(data).tables[0].rows, [
    ['Skeptic · t0', 'sft/chat seed 1', '2', '+0.500', '+0.200'],
    ['Skeptic · t1', 'sft/chat seed 1', '2', '+0.500', '+0.200'],
  ]);
  for (const section of [steeringSweepSection(undefined), steeringMonitorSection(undefined), steeringShiftSection(undefined)]) assert.match(section.missing ?? '', /did not steer/);
});

test('a run whose steer summary is in an older shape still gets its report, the sections say why they are left out', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'report-steer-'));
  try {
    const run = RunDir.open(dir, { name: 'old', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
    run.close();
    const old = { ...data, traits: data.traits.map((t) => ({ ...t, sweep: { baseline: t.sweep.baseline, cells: t.sweep.cells, chosen: t.sweep.chosen, coherenceFloor: 70 } })) };
    mkdirSync(run.path('steer'));
    writeFileSync(run.path('steer', 'summary.json'), JSON.stringify(old));
    const report = readRun(dir);
    assert.equal(report.steering, undefined);
    const { markdown } = await renderReport(report);
    assert.match(markdown, /_Steering sweep: omitted\. steer\/summary\.json is not in the current shape/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
