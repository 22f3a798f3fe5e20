/**
 * The trained cells pooled over seeds: per evaluation, every metric of each persona x method x
 * format as the mean over its seeds with the seeds' standard deviation.
 */
import { num } from '../format.js';
import type { PooledCellRow } from '../model.js';
import { absent, distinct, table, type Section } from '../section.js';

export function pooledSection(data: PooledCellRow[] | undefined): Section {
  const id = 'pooled';
  const title = 'Trained cells, pooled over seeds';
  if (!data || data.length === 0) return absent(id, title, 'No trained cells in the summary.');
  return {
    id,
    title,
    description: 'Each metric of the trained adapters grouped by persona, method and data format: the mean over seeds and the standard deviation between seeds (– with one seed).',
    plots: [],
    tables: distinct(data.map((r) => r.evaluation)).map((evaluation) =>
      table(
        evaluation,
        [['metric', false], ['persona', false], ['method', false], ['format', false], ['seeds', true], ['mean', true], ['seed SD', true]],
        data.filter((r) => r.evaluation === evaluation).map((r) => [r.metric, r.persona, r.method, r.format ?? '–', String(r.seeds), num(r.mean), r.sd === undefined ? '–' : num(r.sd)]),
      ),
    ),
  };
}
