/**
 * Continued training (run.continue): what further training on other data does to a persona. Per
 * persona, each stage against the cell it was trained from - every metric before and after, and the
 * paired difference pooled over seeds with its interval (erosion when the persona's metrics fall) -
 * and each chain of stages step by step (stability across training stages).
 */
import { estimateCells, interval, signed } from '../format.js';
import type { ContinuedLink } from '../model.js';
import { absent, estimateColumns, table, type Section } from '../section.js';

const metricTitle = (l: ContinuedLink) => `${l.evaluation} · ${l.metric}`;

/** Every chain of stages per persona and metric, from the cell the first stage started from. */
function chainRows(links: ContinuedLink[]): string[][] {
  const rows: string[][] = [];
  const key = (l: ContinuedLink) => `${l.persona}\u0000${metricTitle(l)}`;
  const groups = new Map<string, ContinuedLink[]>();
  for (const l of links) groups.set(key(l), [...(groups.get(key(l)) ?? []), l]);
  for (const group of groups.values()) {
    const stages = new Set(group.map((l) => l.stage));
    for (const root of [...new Set(group.filter((l) => !stages.has(l.from)).map((l) => l.from))]) {
      const first = group.find((l) => l.from === root)!;
      rows.push([first.persona, root, '0', root, metricTitle(first), ...estimateCells(first.before), '–', '–']);
      const walk = (from: string, step: number, seen: Set<string>) => {
        for (const l of group.filter((x) => x.from === from && !seen.has(x.stage))) {
          rows.push([l.persona, root, String(step), `${l.stage} (${l.mode})`, metricTitle(l), ...estimateCells(l.after), signed(l.difference?.value), interval(l.difference)]);
          walk(l.stage, step + 1, new Set([...seen, l.stage]));
        }
      };
      walk(root, 1, new Set());
    }
  }
  return rows;
}

export function continuedSection(links: ContinuedLink[]): Section {
  const id = 'continued';
  const title = 'Continued training: what survives further training';
  if (links.length === 0) return absent(id, title, 'No metrics of the continued-training cells in the evaluation summary.');
  return {
    id,
    title,
    description:
      'Each stage of run.continue was trained further from another cell of the same persona and seed. "before" is the cell it started from, "after" the stage\'s cell, ' +
      'both pooled over seeds (mean of the seed means; two-level bootstrap interval). Δ is after − before, paired on the same held-out prompts seed by seed and pooled the same way: ' +
      'a persona metric whose Δ interval lies below 0 was eroded by the further training; one that covers 0 survived within what the design can detect. ' +
      'The stage table follows each chain of stages step by step (Δ from the step before).',
    plots: [],
    tables: [
      table(
        'Erosion: each stage against the cell it was trained from (after − before), pooled over seeds',
        [['persona', false], ['stage ← from', false], ['mode', false], ['metric', false], ...estimateColumns('before'), ...estimateColumns('after'), ['Δ', true], ['95% CI', true], ['seeds', true]],
        links.map((l) => [l.persona, `${l.stage} ← ${l.from}`, l.mode, metricTitle(l), ...estimateCells(l.before), ...estimateCells(l.after), signed(l.difference?.value), interval(l.difference), String(l.seeds)]),
      ),
      table(
        'Stability across training stages: each chain step by step, pooled over seeds',
        [['persona', false], ['chain from', false], ['step', true], ['cell', false], ['metric', false], ...estimateColumns('value'), ['Δ from step before', true], ['95% CI', true]],
        chainRows(links),
      ),
    ],
  };
}
