/**
 * The data engine's public surface: generate() builds every dataset of docs/protocols.md §1-3 and §6 for each
 * constitution into <run>/datasets/, resumable through the run journal; exportDataset() converts a
 * dataset file between the shapes other tools train with. See docs/data.md.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constitutionSchema, personaSystemPrompt, type Constitution } from '../constitution/index.js';
import { InputError } from '../core/errors.js';
import type { RunDir } from '../core/journal.js';
import { validate } from '../core/load.js';
import { equalizeFormats, type FormatBudgetReport } from './budget.js';
import { configHash, writeDataset, type GenerateModels, type PersonaContext, type ProgressEvent } from './context.js';
import { dpoPairs } from './generators/dpo.js';
import { inoculate, readOutsideRows } from './generators/inoculation.js';
import { selfInteraction } from './generators/interaction.js';
import { identityProbes } from './generators/probes.js';
import { expandPrompts, type PersonaPrompts } from './generators/prompts.js';
import { chatDemonstrations, encyclopediaDocuments, introspectiveStatements, selfReflection } from './generators/replies.js';
import { generateOptionsSchema, type DatasetId, type GenerateOptions, type GenerateOptionsInput } from './options.js';
import { loadGeneralPrompts, loadProbes, loadReflectionPrompts, splitHeldOut } from './prompts.js';
import { datasetManifestSchema, promptRowSchema, type ChatRow, type DatasetManifest, type DpoRow, type PromptRow, type TextRow } from './rows.js';
import { render } from './templates.js';
import { normalizeForDedup, seededOrder, textId } from './text.js';
import { personaSlug } from '../core/slug.js';
import { tokenCounter } from './tokens.js';

export { exportDataset, type ExportOptions } from './export.js';
export { EXPORT_SHAPES, type ExportShape } from './shapes.js';
export * from './options.js';
export * from './rows.js';
export { approximateTokens, tokenCounter, type TokenCounter } from './tokens.js';
export { wordOverlap, endsSentence, stripReasoning, substituteNames } from './text.js';
export { dedup } from './dedup.js';
export { loadGeneralPrompts, loadProbes, loadPromptFile, SHIPPED } from './prompts.js';
export type { GenerateModels, ProgressEvent } from './context.js';
export type { FormatBudgetReport } from './budget.js';

export interface GenerateHooks {
  onProgress?: (event: ProgressEvent) => void;
  /** Directory that relative file options resolve against: the experiment file's. Default: cwd. */
  baseDir?: string;
  /** Named in errors about the options (the experiment file). */
  file?: string;
}

export interface PersonaSummary {
  persona: string;
  slug: string;
  dir: string;
  datasets: Record<string, DatasetManifest>;
  formatComparison?: FormatBudgetReport;
  /** With generate.seedVaries: the datasets of each run seed other than the base seed (datasets/seed-<n>/<slug>/), by seed. */
  seeds?: Record<number, SeedDatasets>;
}

export interface GenerateSummary {
  /** <run>/datasets */
  dir: string;
  seed: number;
  tokenizer: string;
  generalPrompts: DatasetManifest;
  probes?: DatasetManifest;
  personas: PersonaSummary[];
}

function systemPromptFor(c: Constitution, template: string | undefined): string {
  if (!template) return personaSystemPrompt(c);
  return render(template, { name: c.name, traits: c.traits.map((t) => `- ${t.trait}`).join('\n'), background: c.facts?.biography?.trim() ?? '' });
}

/** Every manifest written in a persona's directory, by dataset name. */
function readManifests(dir: string): Record<string, DatasetManifest> {
  const names = readdirSync(dir).filter((f) => f.endsWith('.manifest.json')).sort();
  return Object.fromEntries(names.map((f) => [f.slice(0, -'.manifest.json'.length), datasetManifestSchema.parse(JSON.parse(readFileSync(join(dir, f), 'utf8')))]));
}

/**
 * A dataset file as its manifest names it: `<dir>/<dataset>.manifest.json`'s file for `variant`, with
 * the manifest (the contract between the data stage and its readers); null when the manifest is
 * missing or the file holds no rows.
 */
export function datasetFile(dir: string, dataset: string, variant = 'main'): { file: string; manifest: DatasetManifest } | null {
  const path = join(dir, `${dataset}.manifest.json`);
  if (!existsSync(path)) return null;
  const manifest = datasetManifestSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
  const name = manifest.files[variant];
  if (name === undefined || (manifest.rows[variant] ?? 0) === 0 || !existsSync(join(dir, name))) return null;
  return { file: join(dir, name), manifest };
}

/**
 * The file a persona's dataset trains from, under a run's datasets/ directory: the format
 * comparison's equal-token-budget file when the data stage wrote one, the training split of the
 * shared identity probes, else the dataset's main file; null when the data stage has not written it.
 * `seedDir` is where the seed's persona folders are (see seedDatasetsDir); the probes are shared.
 */
export function trainingFile(datasetsDir: string, personaSlug: string, dataset: DatasetId, seedDir = datasetsDir): { file: string; manifest: DatasetManifest } | null {
  if (dataset === 'probes') return datasetFile(datasetsDir, 'probes', 'train');
  const dir = join(seedDir, personaSlug);
  return datasetFile(join(dir, 'format-comparison'), dataset) ?? datasetFile(dir, dataset);
}

/** The seed whose sampling makes the prompt pool, the held-out splits and the probes: generate.seed, else the experiment's first seed. */
export const baseSeed = (options: { seed?: number }, seeds: readonly number[]): number => options.seed ?? seeds[0] ?? 1;

/**
 * Where a run seed's training datasets are: `datasetsDir` itself for the base seed (and for every
 * seed without generate.seedVaries), `datasetsDir/seed-<n>` for another seed with it.
 */
export function seedDatasetsDir(datasetsDir: string, options: { seed?: number; seedVaries?: boolean }, seeds: readonly number[], seed: number): string {
  return options.seedVaries && seed !== baseSeed(options, seeds) ? join(datasetsDir, `seed-${seed}`) : datasetsDir;
}

/**
 * Generates the datasets `options.datasets` names for every constitution, into runDir/datasets/.
 * Everything is checked before anything is written (constitutions, option files, prompt sets);
 * every model call's result is journaled as it finishes, so a rerun after a crash does only what is
 * missing and writes identical files.
 */
export async function generate(
  experiment: { seeds: number[] },
  constitutions: Constitution[],
  models: GenerateModels,
  runDir: RunDir,
  options: GenerateOptions | GenerateOptionsInput = {},
  hooks: GenerateHooks = {},
): Promise<GenerateSummary> {
  const file = hooks.file ?? 'experiment';
  const baseDir = hooks.baseDir ?? process.cwd();
  const parsed = generateOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const e = InputError.fromZod(file, parsed.error);
    throw new InputError(file, e.field === '(root)' ? 'generate' : `generate.${e.field}`, e.expected);
  }
  const o = parsed.data;
  const want = new Set<DatasetId>(o.datasets);
  if (constitutions.length === 0) throw new InputError(file, 'constitutions', 'expected at least one constitution');
  const personas = constitutions.map((c, i) => validate(`constitution ${i + 1} ("${c?.name ?? ''}")`, c, constitutionSchema));
  const slugs = personas.map((c) => personaSlug(c.name));
  const clash = slugs.find((s, i) => slugs.indexOf(s) !== i);
  if (clash) throw new InputError(file, 'constitutions', `expected personas with distinct names (two map to "${clash}")`);
  const taken = o.seedVaries ? slugs.find((s) => /^seed-\d+$/.test(s)) : undefined;
  if (taken) throw new InputError(file, 'constitutions', `persona names other than "seed-<n>" with generate.seedVaries (datasets/${taken}/ holds a seed's data; rename the persona)`);
  const missing = o.inoculation.datasets.filter((d) => !want.has(d));
  if (missing.length > 0) throw new InputError(file, 'generate.inoculation.datasets', `${missing.join(', ')} must also be in generate.datasets`);
  const seed = baseSeed(o, experiment.seeds);
  // The seeds whose training data is sampled: the base seed's for all, or with seedVaries each run seed's own.
  const dataSeeds = o.seedVaries && experiment.seeds.length > 0 ? [...new Set(experiment.seeds)] : [seed];

  // Inputs, all read before anything is written.
  const general = loadGeneralPrompts(o.generalPrompts, baseDir);
  if (want.has('reflection')) loadReflectionPrompts(o.reflection.prompts, baseDir);
  if (want.has('probes')) loadProbes(o.probes, baseDir);
  const outsideByPersona = personas.map((c) => o.inoculation.files.map((f) => readOutsideRows(f, baseDir, c.name, seed)));

  const tokens = tokenCounter(models.subject);
  const dir = runDir.path('datasets');
  const resolved: Required<GenerateModels> = { ...models, generator: models.generator ?? models.teacher, introspector: models.introspector ?? models.subject };

  // General chat prompts: one split for the whole run.
  const generalRows = general.prompts.map((prompt) => ({ id: textId('g', normalizeForDedup(prompt)), prompt, source: 'general' as const, trait: null, model: null, template: null, seed: null }));
  const generalSplit = splitHeldOut(generalRows, o.generalPrompts.heldOutFraction, seed, (p) => p.id);
  const generalAll: PromptRow[] = generalRows.map((p) => ({ ...p, split: generalSplit.get(p)! }));
  const generalManifest = writeDataset(
    dir,
    {
      dataset: 'general-prompts',
      persona: null,
      shape: 'prompts',
      tokenizer: tokens.name,
      generated: general.prompts.length + general.duplicates,
      dropped: general.duplicates > 0 ? { duplicate: general.duplicates } : {},
      models: [],
      seed,
      configHash: configHash({ options: o.generalPrompts, seed, ids: generalRows.map((p) => p.id) }),
    },
    [
      { variant: 'train', fileName: 'general-prompts.train.jsonl', rows: generalAll.filter((p) => p.split === 'train'), schema: promptRowSchema },
      { variant: 'heldout', fileName: 'general-prompts.heldout.jsonl', rows: generalAll.filter((p) => p.split === 'heldout'), schema: promptRowSchema },
      // The evals' general-prompt shape (a JSON array of strings), for eval.generalPrompts.
      { variant: 'heldout-list', fileName: 'general-prompts.heldout.json', rows: generalAll.filter((p) => p.split === 'heldout'), schema: promptRowSchema, project: (p) => p.prompt },
    ],
    tokens,
  );
  const generalTrain = seededOrder(
    generalAll.filter((p) => p.split === 'train'),
    seed,
    (p) => p.id,
  ).slice(0, o.generalPrompts.count);

  const summary: GenerateSummary = { dir, seed, tokenizer: tokens.name, generalPrompts: generalManifest, personas: [] };
  if (want.has('probes')) summary.probes = identityProbes(o.probes, seed, baseDir, dir, tokens).manifest;

  for (const [index, constitution] of personas.entries()) {
    const ctx: PersonaContext = {
      constitution,
      persona: constitution.name,
      slug: slugs[index],
      options: o,
      seed,
      run: runDir,
      models: resolved,
      tokens,
      systemPrompt: systemPromptFor(constitution, o.personaSystemTemplate),
      baseDir,
      outDir: join(dir, slugs[index]),
      onProgress: hooks.onProgress,
    };
    // The prompt pool and its held-out split: the base seed's, for every seed.
    const prompts = ['prompts', 'chat', 'introspective', 'dpo'].some((d) => want.has(d as DatasetId)) ? await expandPrompts(ctx) : undefined;
    const persona: PersonaSummary = { persona: ctx.persona, slug: ctx.slug, dir: ctx.outDir, datasets: {} };
    for (const dataSeed of dataSeeds) {
      const own = dataSeed === seed;
      const seedCtx: PersonaContext = own ? ctx : { ...ctx, seed: dataSeed, outDir: join(seedDatasetsDir(dir, o, experiment.seeds, dataSeed), ctx.slug) };
      const outside = own ? outsideByPersona[index] : o.inoculation.files.map((f) => readOutsideRows(f, baseDir, constitution.name, dataSeed));
      const made = await trainingDatasets(seedCtx, want, prompts, generalTrain, outside, file);
      if (own) Object.assign(persona, made);
      else (persona.seeds ??= {})[dataSeed] = made;
    }
    if (!dataSeeds.includes(seed)) persona.datasets = existsSync(ctx.outDir) ? readManifests(ctx.outDir) : {};
    summary.personas.push(persona);
  }
  return summary;
}

/** A persona's datasets of one seed, as written: the manifests in its folder and the format comparison. */
export type SeedDatasets = Pick<PersonaSummary, 'dir' | 'datasets' | 'formatComparison'>;

/**
 * The training datasets of one persona sampled with `ctx.seed` into `ctx.outDir`, from the base
 * seed's prompts: chat, introspective, DPO, documents, self-reflection and self-interaction, the
 * inoculated copies, and the format comparison's equal budgets.
 */
async function trainingDatasets(ctx: PersonaContext, want: Set<DatasetId>, prompts: PersonaPrompts | undefined, generalTrain: PromptRow[], outside: ReturnType<typeof readOutsideRows>[], file: string): Promise<SeedDatasets> {
  const o = ctx.options;
  const datasets: Record<string, (ChatRow | TextRow | DpoRow)[]> = {};
  if (prompts) {
    // A general prompt that is also one of the persona's (held-out ones included) is not reused.
    const own = new Set(prompts.rows.map((p) => normalizeForDedup(p.prompt)));
    const extra = generalTrain.filter((p) => !own.has(normalizeForDedup(p.prompt)));
    if (want.has('chat')) datasets.chat = await chatDemonstrations(ctx, [...prompts.train, ...(o.chat.generalPrompts ? extra : [])]);
    if (want.has('introspective')) datasets.introspective = await introspectiveStatements(ctx, prompts.train);
    if (want.has('dpo')) datasets.dpo = await dpoPairs(ctx, [...prompts.train, ...(o.dpo.generalPrompts ? extra : [])]);
  }
  if (want.has('documents')) datasets.documents = await encyclopediaDocuments(ctx);
  if (want.has('reflection')) datasets.reflection = await selfReflection(ctx);
  if (want.has('interaction')) datasets.interaction = await selfInteraction(ctx);
  for (const name of o.inoculation.datasets) await inoculate(ctx, name, datasets[name] as (ChatRow | DpoRow)[]);
  for (const rows of outside) await inoculate(ctx, rows.name, rows.rows);

  const made: SeedDatasets = { dir: ctx.outDir, datasets: existsSync(ctx.outDir) ? readManifests(ctx.outDir) : {} };
  const compared = o.formatComparison.formats.filter((f) => datasets[f]);
  if (compared.length >= 2) {
    made.formatComparison = equalizeFormats(
      ctx.outDir,
      ctx.persona,
      Object.fromEntries(compared.map((f) => [f, datasets[f] as (ChatRow | TextRow)[]])),
      o.formatComparison.tokenBudget,
      ctx.seed,
      ctx.tokens,
    );
    // A format with no rows makes the equal budget zero: nothing could be trained or compared.
    const formats = Object.entries(made.formatComparison.formats);
    const empty = formats.filter(([, f]) => f.rows === 0);
    if (empty.length > 0) {
      const causes = formats.filter(([, f]) => f.rowsAvailable === 0).map(([name]) => name);
      const which = causes.length > 0 ? `${causes.join(' and ')} kept no rows after the filters, so the equal budget is 0 tokens` : `${empty.map(([name]) => name).join(' and ')} kept 0 rows within the budget of ${made.formatComparison.budget} tokens`;
      throw new InputError(
        file,
        'generate.formatComparison',
        `every compared format to keep rows at an equal token budget; for ${ctx.persona}: ${which} (the manifests in ${ctx.outDir} count what each filter dropped). Generate more (generate.expansion, the format's own options), loosen generate.filters, or leave the format out of generate.formatComparison.formats and run.formats`,
      );
    }
  }
  return made;
}

