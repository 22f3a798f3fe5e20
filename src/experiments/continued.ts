/**
 * Continued training: a cell trained further from another cell of the same persona and seed
 * (`run.continue`). The earlier cell's weights (its adapters merged into its model) are the start; a
 * fresh LoRA adapter trains on them with SFT on other data, or GRPO on another reward. `merge` keeps
 * the merged start as the new cell's model; `stack` keeps the earlier adapters separate beneath the
 * new one (the same function, stored without a merged copy). Each stage is a cell of the matrix
 * (method = the stage's name), evaluated like any other, so the eval stage's paired contrasts
 * between its method and the earlier cell's measure what the further training changed.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { InputError } from '../core/errors.js';
import { writeFileAtomic } from '../core/journal.js';
import { personaSlug } from '../core/slug.js';
import { datasetFile } from '../data/index.js';
import type { LocalModelRef } from '../providers/index.js';
import { grpoOptionsSchema, sftOptionsSchema } from '../train/options.js';
import type { RunOptions } from './config.js';
import type { TrainedCell } from './cells.js';
import type { LoadedExperiment } from './load.js';
import { seedDataDir } from './seed-data.js';
import { cellLabel, METHODS, plannedMethods } from './methods/index.js';
import type { TrainingMethod } from './methods/types.js';
import { rewardClassifiers } from './reward-classifiers.js';

/** One stage of continued training (an entry of run.continue). */
export const continuedStageSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_]*$/, 'expected a name of lower-case letters, digits or "_" (it names the cell: adapters/<persona>/<name>/seed-<n>)')
      .describe('The stage\'s method name: its cells are adapters/<persona>/<name>/seed-<n>.'),
    from: z.string().min(1).describe('The cell it trains further, as its directory names it: a method of run.methods (dpo, dpo-introspection, grpo), sft-<format>, or an earlier stage\'s name.'),
    mode: z.enum(['merge', 'stack']).default('merge').describe('merge: the earlier cell merged into its model is the new cell\'s model; stack: the earlier adapters stay separate beneath the new one.'),
    objective: z.enum(['sft', 'grpo']).default('sft').describe('sft on the stage\'s data, or grpo on its prompts with train.grpo (override its rewards in `options` for an unrelated reward).'),
    file: z.string().min(1).optional().describe('The data: a JSONL file (messages rows for sft; prompt or messages rows for grpo), relative to the experiment file.'),
    dataset: z.string().min(1).optional().describe('The data: a dataset the data stage wrote for the persona, by its manifest name (chat, introspective, chat.inoculated, file-<name>.inoculated, ...).'),
    options: z.record(z.string(), z.unknown()).default({}).describe('Options over train.<objective> for this stage only (lora, optimizer, epochs, rewards, ...).'),
  })
  .strict()
  .refine((s) => (s.file === undefined) !== (s.dataset === undefined), { message: 'expected exactly one of file or dataset (the data the stage trains on)' });
export type ContinuedStage = z.infer<typeof continuedStageSchema>;

/** Where a continued cell starts, as the train journal keeps it (paths relative to the run directory). */
export const cellStartSchema = z
  .object({
    from: z.object({ method: z.string(), format: z.string().nullable() }).strict().describe('The cell it was trained from (same persona and seed).'),
    mode: z.enum(['merge', 'stack']),
    model: z.string().nullable().describe('The model directory its adapter applies to; null: the run\'s subject model.'),
    adapters: z.array(z.string()).describe('Adapters applied beneath its own, in order (stack).'),
  })
  .strict();
export type CellStart = z.infer<typeof cellStartSchema>;

export const continuedStages = (run: RunOptions): ContinuedStage[] => run.continue ?? [];

/** The stage named `method`, or undefined for a method of the registry. */
export const stageOf = (run: RunOptions, method: string): ContinuedStage | undefined => (Object.hasOwn(METHODS, method) ? undefined : continuedStages(run).find((s) => s.name === method));

/** Cell labels the matrix trains before stage `index`: the registry methods' cells and earlier stages. */
function labelsBefore(run: RunOptions, index: number): Map<string, { method: string; format: string | null }> {
  const labels = new Map<string, { method: string; format: string | null }>();
  for (const method of plannedMethods(run)) for (const format of METHODS[method].formats(run)) labels.set(cellLabel(method, format), { method, format });
  for (const s of continuedStages(run).slice(0, index)) labels.set(s.name, { method: s.name, format: null });
  return labels;
}

/** The cell (method, format) a stage trains from; InputError naming run.continue[i].from when the matrix has none. */
export function parentOf(run: RunOptions, stage: ContinuedStage, file: string): { method: string; format: string | null } {
  const index = continuedStages(run).indexOf(stage);
  const labels = labelsBefore(run, index);
  const found = labels.get(stage.from);
  if (!found) throw new InputError(file, `run.continue[${index}].from`, `a cell the matrix trains before this stage (${[...labels.keys()].join(', ') || 'none: run.methods is empty'}), found "${stage.from}"`);
  return found;
}

/** Checks run.continue against the matrix's methods before anything is written. */
export function checkStages(run: RunOptions, file: string): void {
  const seen = new Set<string>();
  continuedStages(run).forEach((stage, i) => {
    if (Object.hasOwn(METHODS, stage.name) || seen.has(stage.name)) throw new InputError(file, `run.continue[${i}].name`, `a name no method and no other stage has, found "${stage.name}"`);
    seen.add(stage.name);
    parentOf(run, stage, file);
    const schema = stage.objective === 'sft' ? sftOptionsSchema : grpoOptionsSchema;
    const parsed = schema.safeParse(stage.options);
    if (!parsed.success) {
      const e = InputError.fromZod(file, parsed.error);
      throw new InputError(file, `run.continue[${i}].options.${e.field}`, e.expected);
    }
    if (stage.file !== undefined && !existsSync(resolve(dirname(file), stage.file))) throw new InputError(file, `run.continue[${i}].file`, `a JSONL file (relative to the experiment file), not found at ${resolve(dirname(file), stage.file)}`);
  });
}

/** A method of the registry, or the method of the run.continue stage of that name. */
export function methodOf(run: RunOptions, name: string, file: string): TrainingMethod {
  if (Object.hasOwn(METHODS, name)) return METHODS[name];
  const stage = stageOf(run, name);
  if (!stage) throw new InputError(file, 'run', `a method or run.continue stage named "${name}"`);
  return continuedMethod(stage, parentOf(run, stage, file));
}

/** The data file a stage's cell of `slug` trains on, or null when the data stage has not written it. */
function stageDataFile(loaded: LoadedExperiment, stage: ContinuedStage, slug: string, seed: number): string | null {
  if (stage.file !== undefined) return resolve(dirname(loaded.file), stage.file);
  return datasetFile(join(seedDataDir(loaded, seed), slug), stage.dataset!)?.file ?? null;
}

/** Every stage's data exists for each persona it trains, before anything is written. */
export function checkStageData(loaded: LoadedExperiment, cells: { persona: string; slug: string; method: string; seed: number }[]): void {
  const run = loaded.experiment.run;
  if (!run) return;
  for (const c of cells) {
    const stage = stageOf(run, c.method);
    if (stage && !stageDataFile(loaded, stage, c.slug, c.seed)) {
      throw new InputError(join(seedDataDir(loaded, c.seed), c.slug), stage.dataset!, `the ${stage.dataset} dataset of ${c.persona} that run.continue stage ${stage.name} trains on (not found or empty: generate it; an inoculated copy needs generate.inoculation)`);
    }
  }
}

/** The stage's own options (part of its cells' options hash): the stage, its objective's options and its data's content hash. */
export function stageOptions(loaded: LoadedExperiment, stage: ContinuedStage, slug: string, seed: number, train: Record<string, unknown>): unknown {
  const data = stageDataFile(loaded, stage, slug, seed);
  const content = data && existsSync(data) ? createHash('sha256').update(readFileSync(data)).digest('hex').slice(0, 16) : null;
  return { stage, train: { [stage.objective]: objectiveOptions(stage, train) }, data: content };
}

function objectiveOptions(stage: ContinuedStage, train: Record<string, unknown>): unknown {
  const schema = stage.objective === 'sft' ? sftOptionsSchema : grpoOptionsSchema;
  return schema.parse({ ...(train[stage.objective] as object), ...stage.options });
}

/** The model a trained cell is: its model directory (or the run's subject) with its adapters, earlier ones first. */
export function cellModelRef(runDir: string, base: LocalModelRef, cell: Pick<TrainedCell, 'output' | 'kind' | 'start'>): LocalModelRef {
  const output = resolve(runDir, cell.output);
  if (cell.kind === 'model') return { provider: 'local', path: output, adapters: [], concurrency: base.concurrency };
  const path = cell.start?.model ? resolve(runDir, cell.start.model) : base.path;
  const beneath = (cell.start?.adapters ?? []).map((a) => ({ path: resolve(runDir, a), scale: 1 }));
  return { provider: 'local', path, adapters: [...beneath, { path: output, scale: 1 }], concurrency: base.concurrency };
}

/** GRPO prompt rows from prompt rows or conversations (the turns before the last assistant reply). */
function promptRows(file: string): string {
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line, i) => {
      const row = JSON.parse(line) as { prompt?: unknown; messages?: { role: string; content: string }[] };
      if (row.prompt !== undefined) return { prompt: row.prompt };
      const messages = row.messages ?? [];
      const last = messages.map((m) => m.role).lastIndexOf('assistant');
      const turns = last > 0 ? messages.slice(0, last) : messages.filter((m) => m.role !== 'assistant');
      if (turns.length === 0) throw new InputError(file, `line ${i + 1}`, 'a prompt or a messages row with a user turn');
      return { prompt: turns };
    });
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/** The training method of one stage: a fresh adapter on the earlier cell's merged weights. */
export function continuedMethod(stage: ContinuedStage, parent: { method: string; format: string | null }): TrainingMethod {
  return {
    formats: () => [null],
    datasets: () => [],
    options: () => ({}),
    async train({ ctx, cell, dir, base, train, backend, cellDir, job, constitution }) {
      const { loaded, run } = ctx;
      const { trainJournal } = await import('./cells.js');
      const parentDir = cellDir(parent.method, parent.format);
      const earlier = trainJournal(run)
        .values()
        .find((c) => c.cell.persona === cell.persona && c.cell.seed === cell.seed && resolve(run.dir, c.output).startsWith(parentDir + '/'));
      if (!earlier) throw new Error(`train: the cell ${cell.persona} ${cellLabel(parent.method, parent.format)} seed ${cell.seed} that ${stage.name} trains from has not finished (it trains first)`);
      const data = stageDataFile(loaded, stage, personaSlug(cell.persona), cell.seed);
      if (!data) throw new Error(`train: the ${stage.dataset} dataset of ${cell.persona} (run.continue ${stage.name}) is missing or empty under ${run.path('datasets')}: add it to generate (an inoculated copy needs generate.inoculation)`);
      const parentRef = cellModelRef(run.dir, base, earlier);
      // The start: the earlier cell's adapters merged into its model (rewritten if a kill left none).
      const start = join(dir, 'start');
      if (!existsSync(join(start, 'config.json'))) {
        const { exportModel } = await import('../engine/export.js');
        // float32, so the start is the earlier cell's function exactly (not rounded to the base's dtype).
        exportModel(parentRef, 'hf', start, { dtype: 'F32' });
      }
      let dataset = data;
      if (stage.objective === 'grpo') {
        dataset = join(dir, 'prompts.jsonl');
        writeFileAtomic(dataset, promptRows(data));
      }
      const own = { ...(train[stage.objective] as object), ...stage.options };
      const rl = async () => {
        const options = grpoOptionsSchema.parse(own);
        const names = options.rewards.flatMap((r) => (r.kind === 'classifier' ? [r.classifier!] : []));
        return backend.train({ ...job, model: start, objective: 'grpo', options, dataset, judge: await ctx.model('judge'), classifiers: await rewardClassifiers(names, { ctx, constitution }) });
      };
      const out = stage.objective === 'sft' ? await backend.train({ ...job, model: start, objective: 'sft', options: sftOptionsSchema.parse(own), dataset }) : await rl();
      // A full-parameter stage writes a whole model: nothing lies beneath it.
      if (!existsSync(join(out.outputDir, 'adapter_config.json'))) return out;
      const rel = (p: string) => relative(run.dir, p);
      if (stage.mode === 'merge' || parentRef.adapters.length === 0) return { ...out, start: { from: parent, mode: stage.mode, model: rel(start), adapters: [] } };
      rmSync(start, { recursive: true, force: true });
      const stacked: CellStart = { from: parent, mode: 'stack', model: earlier.start?.model ?? null, adapters: parentRef.adapters.map((a) => rel(a.path)) };
      return { ...out, start: stacked };
    },
  };
}
