/** Which traits move together: principal components of every subject's trait shifts from the base, with their stability. */
import { interval, num, signed } from '../format.js';
import type { TraitSpaceData } from '../research-input.js';
import { absent, table, type Section } from '../section.js';

const spreadCells = (s: { value: number; low: number; high: number } | null) => (s ? [num(s.value), interval({ lo: s.low, hi: s.high })] : ['–', '–']);

export function traitSpaceSection(data: TraitSpaceData | undefined): Section {
  const id = 'trait-space';
  const title = 'Which traits move together';
  if (!data) return absent(id, title, 'No trait-space analysis: it needs trait expression (or IPIP) shifts from the base for at least 3 subjects on at least 2 shared traits.');
  const pcs = data.components;
  const spec = {
    data: { values: data.scores.filter((s) => s.pc2 !== null).map((s) => ({ cell: s.cell, pc1: s.pc1, pc2: s.pc2 })) },
    width: 320,
    height: 260,
    layer: [
      { mark: { type: 'point', filled: true, size: 60 }, encoding: { x: { field: 'pc1', type: 'quantitative', title: `PC1 (${num(pcs[0].explained.value * 100, 0)}%)` }, y: { field: 'pc2', type: 'quantitative', title: `PC2 (${num((pcs[1]?.explained.value ?? NaN) * 100, 0)}%)` } } },
      { mark: { type: 'text', align: 'left', dx: 6, fontSize: 10 }, encoding: { x: { field: 'pc1', type: 'quantitative' }, y: { field: 'pc2', type: 'quantitative' }, text: { field: 'cell' } } },
    ],
  };
  const answer =
    data.dimensions === 0
      ? 'No component stands out from independent traits (parallel analysis): no low-dimensional persona space at this size.'
      : `${data.dimensions} component${data.dimensions > 1 ? 's' : ''} stand${data.dimensions > 1 ? '' : 's'} out from independent traits (parallel analysis), explaining ${num(pcs.slice(0, data.dimensions).reduce((s, c) => s + c.explained.value, 0) * 100, 0)}% of the shifts.`;
  const axis = data.axis
    ? ` Through the persona vectors of its ${data.axis.traits} trait-expression columns (layer ${data.axis.layer}), the first component's |cosine| with the assistant axis is ${num(data.axis.cosine)} (random loadings through the same vectors: ${num(data.axis.randomBaseline)}).`
    : '';
  return {
    id,
    title,
    description:
      `Rows: ${data.cells} subjects (every subject but the base; seeds of a cell are separate rows). Columns: ${data.traits.length} traits, each the paired shift from the base ` +
      '(trait expression on 0-100, IPIP domains on 1-5) divided by its scale\'s range. ' +
      `Principal components of the ${data.centred ? 'centred ' : ''}rows. Explained-variance intervals: 95% percentile over ${data.resamples} resamples of the subjects. ` +
      'Stability: |Tucker congruence| of the resampled loadings with the full-sample ones, resampling subjects and redrawing every shift from its own interval (≥ 0.95 the same component, < 0.85 not stable). ' +
      `The null share is the 95th percentile under independent permutation of each trait (parallel analysis). ${answer}${axis}` +
      (data.droppedColumns.length ? ` Left out (no paired shift from the base for every subject): ${data.droppedColumns.join(', ')}.` : '') +
      (data.droppedColumns.some((c) => c.startsWith('expression.')) ? ' To measure every subject on every persona\'s traits, set eval.traitExpression.traits: all.' : '') +
      (data.seImputed ? ` ${data.seImputed} shifts without an interval (too few samples) were redrawn with their trait's median standard error.` : '') +
      (data.components.every((c) => c.stability.measurement === null) ? ' No measurement stability: some trait has no shift with an interval.' : '') +
      (data.cells < 10 ? ' Under 10 subjects, read the stability and intervals as rough.' : ''),
    plots: pcs.length > 1 ? [{ caption: 'Subjects on the first two components.', spec }] : [],
    tables: [
      table(
        'Components',
        [['component', false], ['explained', true], ['95% CI', true], ['null (95th pct.)', true], ['retained', false], ['stability (subjects)', true], ['95% CI', true], ['stability (measurement)', true], ['95% CI', true]],
        pcs.map((c) => [`PC${c.index}`, num(c.explained.value), interval({ lo: c.explained.low, hi: c.explained.high }), num(c.nullExplained), c.retained ? 'yes' : 'no', ...spreadCells(c.stability.cells), ...spreadCells(c.stability.measurement)]),
      ),
      table(
        'Loadings (unit vectors; sign fixed so the largest is positive)',
        [['trait', false], ...pcs.map((c): [string, boolean] => [`PC${c.index}`, true])],
        data.traits.map((trait, j) => [trait, ...pcs.map((c) => signed(c.loadings[j].value))]),
      ),
    ],
  };
}
