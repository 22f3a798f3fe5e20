/** The API's answers (the server's own types, so page and server cannot drift apart). */
import type { EvalSummary } from '../../evals/summary.js';
import type { ComparisonRow, Group, MetricTable } from '../headline.js';
import type { BudgetEntry, Curve, DatasetEntry, RunListing, SampleRecord, SampleRow, SteerView, SubjectInfo } from '../runs.js';
import type { Page } from '../jsonl.js';

export type { BudgetEntry, ComparisonRow, Curve, DatasetEntry, Group, MetricTable, Page, RunListing, SampleRecord, SampleRow, SteerView, SubjectInfo };

export interface RunData {
  listing: RunListing;
  summary: (Omit<EvalSummary, 'evals'> & { evals: Omit<EvalSummary['evals'][number], 'subjects' | 'overall'>[] }) | null;
  subjects: SubjectInfo[];
  groups: Group[];
  tables: MetricTable[];
  journals: Record<string, string[]>;
  curves: string[];
  datasets: DatasetEntry[];
  budgets: BudgetEntry[];
  steer: SteerView | null;
}

export interface Comparison {
  a: string;
  b: string;
  rows: ComparisonRow[];
}
