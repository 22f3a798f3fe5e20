/** Capability retention: accuracy on checkable questions before (the base) and after training. */
import { estimateCells } from '../format.js';
import type { CapabilityRow } from '../model.js';
import { kindColors, pointWithInterval } from '../plots.js';
import { absent, estimateColumns, table, type Section } from '../section.js';

export function capabilitySection(data: CapabilityRow[] | undefined): Section {
  const id = 'capability';
  const title = 'Capability cost';
  if (!data || data.length === 0) return absent(id, title, 'No capability-retention results in the summary.');
  const before = data[0].before;
  const values = [{ subject: 'base (before)', kind: 'base', ...before }, ...data.map((r) => ({ subject: r.subject, kind: r.kind, ...r.after }))];
  const spec = {
    data: { values },
    width: 380,
    height: { step: 22 },
    layer: [
      { mark: { type: 'rule', color: '#9a9a9a', strokeDash: [4, 3] }, encoding: { x: { datum: before.value, type: 'quantitative' } } },
      ...pointWithInterval(
        'x',
        'accuracy on checkable questions',
        {
          y: { field: 'subject', type: 'nominal', title: null, sort: values.map((v) => v.subject) },
          color: { field: 'kind', type: 'nominal', legend: null, scale: kindColors(values.map((v) => v.kind)) },
        },
        { domain: [0, 1] },
      ),
    ],
  };
  return {
    id,
    title,
    description:
      'Accuracy on a fixed set of questions with checkable answers (scored without a judge), for the base model and each subject, with 95% intervals; ' +
      'the difference is paired by question where the samples pair up.',
    plots: [{ caption: 'Accuracy per subject; the dashed line is the base model (before training).', spec }],
    tables: [
      table(
        'Capability retention',
        [['subject', false], ...estimateColumns('before'), ...estimateColumns('after'), ...estimateColumns('after − before')],
        data.map((r) => [r.subject, ...estimateCells(r.before), ...estimateCells(r.after), ...estimateCells(r.difference, 2, true)]),
      ),
    ],
  };
}
