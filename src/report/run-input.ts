/**
 * Reading a run directory into the report's data: manifest.json, the journals' item counts, the eval
 * summary (evals/summary.json) and sample transcripts. Read-only; bad input is an InputError.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { InputError } from '../core/errors.js';
import { loadFile } from '../core/load.js';
import { evalSummarySchema } from '../evals/summary.js';
import { steerSummarySchema } from '../steer/artifacts.js';
import { fromSummary } from './from-summary.js';
import { multiPersonaMatrices, personaKnowledgeRows } from './persona-research-input.js';
import { readAccountingFile } from '../providers/accounting-file.js';
import type { ReportData } from './model.js';
import { readTranscripts } from './transcripts-input.js';
import { traitAxisAlignment } from './trait-axis-input.js';
import { readContinued } from './continued-input.js';

/** Where the eval stage writes its summary, relative to the run directory. */
export const SUMMARY_PATH = join('evals', 'summary.json');

/** The fields of core/journal.ts RunManifest that the report shows. */
const manifestSchema = z.object({
  name: z.string(),
  personaLabVersion: z.string(),
  gitRevision: z.string().nullable(),
  startedAt: z.string(),
  seeds: z.array(z.number()),
  resumedAt: z.array(z.string()).optional(),
});

function journalCounts(runDir: string): ReportData['journals'] {
  const root = join(runDir, 'journals');
  if (!existsSync(root)) return [];
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .sort()
      .flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? walk(path) : name.endsWith('.jsonl') ? [path] : [];
      });
  return walk(root).map((file) => {
    const keys = new Set<string>();
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      try {
        const parsed = JSON.parse(line) as { key?: unknown };
        if (typeof parsed.key === 'string') keys.add(parsed.key);
      } catch {
        // blank or torn line
      }
    }
    return { name: relative(root, file).slice(0, -'.jsonl'.length), items: keys.size };
  });
}

function usageTotals(runDir: string): ReportData['run']['usage'] {
  const file = readAccountingFile(runDir);
  if (!file) return undefined;
  const { calls, promptTokens, completionTokens, retries, failures, costUSD } = file.total;
  return { invocations: file.invocations.length, calls, promptTokens, completionTokens, retries, failures, costUSD };
}

/**
 * What the run's seeds vary, from the options it recorded (options.json): training initialization
 * and data order always; eval sampling with eval.seedVaries (on by default); the training data with
 * generate.seedVaries; the steering sweep's rollouts when the run steered (and its extraction data
 * with generate.seedVaries).
 */
function seedVariation(runDir: string): { seedVaries?: string[] } {
  const file = join(runDir, 'options.json');
  if (!existsSync(file)) return {};
  let record: Record<string, { options?: Record<string, Record<string, unknown> | boolean | undefined> } | undefined>;
  try {
    record = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
  const varies = ['training initialization and data order'];
  const section = (key: string, name: string) => record[key]?.options?.[name] as Record<string, unknown> | undefined;
  if (section('generate', 'generate')?.seedVaries === true) varies.push('training data (generate.seedVaries)');
  if (record.eval && section('eval', 'eval')?.seedVaries !== false) varies.push('eval sampling (eval.seedVaries)');
  if (record.steer) varies.push(record.steer.options?.dataVaries ? 'steering (extraction data and sweep rollouts)' : 'steering (sweep rollouts)');
  return { seedVaries: varies };
}

export function readRun(runDir: string): ReportData {
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new InputError(runDir, '', 'expected a run directory (holding manifest.json)');
  const manifestFile = join(runDir, 'manifest.json');
  if (!existsSync(manifestFile)) throw new InputError(runDir, 'manifest.json', 'expected a run directory: manifest.json is missing');
  const manifest = loadFile(manifestFile, manifestSchema);
  const summaryFile = join(runDir, SUMMARY_PATH);
  const summary = existsSync(summaryFile) ? loadFile(summaryFile, evalSummarySchema) : undefined;
  const base: ReportData = {
    title: `persona-lab report: ${manifest.name}`,
    run: {
      name: manifest.name,
      version: manifest.personaLabVersion,
      gitRevision: manifest.gitRevision,
      startedAt: manifest.startedAt,
      resumedAt: manifest.resumedAt ?? [],
      seeds: manifest.seeds,
      ...seedVariation(runDir),
      usage: usageTotals(runDir),
    },
    journals: journalCounts(runDir),
    summaryNote: summary
      ? `Evaluation summary ${SUMMARY_PATH} of ${summary.createdAt} (${summary.subjects.length} subjects; intervals at ${Math.round(summary.confidence * 100)}%; judges: ${summary.judges.join(', ') || 'none'}).`
      : `No evaluation summary at ${SUMMARY_PATH}: the evaluations have not run (or not finished) in this run, so every results section is omitted.`,
    confidence: summary?.confidence ?? 0.95,
    evalStatus: [],
    transcripts: readTranscripts(runDir, summary ? [summary.baseline, summary.prompted].filter((s): s is string => !!s) : ['base', 'prompted']),
  };
  const steerFile = join(runDir, 'steer', 'summary.json');
  if (existsSync(steerFile)) {
    // A summary in an older shape (no selection and report halves) is left out with a note, not an error.
    const parsed = steerSummarySchema.safeParse(JSON.parse(readFileSync(steerFile, 'utf8')));
    if (parsed.success) base.steering = parsed.data;
    else base.steeringNote = 'steer/summary.json is not in the current shape (written before the sweep chose on one half of the questions and reported on the other): rerun the steer stage.';
  }
  if (!summary) return base;
  const continued = readContinued(runDir, summary);
  const data = { ...base, ...fromSummary(summary), multiPersona: multiPersonaMatrices(summary), personaKnowledge: personaKnowledgeRows(summary), ...(continued ? { continued } : {}) };
  const axis = data.traitSpace && traitAxisAlignment(runDir, data.traitSpace);
  return axis ? { ...data, traitSpace: { ...data.traitSpace!, axis } } : data;
}
