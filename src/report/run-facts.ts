import type { ReportData } from './model.js';

/** The run's identity as label/value pairs, for the header of both the page and the Markdown. */
export function runFacts(data: ReportData): [string, string][] {
  const r = data.run;
  return [
    ['run', r.name],
    ['persona-lab', r.version],
    ['git', r.gitRevision ? r.gitRevision.slice(0, 12) : 'unknown'],
    ['seeds', r.seeds.join(', ') || '–'],
    ['started', r.startedAt],
    ...(r.resumedAt.length ? ([['resumed', `${r.resumedAt.length}×, last ${r.resumedAt[r.resumedAt.length - 1]}`]] as [string, string][]) : []),
  ];
}
