/** Persona strength per format/method (with baselines) and the classifier's confusion matrices. */
import { estimateCells, num } from '../format.js';
import type { ClassifierSection } from '../model.js';
import { kindColors, pointWithInterval } from '../plots.js';
import { absent, baselinesFirst, distinct, estimateColumns, table, type Section } from '../section.js';

/**
 * A warning when the classifier never predicts a class on its own held-out replies although that
 * class is there (it learned a prior, not the personas): the strength figures then say nothing.
 */
export function blindClassifierWarning(data: ClassifierSection): string | undefined {
  const held = data.confusion.find((m) => m.title.startsWith('held-out'));
  if (!held) return undefined;
  const never = held.labels.filter((_, c) => (held.counts[c]?.reduce((a, b) => a + b, 0) ?? 0) > 0 && held.counts.every((row) => (row[c] ?? 0) === 0));
  if (never.length === 0) return undefined;
  return `Warning: on its own held-out replies the classifier never predicts ${never.map((l) => `"${l}"`).join(', ')}, so it cannot tell the classes apart and the shares classified as the persona measure its prior, not the persona. Give it more (or more distinct) training replies.`;
}

export function comparisonSection(data: ClassifierSection | undefined): Section {
  const id = 'comparison';
  const title = 'Persona strength by format and method';
  if (!data || data.comparison.length === 0) return absent(id, title, 'No persona-classifier results in the summary.');
  const rows = baselinesFirst(data.comparison, (r) => r.kind);
  const hasAdversarial = rows.some((r) => r.adversarial);
  const points = rows.flatMap((r) => [
    { persona: r.persona, condition: r.condition, kind: r.kind, measure: 'plain prompts', ...r.strength },
    ...(r.adversarial ? [{ persona: r.persona, condition: r.condition, kind: r.kind, measure: 'adversarial suffixes', ...r.adversarial }] : []),
  ]);
  const spec = {
    data: { values: points },
    facet: {
      row: { field: 'persona', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelOrient: 'top' } },
      ...(hasAdversarial ? { column: { field: 'measure', type: 'nominal', title: null, sort: ['plain prompts', 'adversarial suffixes'] } } : {}),
    },
    spec: {
      width: 330,
      height: { step: 20 },
      layer: pointWithInterval(
        'x',
        'share of replies classified as the persona',
        {
          y: { field: 'condition', type: 'nominal', title: null, sort: distinct(rows.map((r) => r.condition)) },
          color: { field: 'kind', type: 'nominal', title: 'subject', scale: kindColors(rows.map((r) => r.kind)) },
        },
        { domain: [0, 1] },
      ),
    },
    resolve: { scale: { y: 'independent' } },
  };
  return {
    id,
    title,
    description:
      'Strength = share of a subject\'s replies that the persona classifier attributes to the persona, with 95% intervals. ' +
      'Base and prompted baselines are measured on the same prompts' +
      (hasAdversarial ? '; the right panel appends adversarial suffixes to the user prompt.' : '.') +
      (blindClassifierWarning(data) ? ` ${blindClassifierWarning(data)}` : ''),
    plots: [{ caption: 'Persona strength per condition (point = estimate, bar = 95% interval).', spec }],
    tables: [
      table(
        'Persona strength',
        [['persona', false], ['condition', false], ...estimateColumns('strength'), ...(hasAdversarial ? estimateColumns('adversarial') : [])],
        rows.map((r) => [r.persona, r.condition, ...estimateCells(r.strength), ...(hasAdversarial ? estimateCells(r.adversarial) : [])]),
      ),
    ],
  };
}

export function confusionSection(data: ClassifierSection | undefined): Section {
  const id = 'confusion';
  const title = 'Persona classifier: confusion matrices';
  if (!data || data.confusion.length === 0) return absent(id, title, 'No classifier confusion matrix in the summary.');
  // One panel per matrix, side by side, sharing the colour scale.
  const panels = data.confusion.map((m) => {
    const cells = m.labels.flatMap((actual, i) => {
      const total = m.counts[i]?.reduce((a, b) => a + b, 0) ?? 0;
      return m.labels.map((predicted, j) => {
        const count = m.counts[i]?.[j] ?? 0;
        return { actual, predicted, count, share: total > 0 ? count / total : 0 };
      });
    });
    const axis = (field: string, title: string) => ({ field, type: 'nominal', title, sort: m.labels });
    return {
      title: { text: m.title, fontSize: 12, anchor: 'middle' },
      data: { values: cells },
      width: { step: 44 },
      height: { step: 30 },
      encoding: { x: { ...axis('predicted', 'predicted'), axis: { labelAngle: -30 } }, y: axis('actual', 'actual') },
      layer: [
        { mark: 'rect', encoding: { color: { field: 'share', type: 'quantitative', title: 'row share', scale: { scheme: 'blues', domain: [0, 1] } } } },
        {
          mark: { type: 'text', fontSize: 11 },
          encoding: {
            text: { field: 'count', type: 'quantitative' },
            color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: '#222' },
          },
        },
      ],
    };
  });
  const scores = data.confusion.map((m) => {
    const parts = [m.accuracy ? `accuracy ${num(m.accuracy.value)}` : '', m.macroF1 ? `macro-F1 ${num(m.macroF1.value)}` : ''].filter(Boolean);
    return parts.length ? `${m.title}: ${parts.join(', ')}` : '';
  });
  const plots = [
    {
      caption: `Rows are the true persona, columns the classifier's choice; cells give counts, colour the share of the row. ${scores.filter(Boolean).join('; ')}.`,
      // Wrapped so the figure fits the page: larger matrices get fewer panels per row.
      spec: { concat: panels, columns: Math.max(...data.confusion.map((m) => m.labels.length)) <= 4 ? 3 : 2, spacing: 28, resolve: { scale: { color: 'shared' } } },
    },
  ];
  return {
    id,
    title,
    description: blindClassifierWarning(data),
    plots,
    tables: [
      table(
        'Classifier accuracy and macro-F1',
        [['replies', false], ...estimateColumns('accuracy'), ...estimateColumns('macro-F1')],
        data.confusion.map((m) => [m.title, ...estimateCells(m.accuracy), ...estimateCells(m.macroF1)]),
      ),
      ...data.confusion.map((m) =>
        table(`Confusion matrix: ${m.title} (rows true, columns predicted)`, [['true ↓ predicted →', false], ...m.labels.map((l): [string, boolean] => [l, true])],
          m.labels.map((l, i) => [l, ...m.labels.map((_, j) => String(m.counts[i]?.[j] ?? 0))]), true),
      ),
    ],
  };
}
