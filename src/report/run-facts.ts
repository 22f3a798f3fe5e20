import type { ReportData } from './model.js';

/** The run's identity as label/value pairs, for the header of both the page and the Markdown. */
export function runFacts(data: ReportData): [string, string][] {
  const r = data.run;
  return [
    ['run', r.name],
    ['persona-lab', r.version],
    ['git', r.gitRevision ? r.gitRevision.slice(0, 12) : 'unknown'],
    ['seeds', r.seeds.join(', ') || '–'],
    ...(r.seedVaries ? ([['varies with the seed', r.seedVaries.join('; ')]] as [string, string][]) : []),
    ['started', r.startedAt],
    ...(r.usage
      ? ([['model usage', `${r.usage.calls} calls, ${r.usage.promptTokens} + ${r.usage.completionTokens} tokens, ${r.usage.retries} retries, ${r.usage.failures} failed, ${r.usage.costUSD === null ? 'cost unknown' : `$${r.usage.costUSD.toFixed(4)}`} over ${r.usage.invocations} invocation(s)`]] as [string, string][])
      : []),
    ...(r.resumedAt.length ? ([['resumed', `${r.resumedAt.length}×, last ${r.resumedAt[r.resumedAt.length - 1]}`]] as [string, string][]) : []),
  ];
}
