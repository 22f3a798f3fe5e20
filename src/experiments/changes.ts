/**
 * Changed options are never silently kept. What made each result of a run (the data stage's
 * datasets, each trained cell, the eval stage's journals) is recorded in `<run>/options.json` with
 * the hash of those options. A rerun compares: unchanged work resumes; changed work is refused
 * (default) with the changed fields and how to start fresh, or - `--on-change redo` - done anew:
 * a cell is trained again beside the old one (its key and directory carry the new options' hash),
 * and the data or eval stage's old results are moved under `superseded/<hash>/` before it reruns.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { hashOptions } from '../core/cell.js';
import { InputError } from '../core/errors.js';
import { loadFile } from '../core/load.js';
import { writeFileAtomic } from '../core/journal.js';
import { generateOptionsSchema, type DatasetId } from '../data/options.js';
import { personaSlug } from '../core/slug.js';
import { trainingFile } from '../data/index.js';
import { backendOf, trainOptionsSchema } from '../train/options.js';
import { runOptionsSchema } from './config.js';
import type { LoadedExperiment } from './load.js';
import { methodOf, parentOf, stageOf, stageOptions } from './continued.js';
import { seedDataDir } from './seed-data.js';

export const ON_CHANGE = ['refuse', 'redo'] as const;
export type OnChange = (typeof ON_CHANGE)[number];

export const OPTIONS_FILE = 'options.json';

export const optionsRecordSchema = z
  .record(
    z.string().describe('What the options made: "generate", "eval", or "train/<persona>/<method>/seed-<n>[@<hash>]".'),
    z
      .object({
        hash: z.string().describe('hashOptions of `options`.'),
        options: z.unknown().describe('Every option that made it, under the experiment-file path it comes from.'),
        recordedAt: z.string(),
      })
      .strict(),
  )
  .describe('runs/<name>/options.json: the options that made each result of the run.');
export type OptionsRecord = z.infer<typeof optionsRecordSchema>;

export function readOptionsRecord(runDir: string): OptionsRecord {
  const path = join(runDir, OPTIONS_FILE);
  return existsSync(path) ? loadFile(path, optionsRecordSchema) : {};
}

/** Records what made `key` (the first record stays: a key's options never change). */
export function recordOptions(runDir: string, key: string, options: unknown): void {
  const record = readOptionsRecord(runDir);
  if (record[key]) return;
  record[key] = { hash: hashOptions(options), options, recordedAt: new Date().toISOString() };
  writeFileAtomic(join(runDir, OPTIONS_FILE), JSON.stringify(record, null, 2) + '\n');
}

const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));

/** The dotted paths where two option values differ, each with its old and new value. */
export function changedFields(before: unknown, after: unknown, path = ''): { field: string; before: unknown; after: unknown }[] {
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => changedFields(before[k], after[k], path ? `${path}.${k}` : k));
  }
  return hashOptions(before) === hashOptions(after) ? [] : [{ field: path || '(root)', before, after }];
}

/** How a keyed piece of work stands against the record: the same options, done anew under a variant, or refused. */
export interface Resolution {
  key: string;
  /** The key its results are stored under: `key`, or `key@<hash>` when redone with changed options. */
  storedKey: string;
  /** Set when the work is redone beside the old one: the new options' hash. */
  variant?: string;
  options: unknown;
}

/**
 * Compares each piece of work's options with what the run recorded for it. Work recorded with other
 * options (and not already redone under these) is refused with one InputError naming the experiment
 * file, the first changed field and how to go on; with `redo` it gets a variant key instead.
 */
export function resolveChanges(loaded: LoadedExperiment, work: { key: string; options: unknown }[], onChange: OnChange = 'refuse'): Resolution[] {
  const record = readOptionsRecord(loaded.runDir);
  return work.map(({ key, options }) => {
    const hash = hashOptions(options);
    const previous = record[key];
    if (!previous || previous.hash === hash) return { key, storedKey: key, options };
    const variant = hash.slice(0, 8);
    if (record[`${key}@${variant}`] || onChange === 'redo') return { key, storedKey: `${key}@${variant}`, variant, options };
    const changes = changedFields(previous.options, options);
    const listed = changes.slice(0, 4).map((c) => `${c.field} ${show(c.before)} -> ${show(c.after)}`).join(', ') + (changes.length > 4 ? `, and ${changes.length - 4} more` : '');
    throw new InputError(
      loaded.file,
      changes[0]?.field ?? '(root)',
      `${key} in ${loaded.runDir} was made with other options (${listed}); rerun with --on-change redo to make it anew beside the old results, restore the options, or start fresh with another output: directory`,
    );
  });
}

/** Moves a stage's old results under superseded/<hash>/ so a redo starts clean and the old stay readable. */
export function supersede(runDir: string, oldHash: string, relPaths: string[]): void {
  for (const rel of relPaths) {
    const from = join(runDir, rel);
    if (!existsSync(from)) continue;
    const to = join(runDir, 'superseded', oldHash.slice(0, 8), rel);
    mkdirSync(dirname(to), { recursive: true });
    renameSync(from, to);
  }
}

/** A stage redone with changed options: its old results move aside and its record goes with them. */
export function forget(runDir: string, key: string, relPaths: string[]): void {
  const record = readOptionsRecord(runDir);
  const old = record[key];
  if (!old) return;
  supersede(runDir, old.hash, relPaths);
  writeFileAtomic(join(runDir, 'superseded', old.hash.slice(0, 8), OPTIONS_FILE), JSON.stringify({ [key]: old }, null, 2) + '\n');
  delete record[key];
  for (const k of Object.keys(record)) if (k.startsWith(`${key}@`)) delete record[k];
  writeFileAtomic(join(runDir, OPTIONS_FILE), JSON.stringify(record, null, 2) + '\n');
}

const fileHash = (path: string) => (existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16) : null);

/** The options that make the data stage's datasets. */
export function generateOptionsOf(loaded: LoadedExperiment): unknown {
  const { experiment } = loaded;
  // generate.seedVaries off is recorded as runs made before the option were, so they resume unchanged.
  const { seedVaries, ...generate } = generateOptionsSchema.parse(experiment.generate ?? {});
  return {
    generate: seedVaries ? { ...generate, seedVaries } : generate,
    models: { subject: experiment.models.subject, teacher: experiment.models.teacher ?? null },
    seeds: experiment.seeds,
    constitutions: loaded.constitutions.map((c) => c.constitution),
  };
}

/**
 * The data stage's check: unchanged (or never recorded) options go on; changed ones are refused, or
 * with `redo` the old datasets and data journals are superseded. Returns the recorder to call once
 * the stage may write.
 */
export function checkGenerateChanges(loaded: LoadedExperiment, onChange: OnChange = 'refuse'): () => void {
  const options = generateOptionsOf(loaded);
  const [resolution] = resolveChanges(loaded, [{ key: 'generate', options }], onChange);
  return () => {
    if (resolution.variant) forget(loaded.runDir, 'generate', ['datasets', join('journals', 'generate')]);
    recordOptions(loaded.runDir, 'generate', options);
  };
}

/** The eval stage's check, as the data stage's: eval options and the models that judge and play the user. */
export function checkEvalChanges(loaded: LoadedExperiment, evalOptions: unknown, onChange: OnChange = 'refuse'): () => void {
  const m = loaded.experiment.models;
  const options = {
    eval: evalOptions,
    models: { subject: m.subject, judge: m.judge ?? m.teacher ?? m.subject, secondJudge: m.secondJudge ?? null, userSimulator: m.userSimulator ?? m.teacher ?? m.subject },
    run: { subjects: (loaded.experiment.run ?? runOptionsSchema.parse({})).subjects },
    // steered and capped subjects are what the steer options made
    ...(loaded.experiment.steer ? { steer: loaded.experiment.steer } : {}),
  };
  const [resolution] = resolveChanges(loaded, [{ key: 'eval', options }], onChange);
  return () => {
    if (resolution.variant) forget(loaded.runDir, 'eval', ['evals', join('journals', 'evals')]);
    recordOptions(loaded.runDir, 'eval', options);
  };
}

type CellOf = { persona: string; slug: string; method: string; format: string | null; seed: number; members?: string[] };

/**
 * Everything that trains a cell: the method's options (see the method registry), the training
 * backend and its options, the base model (path and config), the generation hashes of the datasets
 * it reads (from their manifests), and the options of the cells it builds on. Seed, persona, method
 * and format are the cell's key already.
 */
export function cellOptions(loaded: LoadedExperiment, cell: CellOf, basePath: string): unknown {
  const train = trainOptionsSchema.parse(loaded.experiment.train ?? {});
  const run = loaded.experiment.run ?? runOptionsSchema.parse({});
  const method = methodOf(run, cell.method, loaded.file);
  const stage = stageOf(run, cell.method);
  const hashOf = (slug: string, d: DatasetId) => trainingFile(join(loaded.runDir, 'datasets'), slug, d, seedDataDir(loaded, cell.seed))?.manifest.configHash ?? null;
  // A mixture cell reads each member's datasets, keyed <slug>/<dataset>.
  const datasets = cell.members ? cell.members.map(personaSlug).flatMap((slug) => method.datasets(cell.format).map((d) => [`${slug}/${d}`, hashOf(slug, d)])) : method.datasets(cell.format).map((d) => [d, hashOf(cell.slug, d)]);
  const requires = (method.requires ?? []).map((m) => cellOptions(loaded, { ...cell, method: m, format: null }, basePath));
  // A run.continue stage: its own options, and everything that trained the cell it starts from.
  if (stage) requires.push(cellOptions(loaded, { ...cell, ...parentOf(run, stage, loaded.file) }, basePath));
  const own = (stage ? stageOptions(loaded, stage, cell.slug, cell.seed, train) : method.options(train, run, loaded.experiment)) as { train?: Record<string, unknown> };
  return {
    ...own,
    train: { ...own.train, ...backendOf(train, cell.method) },
    base: { path: basePath, config: fileHash(join(basePath, 'config.json')) },
    datasets: Object.fromEntries(datasets),
    ...(requires.length > 0 ? { requires } : {}),
  };
}

/** The variant a cell was last trained under in this run (read-only; undefined: its plain key). */
export function cellVariant(loaded: LoadedExperiment, key: string, cell: CellOf, basePath: string): string | undefined {
  const previous = readOptionsRecord(loaded.runDir)[`train/${key}`];
  const hash = cellOptionsHash(loaded, cell, basePath);
  return !previous || previous.hash === hash ? undefined : hash.slice(0, 8);
}

/** The hash a cell is keyed by: what trained it (see cellOptions). */
export function cellOptionsHash(loaded: LoadedExperiment, cell: CellOf, basePath: string): string {
  return hashOptions(cellOptions(loaded, cell, basePath));
}

/**
 * The train stage's check over the matrix: each cell with its resolution (a variant when redone with
 * changed options), and the recorder to call when a cell starts training (so an interrupted cell
 * resumes only under the options that began it).
 */
export function checkCellChanges<C extends CellOf>(
  loaded: LoadedExperiment,
  cells: C[],
  keyOf: (c: C) => string,
  basePath: string,
  onChange: OnChange = 'refuse',
): { cells: (C & { variant?: string })[]; record(cell: C & { variant?: string }): void } {
  const resolutions = resolveChanges(
    loaded,
    cells.map((c) => ({ key: `train/${keyOf(c)}`, options: cellOptions(loaded, c, basePath) })),
    onChange,
  );
  const out = cells.map((c, i) => (resolutions[i].variant ? { ...c, variant: resolutions[i].variant } : c));
  const byCell = new Map<C & { variant?: string }, Resolution>(out.map((c, i) => [c, resolutions[i]]));
  return {
    cells: out,
    record(cell) {
      const r = byCell.get(cell);
      if (r) recordOptions(loaded.runDir, r.storedKey, r.options);
    },
  };
}
