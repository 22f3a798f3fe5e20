/**
 * The white-box stage of `run` (and of `persona-lab steer`): persona vectors, the layer sweep,
 * monitoring, the fine-tuning shift of the run's own trained cells, the assistant axis and capping
 * (src/steer/), once per seed of the experiment, then the subjects the eval stage measures beside the
 * prompted and trained ones: per persona and seed, the subject model steered along each trait's
 * vector at the layer and coefficient that seed's sweep chose, and the persona's prompted model capped
 * at that seed's calibrated floors. The first seed's files are under steer/, a later seed's under
 * steer/seed-<n>/; the sweep's rollouts use the seed, and with generate.seedVaries the extraction
 * data (contrastive prompts and extraction rollouts) too, else every seed extracts from the first
 * seed's data.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { personaSystemPrompt, type Constitution } from '../constitution/index.js';
import { hashOptions, type SteeringIdentity } from '../core/cell.js';
import { InputError } from '../core/errors.js';
import type { RunDir } from '../core/journal.js';
import { personaSlug } from '../core/slug.js';
import { generateOptionsSchema } from '../data/options.js';
import type { ModelRef, SteeredModelRef } from '../providers/index.js';
import { cappingFileSchema, steerSummarySchema } from '../steer/artifacts.js';
import { readTraitPrompts, requireLocal, resolveTrait, runSteerStage, splitQuestions, steeredSubjectRefs, steerOptionsSchema, traitDir, type SteerOptions, type SteerSummary } from '../steer/index.js';
import { trainJournal } from './cells.js';
import { forget, recordOptions, resolveChanges, type OnChange } from './changes.js';
import type { StageContext } from './context.js';
import type { LoadedExperiment } from './load.js';
import { progressBoard, type StageOptions } from './stages.js';

/** `run` steers when its stages include `steer` and the experiment has a `steer:` section. */
export function runSteers(loaded: LoadedExperiment, stages: readonly string[]): boolean {
  return stages.includes('steer') && loaded.experiment.steer !== undefined;
}

const steerOptionsOf = (loaded: LoadedExperiment): SteerOptions => loaded.experiment.steer ?? steerOptionsSchema.parse({});

/** Everything that makes the stage's files: its options (less the subjects it hands the evals), the models, the seed, the personas. */
function steerStageOptions(loaded: LoadedExperiment): unknown {
  const { subjects: _subjects, ...steer } = steerOptionsOf(loaded);
  const m = loaded.experiment.models;
  return {
    steer,
    models: { subject: m.subject, teacher: m.teacher ?? m.subject, judge: m.judge ?? m.teacher ?? m.subject },
    seed: loaded.experiment.seeds[0],
    constitutions: loaded.constitutions.map((c) => c.constitution),
    ...(dataVaries(loaded) ? { dataVaries: true } : {}),
  };
}

/** generate.seedVaries: each seed extracts its persona vectors from its own data. */
const dataVaries = (loaded: LoadedExperiment): boolean => generateOptionsSchema.parse(loaded.experiment.generate ?? {}).seedVaries;

/** The experiment's seeds, each once, the first (whose files are under steer/) first. */
const steerSeeds = (loaded: LoadedExperiment): number[] => [...new Set(loaded.experiment.seeds)];

/** The run folder of a seed's steer files: steer/ for the first seed, steer/seed-<n>/ for the others. */
export const steerFolder = (loaded: LoadedExperiment, seed: number): string => (seed === loaded.experiment.seeds[0] ? 'steer' : `steer/seed-${seed}`);

/** A seed's finished stage: its summary.json, when written in the current shape (runSteerStage wrote it from a SteerSummary). */
function finishedSeed(run: RunDir, folder: string): SteerSummary | undefined {
  const file = run.path(folder, 'summary.json');
  if (!existsSync(file)) return undefined;
  const parsed = steerSummarySchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  return parsed.success ? (parsed.data as unknown as SteerSummary) : undefined;
}

/**
 * The stage's options against those the run recorded for its files: unchanged go on, changed are
 * refused (or with `redo` the old steer files and journals move under superseded/). Returns the
 * recorder to call once the stage may write.
 */
function checkSteerChanges(loaded: LoadedExperiment, onChange?: OnChange): () => void {
  const options = steerStageOptions(loaded);
  const [resolution] = resolveChanges(loaded, [{ key: 'steer', options }], onChange);
  return () => {
    if (resolution.variant) forget(loaded.runDir, 'steer', ['steer', join('journals', 'steer')]);
    recordOptions(loaded.runDir, 'steer', options);
  };
}

/** Before anything is written: the subject must run on the engine (an endpoint cannot be steered), and the run's steer files were made with these options. */
export function checkSteer(loaded: LoadedExperiment, onChange?: OnChange): void {
  try {
    requireLocal(loaded.experiment.models.subject);
  } catch (error) {
    if (error instanceof InputError) throw new InputError(loaded.file, error.field, error.expected);
    throw error;
  }
  const o = steerOptionsOf(loaded);
  const promptsFile = o.extract.promptsFile && resolve(dirname(resolve(loaded.file)), o.extract.promptsFile);
  for (const { constitution: c } of loaded.constitutions) {
    if (steerSeeds(loaded).length > 1 && /^seed-\d+$/.test(personaSlug(c.name))) throw new InputError(loaded.file, 'constitutions', `persona names other than "seed-<n>" when the steer stage runs for several seeds (steer/seed-<n>/ holds a seed's files; rename ${c.name})`);
    for (const [i, ref] of (o.traits ?? c.traits.map((_, t) => t)).entries()) {
      let t: number;
      try {
        t = resolveTrait(c, ref, `steer.traits[${i}]`);
      } catch (error) {
        if (error instanceof InputError) throw new InputError(loaded.file, error.field, error.expected);
        throw error;
      }
      if (!promptsFile) continue;
      const prompts = readTraitPrompts(promptsFile, c.traits[t]);
      if (!prompts) throw new InputError(promptsFile, 'trait', `an entry for the trait "${c.traits[t].label ?? c.traits[t].trait}" of ${c.name} (steer.traits)`);
      splitQuestions(prompts, o.extract.extractQuestions, promptsFile);
    }
  }
  checkSteerChanges(loaded, onChange);
}

/**
 * Runs the steer stage into the run directory for every seed, the first seed's summary returned with
 * the others' by seed; each seed's adapters get their fine-tuning shift measured. A seed whose
 * summary is written (and covers its trained adapters) is not done again.
 */
export async function steerStage(ctx: StageContext, options: StageOptions = {}): Promise<SteerSummary & { seeds?: Record<number, SteerSummary> }> {
  const { loaded, run } = ctx;
  const { experiment, constitutions } = loaded;
  checkSteerChanges(loaded, options.onChange)();
  const trained = trainJournal(run)
    .values()
    .filter((t) => t.kind === 'adapter' && existsSync(resolve(run.dir, t.output)))
    .map((t) => ({ adapter: t.output, path: resolve(run.dir, t.output), cell: t.cell }));
  const board = progressBoard(options.progress);
  const [first, ...later] = steerSeeds(loaded);
  try {
    const stageOf = async (seed: number): Promise<SteerSummary> => {
      const folder = steerFolder(loaded, seed);
      const mine = trained.filter((t) => t.cell.seed === seed || (seed === first && !later.length));
      const done = finishedSeed(run, folder);
      const measured = (a: { adapter: string; cell: { persona: string } }) => done!.traits.every((t) => t.persona !== a.cell.persona || t.shifts.some((s) => s.adapter === a.adapter));
      if (done && mine.every(measured)) return done;
      const dataSeed = dataVaries(loaded) ? seed : first;
      return runSteerStage({
        constitutions: constitutions.map((c) => c.constitution),
        options: steerOptionsOf(loaded),
        subject: experiment.models.subject,
        teacher: await ctx.model('teacher'),
        judge: await ctx.model('judge'),
        run,
        baseDir: dirname(resolve(loaded.file)),
        seed,
        dataSeed,
        folder,
        dataFolder: steerFolder(loaded, dataSeed),
        trained: mine,
        onProgress: (label, done, total) => board.update(`steer${later.length ? ` seed ${seed}` : ''} ${label}`, done, total),
      });
    };
    const summary = await stageOf(first);
    const seeds: Record<number, SteerSummary> = {};
    for (const seed of later) seeds[seed] = await stageOf(seed);
    return later.length ? { ...summary, seeds } : summary;
  } finally {
    board.stop();
    ctx.saveAccounting('steer');
  }
}

/** A steering subject's name for a seed: `<name>` in a one-seed run, `<name>.seed-<n>` with several seeds. */
const seeded = (loaded: LoadedExperiment, name: string, seed: number) => (steerSeeds(loaded).length > 1 ? `${name}.seed-${seed}` : name);

/** The steering subjects a run would evaluate, by name, for `run --dry-run` (steered ones only if the sweep finds an effect). */
export function plannedSteeringSubjects(loaded: LoadedExperiment): string[] {
  const o = steerOptionsOf(loaded);
  return steerSeeds(loaded).flatMap((seed) =>
    loaded.constitutions.flatMap(({ constitution: c }) => [
      ...(o.traits ?? c.traits.map((_, i) => i)).map((ref) => seeded(loaded, `${personaSlug(c.name)}.steered-t${resolveTrait(c, ref)}`, seed)),
      ...(o.axis ? [seeded(loaded, `${personaSlug(c.name)}.capped`, seed)] : []),
    ]),
  );
}

/** An eval subject made from the steer stage's files: a `steered` model reference, with its identity. */
export interface SteeringSubject {
  name: string;
  ref: SteeredModelRef;
  persona?: string;
  systemPrompt?: string;
  kind: 'steered' | 'capped';
  steering?: SteeringIdentity;
}

/** The subject as a string without secrets, for the options hash. */
const refText = (ref: ModelRef) => (typeof ref === 'string' ? ref : JSON.stringify(ref));

/**
 * Every seed's steered subjects of every persona (one per trait whose sweep chose a cell;
 * `<persona>.steered-t<i>`, with `.seed-<n>` when the run has several seeds) and capped subject
 * (`<persona>.capped`: its prompted model under the seed's calibrated cap, when the stage calibrated
 * one), from the seeds whose stage has finished; then the configured steer.subjects (of the first
 * seed's files). None before the stage has run.
 */
export function steeringSubjects(loaded: LoadedExperiment, run: RunDir): SteeringSubject[] {
  const o = steerOptionsOf(loaded);
  const constitutions: Constitution[] = loaded.constitutions.map((c) => c.constitution);
  const subject = loaded.experiment.models.subject;
  const configured = (): SteeringSubject[] => (o.subjects.length ? steeredSubjectRefs({ constitutions, options: o, subject, run }) : []);
  const out: SteeringSubject[] = [];
  for (const seed of steerSeeds(loaded)) {
    const folder = steerFolder(loaded, seed);
    const summaryFile = run.path(folder, 'summary.json');
    if (!existsSync(summaryFile)) continue;
    const summary = steerSummarySchema.parse(JSON.parse(readFileSync(summaryFile, 'utf8')));
    const base = requireLocal(subject);
    const steerHash = hashOptions({ subject: refText(subject), traits: o.traits ?? null, extract: o.extract, sweep: o.sweep, seed });
    for (const t of summary.traits) {
      const chosen = t.sweep.chosen;
      if (!chosen) continue; // no steering effect: nothing to evaluate
      const dir = traitDir(run, t.persona, t.traitIndex, folder);
      const vector = ['vector.safetensors', 'vector.json'].map((f) => join(dir, f)).find(existsSync);
      if (!vector) continue;
      out.push({
        name: seeded(loaded, `${personaSlug(t.persona)}.steered-t${t.traitIndex}`, seed),
        ref: { provider: 'steered', base, steer: { vector, layer: chosen.layer, coef: chosen.coef, positions: o.sweep.positions } },
        persona: t.persona,
        kind: 'steered',
        steering: { persona: t.persona, trait: t.trait, traitIndex: t.traitIndex, layer: chosen.layer, coef: chosen.coef, positions: o.sweep.positions, cap: null, seed, optionsHash: steerHash },
      });
    }
    const calibration = run.path(folder, 'capping.json');
    if (summary.axis && existsSync(calibration)) {
      const cal = cappingFileSchema.parse(JSON.parse(readFileSync(calibration, 'utf8')));
      const capHash = hashOptions({ subject: refText(subject), axis: o.axis ?? null, seed });
      const wanted = new Set(summary.traits.map((t) => t.persona));
      for (const c of constitutions.filter((x) => wanted.has(x.name) || summary.traits.length === 0)) {
        out.push({
          name: seeded(loaded, `${personaSlug(c.name)}.capped`, seed),
          ref: { provider: 'steered', base, cap: { calibration } },
          persona: c.name,
          systemPrompt: personaSystemPrompt(c),
          kind: 'capped',
          steering: { persona: c.name, trait: null, traitIndex: null, layer: null, coef: null, positions: null, cap: { layers: cal.layers, axisLayer: cal.axisLayer, percentile: cal.percentile }, seed, optionsHash: capHash },
        });
      }
    }
  }
  if (out.length === 0) return configured();
  const taken = new Set(out.map((s) => s.name));
  return [...out, ...configured().filter((s) => !taken.has(s.name))];
}
