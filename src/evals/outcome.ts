/**
 * Whether an eval's result is usable. An eval that ran but whose judge produced no usable score at
 * all (every metric empty, verdicts dropped as unparsed) is not "ok": it is failed, with the reason,
 * so the command exits non-zero instead of reporting empty tables as results.
 */
import type { EvalResult, EvalSummary } from './summary.js';

export function judgedOutcome(result: EvalResult): EvalResult {
  if (result.status !== 'ok') return result;
  const metrics = [...Object.values(result.subjects).flatMap((m) => Object.values(m)), ...Object.values(result.overall ?? {})];
  const missing = metrics.reduce((n, m) => n + (m.missing ?? 0), 0) + (result.unparsed ?? 0);
  if (metrics.length > 0 && missing > 0 && metrics.every((m) => m.n === 0)) {
    return { ...result, status: 'failed', reason: `no usable score: the judge's ${missing} verdict(s) were all unparsed or missing` };
  }
  return result;
}

/** The evals of a summary that failed (the command exits 1 when there is any). */
export function failedEvals(summary: EvalSummary): string[] {
  return summary.evals.filter((e) => e.status === 'failed').map((e) => e.eval);
}
