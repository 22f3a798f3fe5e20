/**
 * `<run>/accounting.json`: every invocation's model usage, appended per stage and per model (a
 * stage that failed included), with the run's totals. Nothing a later invocation does overwrites
 * what an earlier one paid for.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../core/errors.js';
import { readStructured } from '../core/load.js';
import { writeFileAtomic } from '../core/journal.js';
import type { AccountingSnapshot, ModelUsage } from './accounting.js';

export const ACCOUNTING_FILE = 'accounting.json';

const count = z.number().int().nonnegative();
export const modelUsageSchema = z
  .object({
    calls: count.describe('chat() calls made by the pipeline.'),
    cacheHits: count.describe('Calls answered entirely from the response cache.'),
    cachedSamples: count,
    backendCalls: count.describe('Requests that reached the backend.'),
    promptTokens: count,
    completionTokens: count,
    retries: count.describe('Attempts repeated after a transient failure.'),
    failures: count.describe('Calls that failed for good.'),
    embedCalls: count,
    costUSD: z.number().nonnegative().nullable().describe('Null when no pricing is known for the model.'),
  })
  .strict();

const usageTableSchema = z.object({ models: z.record(z.string(), modelUsageSchema), total: modelUsageSchema }).strict();

export const accountingFileSchema = z
  .object({
    invocations: z.array(
      z
        .object({
          id: z.string().describe('pid@start time of the persona-lab process.'),
          command: z.string(),
          startedAt: z.string(),
          stages: z.array(usageTableSchema.extend({ stage: z.string().describe('The stage (a failed one included) whose calls these are.'), endedAt: z.string() }).strict()),
        })
        .strict(),
    ),
    models: z.record(z.string(), modelUsageSchema).describe('Totals per model over every invocation.'),
    total: modelUsageSchema.describe('Totals over every invocation and model.'),
  })
  .strict()
  .describe('runs/<name>/accounting.json: model calls, tokens, retries and cost of every invocation, per stage and model.');
export type AccountingFile = z.infer<typeof accountingFileSchema>;

const zero = (): ModelUsage => ({ calls: 0, cacheHits: 0, cachedSamples: 0, backendCalls: 0, promptTokens: 0, completionTokens: 0, retries: 0, failures: 0, embedCalls: 0, costUSD: null });

function add(a: ModelUsage, b: ModelUsage, sign = 1): ModelUsage {
  const out = zero();
  for (const k of Object.keys(out) as (keyof ModelUsage)[]) {
    if (k === 'costUSD') out.costUSD = a.costUSD === null && b.costUSD === null ? null : Math.max(0, (a.costUSD ?? 0) + sign * (b.costUSD ?? 0));
    else out[k] = a[k] + sign * b[k];
  }
  return out;
}

/** The usage of `now` less `before`, for the models that did anything in between. */
export function usageSince(now: AccountingSnapshot, before: AccountingSnapshot | undefined): AccountingSnapshot {
  const models: Record<string, ModelUsage> = {};
  let total = zero();
  for (const [id, usage] of Object.entries(now.models)) {
    const delta = add(usage, before?.models[id] ?? zero(), -1);
    if (Object.entries(delta).some(([k, v]) => k !== 'costUSD' && v !== 0)) {
      models[id] = delta;
      total = add(total, delta);
    }
  }
  return { models, total };
}

export function readAccountingFile(runDir: string): AccountingFile | undefined {
  const path = join(runDir, ACCOUNTING_FILE);
  if (!existsSync(path)) return undefined;
  const raw = readStructured(path);
  const parsed = accountingFileSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  // A run from before per-invocation accounting: its one snapshot becomes one invocation.
  const legacy = usageTableSchema.safeParse(raw);
  if (legacy.success) return { invocations: [{ id: 'earlier', command: '', startedAt: '', stages: [{ stage: 'earlier', endedAt: '', ...legacy.data }] }], models: legacy.data.models, total: legacy.data.total };
  throw InputError.fromZod(path, parsed.error);
}

/** Appends one stage's usage to this invocation's entry (created on first use) and updates the totals. */
export function appendStageUsage(runDir: string, invocation: { id: string; command: string; startedAt: string }, stage: string, usage: AccountingSnapshot): void {
  const file = readAccountingFile(runDir) ?? { invocations: [], models: {}, total: zero() };
  let entry = file.invocations.find((i) => i.id === invocation.id);
  if (!entry) file.invocations.push((entry = { ...invocation, stages: [] }));
  entry.stages.push({ stage, endedAt: new Date().toISOString(), ...usage });
  for (const [id, u] of Object.entries(usage.models)) file.models[id] = add(file.models[id] ?? zero(), u);
  file.total = add(file.total, usage.total);
  writeFileAtomic(join(runDir, ACCOUNTING_FILE), JSON.stringify(file, null, 2) + '\n');
}
