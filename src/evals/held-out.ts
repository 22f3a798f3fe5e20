/**
 * Evals measure generalization, not recall: they ask prompts no training set of the run contains.
 * Trait expression reads each persona's held-out prompts (written by the data stage, read by no
 * trainer); every eval prompt is checked against the user turns of the run's training sets, and an
 * overlap is reported, and refused unless eval.trainingOverlap is "report".
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../core/errors.js';
import { normalizeForDedup } from '../data/text.js';
import { personaSlug } from '../core/slug.js';
import type { EvalContext } from './types.js';

/** A persona's held-out prompts, by trait sentence: datasets/<slug>/prompts.heldout.jsonl, or undefined when the run has none. */
export function heldOutPrompts(ctx: EvalContext, persona: string): Map<string, string[]> | undefined {
  const file = ctx.runDir.path('datasets', personaSlug(persona), 'prompts.heldout.jsonl');
  if (!existsSync(file)) return undefined;
  const byTrait = new Map<string, string[]>();
  for (const row of jsonLines(file)) {
    if (typeof row.prompt !== 'string' || typeof row.trait !== 'string') continue;
    byTrait.set(row.trait, [...(byTrait.get(row.trait) ?? []), row.prompt]);
  }
  return byTrait;
}

function jsonLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .flatMap((line) => {
      try {
        const v: unknown = JSON.parse(line);
        return v && typeof v === 'object' && !Array.isArray(v) ? [v as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
}

const userTexts = (messages: unknown): string[] =>
  Array.isArray(messages) ? messages.filter((m): m is { role: string; content: string } => m?.role === 'user' && typeof m.content === 'string').map((m) => m.content) : [];

/** Every file under `dir`, at any depth. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });

/**
 * The user turns of every training set under the run's datasets/ (chat and DPO rows, and the train
 * split of the identity probes), every seed's with generate.seedVaries (datasets/seed-<n>/),
 * normalized for comparison. Held-out files are not training sets.
 */
export function trainingPrompts(ctx: EvalContext): Set<string> {
  const root = ctx.runDir.path('datasets');
  const out = new Set<string>();
  if (!existsSync(root)) return out;
  const files = filesUnder(root);
  for (const file of files.filter((f) => f.endsWith('.jsonl') && !f.includes('.heldout.'))) {
    for (const row of jsonLines(file)) {
      // Probe lists are trained on as they are (the identity objective); prompt lists only through the chat and DPO rows made from them.
      const probe = typeof row.prompt === 'string' && typeof row.category === 'string' && row.split === 'train';
      const texts = [...userTexts(row.messages), ...userTexts(row.prompt), ...(probe ? [row.prompt as string] : [])];
      for (const t of texts) out.add(normalizeForDedup(t));
    }
  }
  return out;
}

export interface Overlap {
  prompts: number;
  inTraining: number;
}

/**
 * How many of an eval's distinct prompts are in a training set of the run; throws (naming
 * eval.trainingOverlap) when some are and overlaps are refused.
 */
export function checkOverlap(ctx: EvalContext, evalId: string, prompts: readonly string[], training: ReadonlySet<string> = trainingPrompts(ctx)): Overlap {
  const distinct = [...new Set(prompts.map(normalizeForDedup))];
  const found = distinct.filter((p) => training.has(p));
  if (found.length > 0 && ctx.options.trainingOverlap === 'refuse') {
    throw new InputError(
      ctx.file,
      'eval.trainingOverlap',
      `eval prompts no training set contains: ${found.length} of ${distinct.length} prompts of the ${evalId} eval are in the run's training data (e.g. "${found[0].slice(0, 80)}"); use held-out prompts, or set eval.trainingOverlap: report to evaluate anyway`,
    );
  }
  return { prompts: distinct.length, inTraining: found.length };
}
