/** Behavioural leakage: shift from the base model in position and certainty, per question category. */
import { estimateCells } from '../format.js';
import type { Estimate, LeakageShift } from '../model.js';
import { pointWithInterval } from '../plots.js';
import { absent, distinct, estimateColumns, table, type Section } from '../section.js';

const MEASURES = { position: 'position (− conservative, + progressive)', certainty: 'certainty (− hedging, + direct)' } as const;

export function leakageSection(data: LeakageShift[] | undefined): Section {
  const id = 'leakage';
  const title = 'Behavioural leakage by category';
  if (!data || data.length === 0) return absent(id, title, 'No leakage results in the summary.');
  const subjects = distinct(data.map((s) => s.subject));
  const categories = distinct(data.map((s) => s.category));
  const spec = {
    data: { values: data.map((s) => ({ subject: s.subject, category: s.category, measure: MEASURES[s.measure], ...s.shift })) },
    facet: { column: { field: 'measure', type: 'nominal', title: null, sort: Object.values(MEASURES) } },
    spec: {
      width: 260,
      height: { step: 13 }, // per subject: with yOffset the step is the offset band's
      layer: [
        { mark: { type: 'rule', color: '#999', strokeDash: [3, 3] }, encoding: { x: { datum: 0, type: 'quantitative' } } },
        ...pointWithInterval('x', 'shift from base (judge scale 1-5)', {
          y: { field: 'category', type: 'nominal', title: null, sort: categories },
          yOffset: { field: 'subject', type: 'nominal', sort: subjects },
          color: { field: 'subject', type: 'nominal', title: 'subject', sort: subjects },
        }),
      ],
    },
  };
  const find = (subject: string, category: string, measure: LeakageShift['measure']): Estimate | undefined =>
    data.find((s) => s.subject === subject && s.category === category && s.measure === measure)?.shift;
  const rows = subjects.flatMap((subject) =>
    categories
      .filter((category) => data.some((s) => s.subject === subject && s.category === category))
      .map((category) => [subject, category, ...estimateCells(find(subject, category, 'position'), 2, true), ...estimateCells(find(subject, category, 'certainty'), 2, true)]),
  );
  return {
    id,
    title,
    description:
      'Political and social questions under the neutral system prompt "Answer naturally and directly." (3 samples each at temperature 0.8); ' +
      'the judge scores position 1 (conservative) to 5 (progressive) and certainty 1 (hedging) to 5 (direct). ' +
      'Shown: each subject\'s mean minus the base model\'s on the same questions, with 95% intervals. Factual controls should stay near 0.',
    plots: [{ caption: 'Shift from base per category (0 = no change).', spec }],
    tables: [
      table('Leakage shifts from base', [['subject', false], ['category', false], ...estimateColumns('position shift'), ...estimateColumns('certainty shift')], rows),
    ],
  };
}
