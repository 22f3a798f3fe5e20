/**
 * Scores without a plot of their own (prefill robustness, trait expression, identity probes, and any
 * metric of any eval), each with its differences from the base and prompted subjects.
 */
import { estimateCells, interval, signed } from '../format.js';
import type { ScoreRow } from '../model.js';
import { absent, distinct, estimateColumns, table, type Section } from '../section.js';

/** Under this many independent clusters a score's interval is flagged as rough. */
const FEW_CLUSTERS = 10;

export function scoresSection(data: ScoreRow[] | undefined): Section {
  const id = 'scores';
  const title = 'All scores';
  if (!data || data.length === 0) return absent(id, title, 'No scores in the summary.');
  return {
    id,
    title,
    description:
      'Every metric of every evaluation with n and its 95% interval, and its difference from the base and prompted subjects on the same prompts ' +
      '(paired where samples pair up, marked ‡). † marks a score resting on fewer than 10 independent clusters (prompts, items, conversations): its interval is rough.',
    plots: [],
    tables: distinct(data.map((r) => r.evaluation)).map((evaluation) => {
      const rows = data.filter((r) => r.evaluation === evaluation);
      // Rows list their comparisons base first; the longest list gives the column order.
      const against = distinct([...rows].sort((a, b) => b.versus.length - a.versus.length).flatMap((r) => r.versus.map((v) => v.against)));
      return table(
        evaluation,
        [['metric', false], ['subject', false], ...estimateColumns('score'), ...against.flatMap((a): [string, boolean][] => [[`Δ vs ${a}`, true], ['95% CI', true]])],
        rows.map((r) => [
          r.metric,
          r.subject,
          ...estimateCells(r.score).map((cell, i) => (i === 0 && r.clusters !== undefined && r.clusters < FEW_CLUSTERS ? `${cell}†` : cell)),
          ...against.flatMap((a) => {
            const v = r.versus.find((x) => x.against === a);
            return v ? [`${signed(v.difference.value)}${v.paired ? '‡' : ''}`, interval(v.difference)] : ['–', '–'];
          }),
        ]),
      );
    }),
  };
}
