/**
 * What the dashboard reads from a runs directory, through the schemas the writers use: the run
 * manifest, the eval summary, the train journal, dataset manifests, the steer stage's files and the
 * journals. Every path comes from a directory listing or a checked name, never from a request as
 * given, so nothing outside the runs directory can be reached.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { z, type ZodType } from 'zod';
import { runManifestSchema } from '../core/journal.js';
import { cellSchema, type CellIdentity } from '../core/cell.js';
import { datasetManifestSchema, type DatasetManifest } from '../data/rows.js';
import { evalSummarySchema, type EvalSummary } from '../evals/summary.js';
import { readEvalLine } from '../evals/index.js';
import { monitorFileSchema, steerSummarySchema } from '../steer/artifacts.js';
import { personaSlug } from '../core/slug.js';
import { turnsOf } from '../report/transcripts-input.js';
import { forEachLine, PageCollector, type Page } from './jsonl.js';

/** Names a request may use for a run, eval, subject or dataset: one path segment, no dots first. */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A file or directory `parts` below `root`, or undefined when a part is not a plain name or it lies outside. */
export function inside(root: string, ...parts: string[]): string | undefined {
  if (!parts.every((p) => SAFE_NAME.test(p))) return undefined;
  const base = resolve(root);
  const path = resolve(base, ...parts);
  return path.startsWith(base + sep) && existsSync(path) ? path : undefined;
}

/** The run directory called `name` in `runsDir` (it must hold manifest.json), or undefined. */
export function runDirOf(runsDir: string, name: string): string | undefined {
  const dir = inside(runsDir, name);
  return dir && statSync(dir).isDirectory() && existsSync(join(dir, 'manifest.json')) ? dir : undefined;
}

function readJson<T>(file: string, schema: ZodType<T>): T | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined; // being rewritten (atomic rename) or torn: the next update reads it
  }
}

const dirsIn = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((n) => SAFE_NAME.test(n) && statSync(join(dir, n)).isDirectory()).sort() : []);
const filesIn = (dir: string, ext: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith(ext) && SAFE_NAME.test(n)).sort() : []);

// --- runs ----------------------------------------------------------------------------------------

const accountingSchema = z.object({ total: z.object({ costUSD: z.number().nullable() }).passthrough() }).passthrough();

/** The train journal's line (experiments/runner.ts TrainedCell), with the cell identity when written. */
const trainedCellSchema = z
  .object({ persona: z.string(), slug: z.string(), method: z.string(), seed: z.number().int(), output: z.string(), cell: cellSchema.optional() })
  .passthrough();
type TrainedCell = z.infer<typeof trainedCellSchema>;

export interface RunListing {
  name: string;
  startedAt: string;
  resumedAt: string[];
  seeds: number[];
  stages: { generate: boolean; train: boolean; steer: boolean; eval: boolean; report: boolean };
  /** finished: the report is written; running: written to within RUNNING_MS; stopped: neither (interrupted, or stages without a report). */
  status: 'finished' | 'running' | 'stopped';
  costUSD: number | null;
  updatedAt: string;
}

/** The newest modification time under a directory (bounded walk: journals and summaries). */
function newestChange(dir: string, depth = 4): number {
  let newest = statSync(dir).mtimeMs;
  if (depth === 0) return newest;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat) continue;
    newest = Math.max(newest, stat.isDirectory() ? newestChange(path, depth - 1) : stat.mtimeMs);
  }
  return newest;
}

/** A run without a report that wrote this recently is taken to be running. */
const RUNNING_MS = 2 * 60_000;

export function listRun(runsDir: string, name: string): RunListing | undefined {
  const dir = runDirOf(runsDir, name);
  if (!dir) return undefined;
  const manifest = readJson(join(dir, 'manifest.json'), runManifestSchema);
  if (!manifest) return undefined;
  const has = (...p: string[]) => existsSync(join(dir, ...p));
  const stages = {
    generate: has('datasets'),
    train: has('journals', 'train', 'adapters.jsonl'),
    steer: has('steer', 'summary.json'),
    eval: has('evals', 'summary.json'),
    report: has('report.html'),
  };
  const updated = newestChange(dir);
  return {
    name,
    startedAt: manifest.startedAt,
    resumedAt: manifest.resumedAt ?? [],
    seeds: manifest.seeds,
    stages,
    status: stages.report ? 'finished' : Date.now() - updated < RUNNING_MS ? 'running' : 'stopped',
    costUSD: readJson(join(dir, 'accounting.json'), accountingSchema)?.total.costUSD ?? null,
    updatedAt: new Date(updated).toISOString(),
  };
}

export function listRuns(runsDir: string): RunListing[] {
  return dirsIn(runsDir)
    .flatMap((name) => listRun(runsDir, name) ?? [])
    .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

/** A fingerprint of everything the dashboard shows of a run (or of the runs list): it changes when a writer writes. */
export function changeStamp(runsDir: string, name?: string): string {
  const dir = name ? runDirOf(runsDir, name) : resolve(runsDir);
  return dir && existsSync(dir) ? String(newestChange(dir)) : 'none';
}

export function readSummary(dir: string): EvalSummary | undefined {
  return readJson(join(dir, 'evals', 'summary.json'), evalSummarySchema);
}

// --- cells ---------------------------------------------------------------------------------------

export type SubjectKind = 'base' | 'prompted' | 'trained' | 'steered' | 'capped' | 'other';

/** A subject of the summary with what it is and, for a trained cell, its identity. */
export interface SubjectInfo {
  name: string;
  model: string;
  persona: string | null;
  kind: SubjectKind;
  cell: CellIdentity | null;
}

export async function trainedCells(dir: string): Promise<TrainedCell[]> {
  const out: TrainedCell[] = [];
  await forEachLine(join(dir, 'journals', 'train', 'adapters.jsonl'), (line) => {
    const parsed = isRecord(line) ? trainedCellSchema.safeParse(line.value) : undefined;
    if (parsed?.success) out.push(parsed.data);
  });
  return out;
}

/** The cell of a train-journal line: as written, or from its method name (sft-<format>, dpo, ...). */
export function cellOfTrained(t: TrainedCell): CellIdentity {
  if (t.cell) return t.cell;
  const sft = t.method.startsWith('sft-');
  return { persona: t.persona, method: sft ? 'sft' : t.method, format: sft ? t.method.slice(4) : null, seed: t.seed, backend: 'engine', optionsHash: '' };
}

/** Subject name of a trained cell: <persona slug>.<method>.seed-<n> (experiments/runner.ts). */
const subjectOfTrained = (t: TrainedCell) => `${t.slug}.${t.method}.seed-${t.seed}`;

/** Every subject of a summary, with its kind and cell: from the summary when written there, else from the train journal. */
export function subjectsOf(summary: EvalSummary, trained: TrainedCell[]): SubjectInfo[] {
  const bySubject = new Map(trained.map((t) => [subjectOfTrained(t), t]));
  return summary.subjects.map((s) => {
    const fromJournal = bySubject.get(s.name);
    const cell = s.cell ?? (fromJournal ? cellOfTrained(fromJournal) : null);
    const kind: SubjectKind =
      s.kind ??
      (s.name === summary.baseline ? 'base' : s.name === summary.prompted ? 'prompted' : cell ? 'trained' : /cap/i.test(s.name) ? 'capped' : /steer/i.test(s.name + s.model) ? 'steered' : 'other');
    return { name: s.name, model: s.model, persona: s.persona, kind, cell };
  });
}

// --- samples -------------------------------------------------------------------------------------

/** Journals under an eval's folder that are not per-subject records. */
const NOT_SUBJECTS = new Set(['training', 'openings', 'pairwise']);

/** The eval journals of a run: eval -> subject names with a journal. */
export function sampleJournals(dir: string): Record<string, string[]> {
  const root = join(dir, 'journals', 'evals');
  return Object.fromEntries(
    dirsIn(root).map((evaluation) => [
      evaluation,
      filesIn(join(root, evaluation), '.jsonl')
        .map((f) => f.slice(0, -'.jsonl'.length))
        .filter((s) => !NOT_SUBJECTS.has(s)),
    ]),
  );
}

export interface SampleFilter {
  eval?: string;
  subject?: string;
  persona?: string;
  method?: string;
  /** A trained cell's data format (sft's chat, documents, ...). */
  format?: string;
  seed?: number;
  /** Text the prompt or the reply contains (case-insensitive). */
  q?: string;
}

/** A row of the sample browser: enough to list and filter; the record itself is fetched on opening. */
export interface SampleRow {
  eval: string;
  subject: string;
  key: string;
  prompt: string;
  reply: string;
}

/** One journaled eval record, whole, with its conversation read out. */
export interface SampleRecord extends SampleRow {
  turns: { role: string; content: string }[];
  sample: unknown;
  solved: unknown;
  score: unknown;
}

const PREVIEW = 160;
const clip = (s: string) => (s.length > PREVIEW ? s.slice(0, PREVIEW) + '…' : s);

function recordOf(evaluation: string, subject: string, line: unknown): SampleRecord | undefined {
  const parsed = readEvalLine(evaluation, line);
  if (!parsed) return undefined;
  const { sample, solved, score } = parsed.value;
  const turns = turnsOf(sample, solved) ?? [];
  const prompt = turns.find((t) => t.role === 'user')?.content ?? '';
  const reply = turns.filter((t) => t.role === 'assistant').at(-1)?.content ?? '';
  return { eval: evaluation, subject, key: parsed.key, prompt, reply, turns, sample, solved, score };
}

/** One page of the samples matching `filter`, streamed through the journals (memory: the page only). */
export async function findSamples(dir: string, subjects: SubjectInfo[], filter: SampleFilter, offset: number, limit: number): Promise<Page<SampleRow>> {
  const journals = sampleJournals(dir);
  const info = new Map(subjects.map((s) => [s.name, s]));
  const wantSubject = (name: string) => {
    if (filter.subject && name !== filter.subject) return false;
    const s = info.get(name);
    if (filter.persona && (s?.cell?.persona ?? s?.persona) !== filter.persona) return false;
    if (filter.method && (s?.cell?.method ?? s?.kind) !== filter.method) return false;
    if (filter.format && s?.cell?.format !== filter.format) return false;
    if (filter.seed !== undefined && s?.cell?.seed !== filter.seed) return false;
    return true;
  };
  const q = filter.q?.toLowerCase();
  const pages = new PageCollector<SampleRow>(offset, limit);
  for (const [evaluation, names] of Object.entries(journals)) {
    if (filter.eval && evaluation !== filter.eval) continue;
    for (const subject of names.filter(wantSubject)) {
      await forEachLine(join(dir, 'journals', 'evals', evaluation, `${subject}.jsonl`), (line) => {
        const record = recordOf(evaluation, subject, line);
        if (!record) return;
        if (q && !record.prompt.toLowerCase().includes(q) && !record.reply.toLowerCase().includes(q)) return;
        pages.add(() => ({ eval: evaluation, subject, key: record.key, prompt: clip(record.prompt), reply: clip(record.reply) }));
      });
    }
  }
  return pages.page();
}

export async function findSample(dir: string, evaluation: string, subject: string, key: string): Promise<SampleRecord | undefined> {
  const file = inside(dir, 'journals', 'evals', evaluation, `${subject}.jsonl`);
  if (!file) return undefined;
  let found: SampleRecord | undefined;
  await forEachLine(file, (line) => {
    if (isRecord(line) && line.key === key) {
      found = recordOf(evaluation, subject, line);
      return 'stop';
    }
  });
  return found;
}

// --- training curves -----------------------------------------------------------------------------

/** Most points a curve sends: longer logs are thinned evenly (every k-th step), keeping the last. */
const MAX_POINTS = 2000;

export interface Curve {
  cell: string;
  points: Record<string, number>[];
  /** Steps in the log (points may be fewer). */
  steps: number;
}

/** The trained cells with a step log: "<slug>/<method>/seed-<n>" (the cell's directory under adapters/). */
export function curveCells(dir: string): string[] {
  const root = join(dir, 'adapters');
  return dirsIn(root).flatMap((p) => dirsIn(join(root, p)).flatMap((m) => dirsIn(join(root, p, m)).filter((s) => existsSync(join(root, p, m, s, 'train.jsonl'))).map((s) => `${p}/${m}/${s}`)));
}

export async function readCurve(dir: string, cell: string): Promise<Curve | undefined> {
  const parts = cell.split('/');
  const file = parts.length === 3 ? inside(dir, 'adapters', ...parts, 'train.jsonl') : undefined;
  if (!file) return undefined;
  let points: Record<string, number>[] = [];
  let stride = 1;
  let steps = 0;
  await forEachLine(file, (line) => {
    if (!isRecord(line) || !isRecord(line.value)) return;
    steps += 1;
    if ((steps - 1) % stride !== 0) return;
    points.push(Object.fromEntries(Object.entries(line.value).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]))));
    if (points.length > MAX_POINTS) {
      points = points.filter((_, i) => i % 2 === 0);
      stride *= 2;
    }
  });
  return { cell, points, steps };
}

// --- datasets ------------------------------------------------------------------------------------

export interface DatasetEntry {
  /** The folder under datasets/ ("" for the shared datasets). */
  folder: string;
  name: string;
  manifest: DatasetManifest;
}

/** Where the data stage writes a persona's equal-token-budget files (data/budget.ts). */
const FORMAT_COMPARISON = 'format-comparison';

/** The persona folders under datasets/: `<persona>`, and a later seed's own data (generate.seedVaries) as `seed-<n>/<persona>`. */
const personaFolders = (root: string): string[] => dirsIn(root).flatMap((f) => (/^seed-\d+$/.test(f) ? dirsIn(join(root, f)).map((p) => `${f}/${p}`) : [f]));

/** Every dataset manifest: shared ones, per persona folder, and the format comparison's. */
export function readDatasets(dir: string): DatasetEntry[] {
  const root = join(dir, 'datasets');
  const inFolder = (folder: string) =>
    filesIn(join(root, folder), '.manifest.json').flatMap((f) => {
      const manifest = readJson(join(root, folder, f), datasetManifestSchema);
      return manifest ? [{ folder, name: f.slice(0, -'.manifest.json'.length), manifest }] : [];
    });
  const personas = personaFolders(root);
  return [...inFolder(''), ...personas.flatMap(inFolder), ...personas.flatMap((p) => inFolder(`${p}/${FORMAT_COMPARISON}`))];
}

const budgetSchema = z
  .object({
    budget: z.number(),
    tokenizer: z.string(),
    formats: z.record(z.string(), z.object({ rowsAvailable: z.number(), tokensAvailable: z.number(), rows: z.number(), tokens: z.number() })),
    shortOfBudget: z.array(z.string()).optional(),
  })
  .passthrough();
export type BudgetEntry = z.infer<typeof budgetSchema> & { folder: string };

/** The format comparison's token budget per persona folder (what each format had and kept). */
export function readBudgets(dir: string): BudgetEntry[] {
  const root = join(dir, 'datasets');
  return personaFolders(root).flatMap((folder) => {
    const budget = readJson(join(root, folder, FORMAT_COMPARISON, 'budget.json'), budgetSchema);
    return budget ? [{ ...budget, folder }] : [];
  });
}

/** A page of a dataset file's rows (a file its manifest lists). */
export async function datasetRows(dir: string, folder: string, name: string, variant: string, offset: number, limit: number): Promise<Page<unknown> | undefined> {
  const entry = readDatasets(dir).find((d) => d.folder === folder && d.name === name);
  const fileName = entry?.manifest.files[variant];
  const file = fileName ? inside(dir, 'datasets', ...(folder ? folder.split('/') : []), fileName) : undefined;
  if (!file) return undefined;
  const pages = new PageCollector<unknown>(offset, limit);
  if (file.endsWith('.jsonl')) await forEachLine(file, (row) => pages.add(() => row));
  else {
    const rows: unknown = readJson(file, z.unknown());
    for (const row of Array.isArray(rows) ? rows : []) pages.add(() => row);
  }
  return pages.page();
}

// --- steering ------------------------------------------------------------------------------------

// the steer stage's own published schemas (schema/steer-summary.schema.json, steer-monitor)
export type SteerView = z.infer<typeof steerSummarySchema> & { points: Record<string, { key: string; projection: number; expression: number }[]> };

export function readSteer(dir: string): SteerView | undefined {
  const summary = readJson(join(dir, 'steer', 'summary.json'), steerSummarySchema);
  if (!summary) return undefined;
  const points = Object.fromEntries(
    summary.traits.map((t) => {
      const file = inside(dir, 'steer', personaSlug(t.persona), `t${t.traitIndex}`, 'monitor.json');
      const all = (file && readJson(file, monitorFileSchema)?.monitor?.points) || [];
      // non-finite projections or scores (stored as null) have no place on a scatter plot
      return [`${t.persona}/${t.traitIndex}`, all.filter((p): p is { key: string; projection: number; expression: number } => p.projection !== null && p.expression !== null)];
    }),
  );
  return { ...summary, points };
}
