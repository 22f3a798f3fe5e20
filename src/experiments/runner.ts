/**
 * The runner: the experiment's matrix (personas x formats x methods x seeds) through the train and
 * eval stages, and `run` = generate -> train -> steer (with a `steer:` section) -> eval -> report. Every level resumes: model answers
 * and eval samples are journaled by their stages, a finished adapter is journaled in
 * `journals/train/adapters.jsonl` and skipped, an interrupted one resumes from its trainer checkpoint.
 */
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { Constitution } from '../constitution/index.js';
import { InputError } from '../core/errors.js';
import { RunDir } from '../core/journal.js';
import type { CellIdentity } from '../core/cell.js';
import { personaSlug } from '../core/slug.js';
import { trainingFile } from '../data/index.js';
import { baselineSubjects, runEvals, type EvalOptions, type EvalSummary, type JudgeModel, type Subject } from '../evals/index.js';
import { createChatModel, resolveModelRef, type LocalModelRef, type ModelRef, type SteeredModelRef } from '../providers/index.js';
import { TRAIN_BACKENDS, type TrainBackend } from '../train/backends/index.js';
import type { ChatModel } from '../providers/types.js';
import { backendOf, trainOptionsSchema, type TrainOptions } from '../train/options.js';
import { seedDataDir } from './seed-data.js';
import { cellDir, cellKey, cellSubjectName, datasetSlugs, trainJournal, type PlannedCell, type TrainedCell } from './cells.js';
import { cellOptionsHash, cellVariant, checkCellChanges, checkEvalChanges, checkGenerateChanges, type OnChange } from './changes.js';
import { runOptionsSchema, type RunOptions } from './config.js';
import { checkDatasetFiles, checkModelInputs, checkTrainInputs } from './inputs.js';
import type { StageContext } from './context.js';
import type { LoadedExperiment } from './load.js';
import { METHODS, plannedMethods } from './methods/index.js';
import { mixtureSubjects } from './mixture-subjects.js';
import { cellModelRef, checkStageData, checkStages, continuedStages, methodOf } from './continued.js';
import { generateStage, prepareStage, progressBoard, type StageOptions } from './stages.js';
import { checkSteer, runSteers, steerStage, steeringSubjects } from './steer-stage.js';
import type { SteerSummary } from '../steer/index.js';

export function runOptionsOf(loaded: LoadedExperiment): RunOptions {
  return loaded.experiment.run ?? runOptionsSchema.parse({});
}

/** The constitutions the matrix trains (run.personas, default all). */
function matrixPersonas(loaded: LoadedExperiment): Constitution[] {
  const all = loaded.constitutions.map((c) => c.constitution);
  const wanted = runOptionsOf(loaded).personas;
  if (!wanted) return all;
  return wanted.map((name, i) => {
    const found = all.find((c) => c.name === name);
    if (!found) throw new InputError(loaded.file, `run.personas[${i}]`, `the name of one of the constitutions (${all.map((c) => c.name).join(', ')}), found "${name}"`);
    return found;
  });
}

const matrixMethods = plannedMethods;

/** Every trained cell, in training order (a DPO cell before the dpo-introspection cell that builds on it; run.continue stages last, in order). */
export function planMatrix(loaded: LoadedExperiment): PlannedCell[] {
  const run = runOptionsOf(loaded);
  const methods = [...matrixMethods(run), ...continuedStages(run).map((s) => s.name)].flatMap((method) => methodOf(run, method, loaded.file).formats(run).map((format) => ({ method, format })));
  const perPersona = methods.filter((m) => !METHODS[m.method]?.acrossPersonas);
  const across = methods.filter((m) => METHODS[m.method]?.acrossPersonas);
  const cells: PlannedCell[] = matrixPersonas(loaded).flatMap((c) => loaded.experiment.seeds.flatMap((seed) => perPersona.map(({ method, format }) => ({ persona: c.name, slug: personaSlug(c.name), method, format, seed }))));
  if (across.length === 0) return cells;
  const members = mixturePersonas(loaded).map((c) => c.name);
  const persona = members.join('+');
  return [...cells, ...loaded.experiment.seeds.flatMap((seed) => across.map(({ method, format }) => ({ persona, slug: personaSlug(persona), method, format, seed, members })))];
}

/** The constitutions a mixture cell trains together (run.mixture.personas, default the matrix's): at least two. */
function mixturePersonas(loaded: LoadedExperiment): Constitution[] {
  const all = loaded.constitutions.map((c) => c.constitution);
  const named = runOptionsOf(loaded).mixture.personas;
  const found = named
    ? named.map((name, i) => {
        const c = all.find((x) => x.name === name);
        if (!c) throw new InputError(loaded.file, `run.mixture.personas[${i}]`, `the name of one of the constitutions (${all.map((x) => x.name).join(', ')}), found "${name}"`);
        return c;
      })
    : matrixPersonas(loaded);
  if (found.length < 2) throw new InputError(loaded.file, 'run.mixture.personas', `at least two personas to train together (the mixture method), found ${found.length}`);
  return found;
}

/** The local model directory training starts from; bad input when the subject cannot be trained. */
function trainableBase(loaded: LoadedExperiment): LocalModelRef {
  const ref: ModelRef = loaded.experiment.models.subject;
  const resolved = resolveModelRef(ref);
  if (!resolved.entry.capabilities.train) {
    throw new InputError(loaded.file, 'models.subject', 'a local model ("local:<model dir>" or "tiny") to train adapters on; an endpoint can only be evaluated (set run.methods: [] for baselines only)');
  }
  const parsed = resolved.ref as LocalModelRef;
  if (parsed.adapters.length > 0) throw new InputError(loaded.file, 'models.subject', 'a model directory without adapters as the base to train on');
  const gguf = /\.gguf$/i.test(parsed.path);
  if (gguf ? !existsSync(parsed.path) : !existsSync(join(parsed.path, 'config.json'))) {
    const tiny = ref === 'tiny' ? ' (the bundled tiny model is not built yet: `persona-lab tiny build --out models/tiny`, see docs/tiny-model.md)' : '';
    throw new InputError(loaded.file, 'models.subject', gguf ? `a GGUF file at ${parsed.path} (not found)` : `a Hugging Face model directory with config.json at ${parsed.path}${tiny}`);
  }
  return parsed;
}

const trainOptionsOf = (loaded: LoadedExperiment): TrainOptions => trainOptionsSchema.parse(loaded.experiment.train ?? {});

/** The backend a method's cells train on (train.methodBackends.<method>, else train.backend); bad input when none is registered under that name. */
function trainBackendOf(loaded: LoadedExperiment, train: TrainOptions, method: string): TrainBackend {
  const name = backendOf(train, method).backend;
  const backend = Object.hasOwn(TRAIN_BACKENDS, name) ? TRAIN_BACKENDS[name] : undefined;
  const field = Object.hasOwn(train.methodBackends, method) ? `train.methodBackends.${method}.backend` : 'train.backend';
  if (!backend) throw new InputError(loaded.file, field, `one of ${Object.keys(TRAIN_BACKENDS).join(', ')}, found "${name}"`);
  return backend;
}

/**
 * Checks what the matrix needs before anything is written: a trainable local subject when any
 * method trains, a registered backend, options every method can train with, and every dataset it
 * trains on among generate.datasets.
 */
export async function checkMatrix(loaded: LoadedExperiment, onChange?: OnChange, datasets = false): Promise<PlannedCell[]> {
  checkStages(runOptionsOf(loaded), loaded.file);
  const cells = planMatrix(loaded);
  if (cells.length === 0) return cells;
  const base = trainableBase(loaded).path;
  await checkTrainInputs(loaded, base);
  const train = trainOptionsOf(loaded);
  for (const method of Object.keys(train.methodBackends)) {
    if (!Object.hasOwn(METHODS, method)) throw new InputError(loaded.file, `train.methodBackends.${method}`, `a training method (${Object.keys(METHODS).join(', ')})`);
  }
  for (const method of matrixMethods(runOptionsOf(loaded))) {
    trainBackendOf(loaded, train, method);
    METHODS[method].check?.(train, loaded.file);
  }
  const generated = new Set(loaded.experiment.generate?.datasets ?? ['prompts', 'chat', 'introspective', 'documents', 'dpo', 'reflection', 'interaction', 'probes']);
  const needed = new Set(cells.flatMap((c) => methodOf(runOptionsOf(loaded), c.method, loaded.file).datasets(c.format)));
  const missing = [...needed].filter((d) => !generated.has(d));
  if (missing.length > 0) throw new InputError(loaded.file, 'generate.datasets', `also ${missing.join(', ')} (the run's methods train on them)`);
  if (datasets) {
    checkDatasetFiles(loaded, cells);
    checkStageData(loaded, cells);
  }
  checkCellChanges(loaded, cells, cellKey, base, onChange);
  return cells;
}

/** The files a cell trains on, as the data stage's manifests name them, with the manifests' config hashes. */
function cellDatasets(loaded: LoadedExperiment, run: RunDir, c: PlannedCell): { files: string[]; hashes: string[] } {
  const method = methodOf(runOptionsOf(loaded), c.method, loaded.file);
  const found = datasetSlugs(c).flatMap((slug) =>
    method.datasets(c.format).map((dataset) => {
      const located = trainingFile(run.path('datasets'), slug, dataset, seedDataDir(loaded, c.seed));
      if (!located) throw new Error(`train: the ${dataset} dataset of ${slug} is missing or empty under ${seedDataDir(loaded, c.seed)}: run \`persona-lab generate\` first (or check the data stage's manifest for what its filters dropped)`);
      return located;
    }),
  );
  return { files: found.map((f) => f.file), hashes: found.map((f) => f.manifest.configHash) };
}

export interface TrainSummary {
  /** Every cell of the matrix with its output, finished before or now. */
  cells: TrainedCell[];
  /** Cells trained by this invocation (the rest were journaled as finished). */
  trained: number;
}

/**
 * Trains every cell of the matrix that is not journaled as finished, one at a time (training uses
 * every core), each through its method and the run's training backend. A cell killed mid-way
 * resumes from its trainer checkpoint on the next call.
 */
export async function trainStage(ctx: StageContext, options: StageOptions = {}): Promise<TrainSummary> {
  const { loaded, run } = ctx;
  const cells = await checkMatrix(loaded, options.onChange, true);
  const journal = trainJournal(run);
  if (cells.length === 0) return { cells: [], trained: 0 };
  const base = trainableBase(loaded);
  const train = trainOptionsOf(loaded);
  const changes = checkCellChanges(loaded, cells, cellKey, base.path, options.onChange);
  const steering = await checkTrainInputs(loaded, base.path);
  const runOptions = runOptionsOf(loaded);
  const board = progressBoard(options.progress);
  const constitutionOf = (name: string) => loaded.constitutions.find((c) => c.constitution.name === name)!.constitution;
  const identityOf = (c: PlannedCell): CellIdentity => ({ persona: c.persona, method: c.method, format: c.format, seed: c.seed, backend: backendOf(train, c.method).backend, optionsHash: cellOptionsHash(loaded, c, base.path) });
  let trained = 0;
  try {
    const cellsDone = await journal.runAll(
      changes.cells,
      cellKey,
      async (c): Promise<TrainedCell> => {
        changes.record(c);
        const datasets = cellDatasets(loaded, run, c);
        const cell = identityOf(c);
        const dir = cellDir(run, c);
        const label = `train ${cellKey(c)}`;
        const job = { model: base.path, runDir: dir, seed: c.seed, threads: runOptions.threads, backendOptions: backendOf(train, c.method).backendOptions, steering, onStep: (log: { step: number }, total: number) => board.update(label, log.step, total) };
        const out = await methodOf(runOptions, c.method, loaded.file).train({
          ctx,
          cell,
          dir,
          base,
          train,
          run: runOptions,
          backend: trainBackendOf(loaded, train, c.method),
          constitution: constitutionOf(c.members?.[0] ?? c.persona),
          datasets: datasets.files,
          ...(c.members ? { members: c.members.map(constitutionOf) } : {}),
          cellDir: (method, format) => cellDir(run, { ...c, method, format, variant: cellVariant(loaded, cellKey({ ...c, method, format, variant: undefined }), { ...c, method, format }, base.path) }),
          job,
          onData: (dataset, done, total) => board.update(`${label} ${dataset}`, done, total),
        });
        trained += 1;
        const kind = existsSync(join(out.outputDir, 'adapter_config.json')) ? 'adapter' : 'model';
        return { cell, slug: c.slug, ...(c.members ? { members: c.members } : {}), ...(c.variant ? { variant: c.variant } : {}), output: relative(run.dir, out.outputDir), kind, metrics: out.metrics, resumedFrom: out.resumedFrom, ...(out.start ? { start: out.start } : {}) };
      },
      { concurrency: 1 },
    );
    return { cells: cellsDone, trained };
  } finally {
    board.stop();
    ctx.saveAccounting('train');
  }
}

/** run.subjects must name existing constitutions and not reuse a baseline's or a cell's name. */
export function checkSubjects(loaded: LoadedExperiment): void {
  const names = loaded.constitutions.map((c) => c.constitution.name);
  const taken = new Set(['base', 'prompted', loaded.experiment.eval?.baseline, loaded.experiment.eval?.prompted].filter((n) => n !== undefined));
  for (const [i, extra] of runOptionsOf(loaded).subjects.entries()) {
    if (extra.persona !== undefined && !names.includes(extra.persona)) throw new InputError(loaded.file, `run.subjects[${i}].persona`, `one of the constitutions' names (${names.join(', ')}), found "${extra.persona}"`);
    if (taken.has(extra.name) || extra.name.startsWith('prompted-')) throw new InputError(loaded.file, `run.subjects[${i}].name`, `a name other than the baselines' (${[...taken].join(', ')}, prompted-<persona>)`);
    taken.add(extra.name);
  }
}

/** What `run` checks before writing: the extra subjects, changed stage options, and the matrix when it trains. */
export async function checkRun(loaded: LoadedExperiment, options: StageOptions = {}): Promise<void> {
  checkSubjects(loaded);
  await checkModelInputs(loaded);
  if (runOptionsOf(loaded).stages.includes('generate')) checkGenerateChanges(loaded, options.onChange);
  if (runOptionsOf(loaded).stages.includes('train')) await checkMatrix(loaded, options.onChange);
  if (runSteers(loaded, runOptionsOf(loaded).stages)) checkSteer(loaded, options.onChange);
  if (runOptionsOf(loaded).stages.includes('eval')) checkEvalChanges(loaded, evalOptionsFor(loaded, loaded.runDir), options.onChange);
}

/** The eval options with the data stage's held-out prompts and probes in `runDir` filled in (run.heldOut); reads only. */
export function evalOptionsFor(loaded: LoadedExperiment, runDir: string): EvalOptions | Record<string, never> {
  const options = loaded.experiment.eval;
  if (!runOptionsOf(loaded).heldOut) return options ?? {};
  const general = join(runDir, 'datasets', 'general-prompts.heldout.json');
  const probes = join(runDir, 'datasets', 'probes.heldout.json');
  const filled = structuredClone(options ?? {}) as Partial<EvalOptions>;
  if (filled.generalPrompts === undefined && existsSync(general)) filled.generalPrompts = general;
  if (filled.identity?.probes === undefined && existsSync(probes)) filled.identity = { ...(filled.identity ?? {}), probes } as EvalOptions['identity'];
  return filled as EvalOptions;
}

/** What a run.subjects model is: steered or capped when it is a `steered` reference, else other. */
function subjectKindOf(ref: ModelRef): 'steered' | 'capped' | 'other' {
  const resolved = resolveModelRef(ref);
  if (resolved.provider !== 'steered') return 'other';
  return (resolved.ref as SteeredModelRef).steer ? 'steered' : 'capped';
}

/**
 * Evaluates base, prompted (each constitution's system prompt on the subject model), every trained
 * adapter the run's train journal lists, steer.subjects and run.subjects; judges: models.judge, and
 * models.secondJudge for agreement; writes <run>/evals/summary.json.
 */
export async function evalStage(ctx: StageContext, options: StageOptions = {}): Promise<EvalSummary> {
  const { loaded, run } = ctx;
  const { experiment } = loaded;
  const runOptions = runOptionsOf(loaded);
  const evalOptions = evalOptionsFor(loaded, run.dir);
  checkEvalChanges(loaded, evalOptions, options.onChange)();
  const names = { base: evalOptions.baseline ?? 'base', prompted: evalOptions.prompted ?? 'prompted' };
  const constitutions = loaded.constitutions.map((c) => c.constitution);
  const owned: ChatModel[] = [];
  const board = progressBoard(options.progress);
  try {
    const subjects: Subject[] = baselineSubjects(await ctx.model('subject'), constitutions, names);
    const trained = trainJournal(run).values();
    const baseRef = trained.length > 0 ? trainableBase(loaded) : undefined;
    for (const cell of trained) {
      const output = resolve(run.dir, cell.output);
      if (!existsSync(output)) continue;
      const ref = cellModelRef(run.dir, baseRef!, cell);
      const model = await createChatModel(ref, { noCache: options.noCache, accounting: ctx.accounting });
      owned.push(model);
      const name = cellSubjectName({ ...cell.cell, slug: cell.slug, variant: cell.variant });
      if (cell.members) subjects.push(...mixtureSubjects(cell.cell, cell.members, name, model));
      else subjects.push({ name, model, persona: cell.cell.persona, kind: 'trained', cell: cell.cell });
    }
    // The steer stage's chosen vectors and calibrated cap, and steer.subjects, as `steered` model references.
    const steered = experiment.steer ? steeringSubjects(loaded, run) : [];
    for (const s of steered) {
      const model = await createChatModel(s.ref, { noCache: options.noCache, accounting: ctx.accounting });
      owned.push(model);
      subjects.push({ name: s.name, model, persona: s.persona, systemPrompt: s.systemPrompt, kind: s.kind, steering: s.steering });
    }
    checkSubjects(loaded);
    for (const extra of runOptions.subjects) {
      const model = await createChatModel(extra.model, { noCache: options.noCache, accounting: ctx.accounting });
      owned.push(model);
      subjects.push({ name: extra.name, model, persona: extra.persona, systemPrompt: extra.systemPrompt, kind: subjectKindOf(extra.model) });
    }
    const judges: JudgeModel[] = [{ name: 'judge', model: await ctx.model('judge') }];
    if (experiment.models.secondJudge !== undefined) judges.push({ name: 'second-judge', model: await ctx.model('secondJudge') });
    return await runEvals(
      { name: experiment.name, seeds: experiment.seeds, constitutions, baseDir: dirname(resolve(loaded.file)), userSimulator: await ctx.model('userSimulator'), file: loaded.file },
      subjects,
      judges,
      run,
      evalOptions,
      { onProgress: (p) => board.update(`eval ${p.eval} ${p.subject}`, p.done, p.total) },
    );
  } finally {
    board.stop();
    ctx.saveAccounting('eval');
    for (const model of owned) await model.close?.();
  }
}

export interface RunSummary {
  run: string;
  stages: string[];
  generate?: { dir: string; personas: { persona: string; datasets: Record<string, Record<string, number>> }[] };
  train?: TrainSummary;
  steer?: SteerSummary;
  eval?: EvalSummary;
  report?: { html: string; markdown: string };
}

/**
 * generate -> train -> steer -> eval -> report over the matrix. Everything is validated (experiment,
 * constitutions, endpoints, the matrix's needs) before the run directory is touched; rerunning
 * after an interruption continues where it stopped.
 */
export async function runExperiment(file: string, options: StageOptions & { log?: (line: string) => void } = {}): Promise<RunSummary> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const ctx = await prepareStage(file, options, (loaded) => checkRun(loaded, options));
  const stages = runOptionsOf(ctx.loaded).stages;
  const summary: RunSummary = { run: ctx.run.dir, stages };
  try {
    if (stages.includes('generate')) {
      log('== generate: training data');
      const g = await generateStage(ctx, options);
      summary.generate = { dir: g.dir, personas: g.personas.map((p) => ({ persona: p.persona, datasets: Object.fromEntries(Object.entries(p.datasets).map(([name, m]) => [name, m.rows])) })) };
    }
    if (stages.includes('train')) {
      log(`== train: ${planMatrix(ctx.loaded).length} adapter(s)`);
      summary.train = await trainStage(ctx, options);
    }
    if (runSteers(ctx.loaded, stages)) {
      log('== steer: persona vectors, layer sweep, monitoring, capping');
      summary.steer = await steerStage(ctx, options);
    }
    if (stages.includes('eval')) {
      log('== eval');
      summary.eval = await evalStage(ctx, options);
    }
    if (stages.includes('report')) {
      log('== report');
      const { writeReport } = await import('../report/index.js');
      summary.report = await writeReport(ctx.run.dir);
    }
  } finally {
    await ctx.close();
  }
  return summary;
}
