/** Prompt sets: the shipped ones under data/, users' local files, and held-out splits. */
import { existsSync, readFileSync } from 'node:fs';
import { extname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../core/errors.js';
import { PROBE_CATEGORIES, type ProbeRow, type Split } from './rows.js';
import { normalizeForDedup, seededOrder, textId } from './text.js';

/** The shipped prompt sets. */
export const DATA_DIR = fileURLToPath(new URL('../../data/', import.meta.url));
export const SHIPPED = {
  generalPrompts: `${DATA_DIR}general-prompts.json`,
  selfReflection: `${DATA_DIR}self-reflection.json`,
  identityProbes: `${DATA_DIR}identity-probes.json`,
} as const;

export const resolveFrom = (baseDir: string, file: string) => (isAbsolute(file) ? file : resolve(baseDir, file));

/** Items of a JSON array file or a JSONL file, each with where it was ("[3]" or "line 4"). */
function readItems(file: string): { value: unknown; where: string }[] {
  if (!existsSync(file)) throw new InputError(file, '', 'file not found');
  const text = readFileSync(file, 'utf8');
  if (extname(file).toLowerCase() === '.jsonl') {
    return text.split('\n').flatMap((line, i) => {
      if (line.trim() === '') return [];
      try {
        return [{ value: JSON.parse(line) as unknown, where: `line ${i + 1}` }];
      } catch {
        throw new InputError(file, `line ${i + 1}`, 'malformed JSON');
      }
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InputError(file, '', `malformed JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new InputError(file, '(root)', 'expected a JSON array (or use a .jsonl file)');
  return parsed.map((value, i) => ({ value, where: `[${i}]` }));
}

/** One user prompt out of a string, {prompt}, {text} or {messages} (its first user message). */
function promptOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return undefined;
  const row = value as { prompt?: unknown; text?: unknown; messages?: unknown };
  if (typeof row.prompt === 'string') return row.prompt;
  if (typeof row.text === 'string') return row.text;
  if (Array.isArray(row.messages)) {
    const user = row.messages.find((m): m is { role: string; content: string } => typeof m === 'object' && m !== null && m.role === 'user' && typeof m.content === 'string');
    return user?.content;
  }
  return undefined;
}

/** User prompts from a JSON or JSONL file; blank ones are an error, exact duplicates are merged. */
export function loadPromptFile(file: string): string[] {
  return readItems(file).map(({ value, where }) => {
    const prompt = promptOf(value)?.trim();
    if (!prompt) throw new InputError(file, where, 'expected a non-empty prompt: a string, {"prompt"}, {"text"} or {"messages"} with a user message');
    return prompt;
  });
}

/** Merges prompt lists, dropping exact duplicates (case and whitespace ignored); keeps first occurrences. */
export function uniquePrompts(lists: string[][]): { prompts: string[]; duplicates: number } {
  const seen = new Set<string>();
  const prompts: string[] = [];
  let duplicates = 0;
  for (const p of lists.flat()) {
    const key = normalizeForDedup(p);
    if (seen.has(key)) duplicates += 1;
    else {
      seen.add(key);
      prompts.push(p);
    }
  }
  return { prompts, duplicates };
}

export function loadGeneralPrompts(options: { files: string[]; includeShipped: boolean }, baseDir: string): { prompts: string[]; duplicates: number } {
  const lists = [...(options.includeShipped ? [loadPromptFile(SHIPPED.generalPrompts)] : []), ...options.files.map((f) => loadPromptFile(resolveFrom(baseDir, f)))];
  return uniquePrompts(lists);
}

export function loadReflectionPrompts(file: string | undefined, baseDir: string): string[] {
  const prompts = loadPromptFile(file ? resolveFrom(baseDir, file) : SHIPPED.selfReflection);
  if (prompts.length === 0) throw new InputError(file ?? SHIPPED.selfReflection, '(root)', 'expected at least one self-reflection prompt');
  return prompts;
}

/** Identity probes from the shipped set and users' files; ids are the file's or derived from the text. */
export function loadProbes(options: { files: string[]; includeShipped: boolean }, baseDir: string): Omit<ProbeRow, 'split'>[] {
  const files = [...(options.includeShipped ? [SHIPPED.identityProbes] : []), ...options.files.map((f) => resolveFrom(baseDir, f))];
  const probes = new Map<string, Omit<ProbeRow, 'split'>>();
  for (const file of files) {
    for (const { value, where } of readItems(file)) {
      const row = value as { id?: unknown; category?: unknown; prompt?: unknown };
      if (typeof row !== 'object' || row === null || typeof row.prompt !== 'string' || row.prompt.trim() === '') {
        throw new InputError(file, where, 'expected {"category": "direct"|"indirect"|"adversarial", "prompt": "..."}');
      }
      if (!PROBE_CATEGORIES.includes(row.category as ProbeRow['category'])) {
        throw new InputError(file, `${where}.category`, `expected one of ${PROBE_CATEGORIES.join(', ')}`);
      }
      const id = typeof row.id === 'string' && row.id ? row.id : textId('probe', row.prompt);
      if (!probes.has(id)) probes.set(id, { id, category: row.category as ProbeRow['category'], prompt: row.prompt.trim() });
    }
  }
  return [...probes.values()];
}

/**
 * Splits items into train and held-out, per group, deterministically by seed: each group's items are
 * ordered by sha256(seed:key) and the first round(n * fraction) are held out (at least one stays in
 * training). The two parts are disjoint by construction.
 */
export function splitHeldOut<T>(items: readonly T[], fraction: number, seed: number, keyOf: (item: T) => string, groupOf: (item: T) => string = () => ''): Map<T, Split> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const g = groupOf(item);
    groups.set(g, [...(groups.get(g) ?? []), item]);
  }
  const split = new Map<T, Split>();
  for (const group of groups.values()) {
    const ordered = seededOrder(group, seed, keyOf);
    const held = group.length < 2 ? 0 : Math.min(group.length - 1, Math.round(group.length * fraction));
    ordered.forEach((item, i) => split.set(item, i < held ? 'heldout' : 'train'));
  }
  return split;
}
