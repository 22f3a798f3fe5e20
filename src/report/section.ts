import type { PlotSpec } from './plots.js';
import type { Transcript } from './model.js';

/** A table as data: both the HTML page and the Markdown summary render it; every cell is text. */
export interface Table {
  caption: string;
  columns: string[];
  /** Columns aligned right (numbers). */
  numeric: boolean[];
  rows: string[][];
  /** Shown only in the Markdown summary (the HTML page shows the same numbers in a plot). */
  markdownOnly?: boolean;
}

export interface Plot {
  caption: string;
  spec: PlotSpec;
}

/** One section of the report, built from its data, or the note saying why it is absent. */
export interface Section {
  id: string;
  title: string;
  /** Set when the section's data is absent: the report shows this one line instead. */
  missing?: string;
  description?: string;
  plots: Plot[];
  tables: Table[];
  transcripts?: Transcript[];
}

export function absent(id: string, title: string, missing: string): Section {
  return { id, title, missing, plots: [], tables: [] };
}

/** A table whose columns are given as [header, numeric] pairs. */
export function table(caption: string, columns: [string, boolean][], rows: string[][], markdownOnly = false): Table {
  return { caption, columns: columns.map((c) => c[0]), numeric: columns.map((c) => c[1]), rows, markdownOnly };
}

/** Header triples for an estimate's cells (see estimateCells). */
export function estimateColumns(name: string): [string, boolean][] {
  return [
    [name, true],
    ['95% CI', true],
    ['n', true],
  ];
}

/** Orders baselines first (base, prompted), then everything else as given. */
export function baselinesFirst<T>(items: T[], kindOf: (item: T) => string): T[] {
  const rank = (k: string) => (k === 'base' ? 0 : k === 'prompted' ? 1 : 2);
  return items.map((item, i) => ({ item, i })).sort((a, b) => rank(kindOf(a.item)) - rank(kindOf(b.item)) || a.i - b.i).map((x) => x.item);
}

/** Distinct values in first-seen order. */
export function distinct<T>(values: T[]): T[] {
  return [...new Set(values)];
}
