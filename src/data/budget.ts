/**
 * Equal token budgets for a format comparison (docs/protocols.md §2: same budget, same hyperparameters). Each
 * format's rows are taken in a seeded order and kept while they fit the budget (a row that would
 * overflow is skipped and the next tried), so every format ends within one row's tokens of the
 * budget and never over it. The budget defaults to the smallest format's total. The budget counts
 * the tokens that are trained on (carry loss): a chat row's assistant turns, a document's text; a
 * user prompt carries no loss, so counting it would give formats with long prompts less training at
 * the "same" budget. All tokens are reported beside them, with the subject tokenizer.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../core/journal.js';
import { configHash, rowTokens, writeDataset } from './context.js';
import { chatRowSchema, textRowSchema, type ChatRow, type TextRow } from './rows.js';
import { seededOrder } from './text.js';
import type { TokenCounter } from './tokens.js';

export interface FormatBudgetReport {
  budget: number;
  tokenizer: string;
  /** Per format: rows and trained (loss-bearing) tokens available and kept; allTokens counts prompts too. */
  formats: Record<string, { rowsAvailable: number; tokensAvailable: number; rows: number; tokens: number; allTokens: number }>;
  /** Formats whose whole dataset is under a requested budget (their comparison is not equal). */
  shortOfBudget?: string[];
}

/** Tokens of a row that carry loss in training: the assistant turns of a chat row, all of a document. */
export function trainedTokens(row: ChatRow | TextRow, tokens: TokenCounter): number {
  if ('text' in row) return tokens.count(row.text);
  return row.messages.filter((m) => m.role === 'assistant').reduce((n, m) => n + tokens.count(m.content), 0);
}

export function fitBudget<R extends (ChatRow | TextRow) & { meta: { id: string } }>(rows: R[], budget: number, seed: number, tokens: TokenCounter): { rows: R[]; tokens: number } {
  const kept: R[] = [];
  let total = 0;
  for (const row of seededOrder(rows, seed, (r) => r.meta.id)) {
    const t = trainedTokens(row, tokens);
    if (total + t <= budget) {
      kept.push(row);
      total += t;
    }
  }
  return { rows: kept, tokens: total };
}

/** Writes datasets/<slug>/format-comparison/<format>.jsonl (+ manifests) and format-comparison/budget.json. */
export function equalizeFormats(
  outDir: string,
  persona: string,
  formats: Record<string, (ChatRow | TextRow)[]>,
  requested: number | undefined,
  seed: number,
  tokens: TokenCounter,
): FormatBudgetReport {
  const totals = Object.fromEntries(Object.entries(formats).map(([name, rows]) => [name, rows.reduce((n, r) => n + trainedTokens(r, tokens), 0)]));
  const budget = requested ?? Math.min(...Object.values(totals));
  const dir = join(outDir, 'format-comparison');
  const report: FormatBudgetReport = { budget, tokenizer: tokens.name, formats: {} };
  for (const [name, rows] of Object.entries(formats)) {
    const fitted = fitBudget(rows, budget, seed, tokens);
    report.formats[name] = { rowsAvailable: rows.length, tokensAvailable: totals[name], rows: fitted.rows.length, tokens: fitted.tokens, allTokens: fitted.rows.reduce((n, r) => n + rowTokens(r, tokens), 0) };
    const isText = rows.length > 0 && 'text' in rows[0];
    writeDataset(
      dir,
      {
        dataset: name,
        persona,
        shape: isText ? 'text' : 'messages',
        tokenizer: tokens.name,
        generated: rows.length,
        dropped: { budget: rows.length - fitted.rows.length },
        models: [...new Set(fitted.rows.map((r) => r.meta.model))],
        seed,
        configHash: configHash({ budget, seed, ids: fitted.rows.map((r) => r.meta.id) }),
        notes: [`budget of ${budget} trained (loss-bearing) tokens (${tokens.name}) shared by: ${Object.keys(formats).join(', ')}`],
        extra: { budget },
      },
      [{ variant: 'main', fileName: `${name}.jsonl`, rows: fitted.rows, schema: isText ? textRowSchema : chatRowSchema }],
      tokens,
    );
  }
  if (requested !== undefined) {
    const short = Object.entries(totals).filter(([, t]) => t < requested).map(([n]) => n);
    if (short.length > 0) report.shortOfBudget = short;
  }
  writeFileAtomic(join(dir, 'budget.json'), JSON.stringify(report, null, 2) + '\n');
  return report;
}
