/**
 * The continued-training data of a run (run.continue): for every stage cell, the cell it was trained
 * from (the train journal's `start`), and from the eval summary each metric before (the earlier
 * cell) and after (the stage's cell), pooled over seeds, with the paired difference after − before.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EvalSummary, PooledCell } from '../evals/summary.js';
import type { ContinuedLink, Estimate } from './model.js';

type CellRef = { method: string; format: string | null };
const label = (c: CellRef) => (c.format ? `${c.method}/${c.format}` : c.method);
const same = (a: CellRef, b: CellRef) => a.method === b.method && (a.format ?? null) === (b.format ?? null);

const pooledEstimate = (p: { value: number | null; ci: { low: number; high: number } | null; n: number } | undefined): Estimate | undefined =>
  p && p.value !== null && p.n > 0 ? { value: p.value, lo: p.ci?.low ?? NaN, hi: p.ci?.high ?? NaN, n: p.n } : undefined;

/** persona, stage cell and the cell it started from, one per stage cell (seeds together). */
function stageLinks(runDir: string): { persona: string; cell: CellRef; from: CellRef; mode: string }[] {
  const file = join(runDir, 'journals', 'train', 'adapters.jsonl');
  if (!existsSync(file)) return [];
  const links = new Map<string, { persona: string; cell: CellRef; from: CellRef; mode: string }>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    let value: { cell?: { persona: string; method: string; format: string | null }; start?: { from: CellRef; mode: string } } | undefined;
    try {
      value = (JSON.parse(line) as { value?: typeof value }).value;
    } catch {
      continue; // blank or torn line
    }
    if (!value?.cell || !value.start) continue;
    const cell = { method: value.cell.method, format: value.cell.format };
    links.set(`${value.cell.persona}\u0000${label(cell)}`, { persona: value.cell.persona, cell, from: value.start.from, mode: value.start.mode });
  }
  return [...links.values()];
}

/** Undefined when the run trained no continued stage (the report then has no such section). */
export function readContinued(runDir: string, summary: EvalSummary): ContinuedLink[] | undefined {
  const links = stageLinks(runDir);
  if (links.length === 0) return undefined;
  const out: ContinuedLink[] = [];
  for (const link of links) {
    for (const result of summary.evals.filter((e) => e.status === 'ok')) {
      const pooled = (c: CellRef, metric: string): PooledCell | undefined => result.pooled.find((p) => p.persona === link.persona && p.metric === metric && same(p, c));
      for (const metric of [...new Set(result.pooled.filter((p) => p.persona === link.persona && same(p, link.cell)).map((p) => p.metric))]) {
        const contrast = result.contrasts.find((c) => c.persona === link.persona && c.metric === metric && ((same(c.a, link.cell) && same(c.b, link.from)) || (same(c.a, link.from) && same(c.b, link.cell))));
        const diff = pooledEstimate(contrast ?? undefined);
        // Contrasts are a − b in the order the cells were evaluated: turned to after − before.
        const difference = diff && contrast && !same(contrast.a, link.cell) ? { value: -diff.value, lo: -diff.hi, hi: -diff.lo, n: diff.n } : diff;
        out.push({
          persona: link.persona,
          stage: label(link.cell),
          from: label(link.from),
          mode: link.mode,
          evaluation: result.eval,
          metric,
          before: pooledEstimate(pooled(link.from, metric)),
          after: pooledEstimate(pooled(link.cell, metric)),
          difference,
          seeds: contrast?.seeds ?? 0,
        });
      }
    }
  }
  return out;
}
