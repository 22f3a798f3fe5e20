/** Multi-turn consistency: each metric per turn, one line per subject. */
import { estimateCells } from '../format.js';
import type { DriftPoint } from '../model.js';
import { absent, distinct, estimateColumns, table, type Section } from '../section.js';

export function driftSection(data: DriftPoint[] | undefined): Section {
  const id = 'drift';
  const title = 'Drift over turns';
  if (!data || data.length === 0) return absent(id, title, 'No multi-turn consistency results in the summary.');
  const subjects = distinct(data.map((p) => p.subject));
  const metrics = distinct(data.map((p) => p.metric));
  const values = data.map((p) => ({ subject: p.subject, metric: p.metric, turn: p.turn, ...p.score }));
  // The legend is given in full on both layers: merged layer legends otherwise take the band's opacity.
  const color = { field: 'subject', type: 'nominal', title: 'subject', sort: subjects, legend: { symbolType: 'stroke', symbolOpacity: 1, symbolStrokeWidth: 2.5, symbolSize: 220 } };
  const x = { field: 'turn', type: 'quantitative', title: 'turn', axis: { tickMinStep: 1, format: 'd' } };
  const spec = {
    data: { values },
    facet: { column: { field: 'metric', type: 'nominal', title: null, sort: metrics } },
    spec: {
      width: 220,
      height: 170,
      layer: [
        { mark: { type: 'area', opacity: 0.15 }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'score (0-1)', scale: { domain: [0, 1] } }, y2: { field: 'hi' }, color } },
        { mark: { type: 'line', point: true, strokeWidth: 1.8 }, encoding: { x, y: { field: 'value', type: 'quantitative' }, color } },
      ],
    },
  };
  const rows = subjects.flatMap((subject) =>
    metrics.flatMap((metric) => {
      const series = data.filter((p) => p.subject === subject && p.metric === metric).sort((a, b) => a.turn - b.turn);
      if (series.length === 0) return [];
      const first = series[0];
      const last = series[series.length - 1];
      return [[subject, metric, String(first.turn), ...estimateCells(first.score), String(last.turn), ...estimateCells(last.score)]];
    }),
  );
  return {
    id,
    title,
    description:
      'Prompt-to-line: share of the persona\'s lines that do not contradict its constitution; line-to-line: 1 − conflicting pairs / pairs with an earlier line; ' +
      'Q&A: share of multiple-choice questions about the persona answered correctly after each turn. Bands are 95% intervals.',
    plots: [{ caption: 'Consistency per turn (band = 95% interval).', spec }],
    tables: [
      table(
        'Consistency at the first and last turn',
        [['subject', false], ['metric', false], ['turn', true], ...estimateColumns('first'), ['turn', true], ...estimateColumns('last')],
        rows,
      ),
    ],
  };
}
