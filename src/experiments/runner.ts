/**
 * The runner: the experiment's matrix (personas x formats x methods x seeds) through the train and
 * eval stages, and `run` = generate -> train -> eval -> report. Every level resumes: model answers
 * and eval samples are journaled by their stages, a finished adapter is journaled in
 * `journals/train/adapters.jsonl` and skipped, an interrupted one resumes from its trainer checkpoint.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { Constitution } from '../constitution/index.js';
import { InputError } from '../core/errors.js';
import { RunDir } from '../core/journal.js';
import { generate, type DatasetId, type GenerateSummary } from '../data/index.js';
import { slug } from '../data/text.js';
import { baselineSubjects, runEvals, type EvalOptions, type EvalSummary, type JudgeModel, type Subject } from '../evals/index.js';
import { createChatModel } from '../providers/index.js';
import type { LocalModelRef, ModelRef } from '../providers/ref.js';
import type { ChatModel } from '../providers/types.js';
import { trainOptionsSchema, type TrainOptions } from '../train/options.js';
import { runOptionsSchema, type RunOptions } from './config.js';
import type { StageContext } from './context.js';
import type { LoadedExperiment } from './load.js';
import { generateStage, prepareStage, progressBoard, type StageOptions } from './stages.js';

/** One trained cell of the matrix; `method` is `sft-<format>`, `dpo`, `dpo-introspection` or `grpo`. */
export interface Cell {
  persona: string;
  slug: string;
  method: string;
  seed: number;
}

/** What the train journal keeps per finished cell (paths relative to the run directory). */
export interface TrainedCell extends Cell {
  /** The PEFT adapter directory (or, for full-parameter training, the model directory). */
  output: string;
  kind: 'adapter' | 'model';
  metrics: Record<string, unknown>;
  /** The trainer checkpoint step this invocation continued from (0: trained from the start). */
  resumedFrom: number;
}

export const cellKey = (c: Cell): string => `${c.slug}/${c.method}/seed-${c.seed}`;
/** The eval subject name of a trained cell: <persona>.<method>.seed-<n>. */
export const cellSubjectName = (c: Cell): string => `${c.slug}.${c.method}.seed-${c.seed}`;
export const cellDir = (run: RunDir, c: Cell): string => run.path('adapters', c.slug, c.method, `seed-${c.seed}`);

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

/** Every trained cell, in training order (a DPO cell before the dpo-introspection cell that builds on it). */
export function planMatrix(loaded: LoadedExperiment): Cell[] {
  const run = runOptionsOf(loaded);
  const methods = new Set(run.methods);
  const names: string[] = [];
  if (methods.has('sft')) names.push(...run.formats.map((f) => `sft-${f}`));
  if (methods.has('dpo') || methods.has('dpo-introspection')) names.push('dpo');
  if (methods.has('dpo-introspection')) names.push('dpo-introspection');
  if (methods.has('grpo')) names.push('grpo');
  return matrixPersonas(loaded).flatMap((c) => loaded.experiment.seeds.flatMap((seed) => names.map((method) => ({ persona: c.name, slug: slug(c.name), method, seed }))));
}

/** The local model directory training starts from; bad input when the subject cannot be trained. */
async function trainableBase(loaded: LoadedExperiment): Promise<LocalModelRef> {
  const ref: ModelRef = loaded.experiment.models.subject;
  const local = typeof ref === 'string' ? ref === 'tiny' || ref.startsWith('local:') : ref.provider === 'local';
  if (!local) {
    throw new InputError(loaded.file, 'models.subject', 'a local model ("local:<model dir>" or "tiny") to train adapters on; an endpoint can only be evaluated (set run.methods: [] for baselines only)');
  }
  const { parseLocalModelRef } = await import('../engine/provider.js');
  const parsed = parseLocalModelRef(ref);
  if (parsed.adapters.length > 0) throw new InputError(loaded.file, 'models.subject', 'a model directory without adapters as the base to train on');
  const gguf = /\.gguf$/i.test(parsed.path);
  if (gguf ? !existsSync(parsed.path) : !existsSync(join(parsed.path, 'config.json'))) {
    const tiny = ref === 'tiny' ? ' (the bundled tiny model is not built yet: `persona-lab tiny build --out models/tiny`, see docs/tiny-model.md)' : '';
    throw new InputError(loaded.file, 'models.subject', gguf ? `a GGUF file at ${parsed.path} (not found)` : `a Hugging Face model directory with config.json at ${parsed.path}${tiny}`);
  }
  return parsed;
}

/** Datasets the matrix trains on, so generate.datasets must include them. */
function neededDatasets(cells: Cell[]): DatasetId[] {
  const need = new Set<DatasetId>();
  for (const c of cells) {
    if (c.method.startsWith('sft-')) need.add(c.method.slice(4) as DatasetId);
    if (c.method === 'dpo') need.add('dpo');
    if (c.method === 'grpo') need.add('probes');
  }
  return [...need];
}

/**
 * Checks what the matrix needs before anything is written: a trainable local subject when any
 * method trains, and every dataset it trains on among generate.datasets.
 */
export async function checkMatrix(loaded: LoadedExperiment): Promise<Cell[]> {
  const cells = planMatrix(loaded);
  if (cells.length === 0) return cells;
  await trainableBase(loaded);
  const generated = new Set(loaded.experiment.generate?.datasets ?? ['prompts', 'chat', 'introspective', 'documents', 'dpo', 'reflection', 'interaction', 'probes']);
  const missing = neededDatasets(cells).filter((d) => !generated.has(d));
  if (missing.length > 0) throw new InputError(loaded.file, 'generate.datasets', `also ${missing.join(', ')} (the run's methods train on them)`);
  return cells;
}

const datasetsDir = (run: RunDir, c: Cell) => run.path('datasets', c.slug);

function requireFile(path: string, what: string): string {
  if (!existsSync(path) || statSync(path).size === 0) throw new Error(`train: ${what} not found or empty at ${path}: run \`persona-lab generate\` first (or check the data stage's manifest for what its filters dropped)`);
  return path;
}

export interface TrainSummary {
  /** Every cell of the matrix with its output, finished before or now. */
  cells: TrainedCell[];
  /** Cells trained by this invocation (the rest were journaled as finished). */
  trained: number;
}

/**
 * Trains every cell of the matrix that is not journaled as finished, one at a time (training uses
 * every core). A cell killed mid-way resumes from its trainer checkpoint on the next call.
 */
export async function trainStage(ctx: StageContext, options: StageOptions = {}): Promise<TrainSummary> {
  const { loaded, run } = ctx;
  const cells = await checkMatrix(loaded);
  const journal = run.journal<TrainedCell>('train/adapters');
  if (cells.length === 0) return { cells: [], trained: 0 };
  const base = await trainableBase(loaded);
  const train: TrainOptions = trainOptionsSchema.parse(loaded.experiment.train ?? {});
  const runOptions = runOptionsOf(loaded);
  const train_ = await import('../train/index.js');
  const board = progressBoard(options.progress);
  let trained = 0;
  const constitutionOf = (name: string) => loaded.constitutions.find((c) => c.constitution.name === name)!.constitution;
  const onStep = (c: Cell, phase = '') => (log: { step: number }, total: number) => board.update(`train ${cellKey(c)}${phase}`, log.step, total);
  try {
    const cellsDone = await journal.runAll(
      cells,
      cellKey,
      async (c): Promise<TrainedCell> => {
        const dir = cellDir(run, c);
        const common = { model: base.path, runDir: dir, seed: c.seed, threads: runOptions.threads, onStep: onStep(c) };
        let out: { outputDir: string; metrics: Record<string, unknown>; resumedFrom: number };
        if (c.method.startsWith('sft-')) {
          const format = c.method.slice(4);
          const equal = join(datasetsDir(run, c), 'format-comparison', `${format}.jsonl`);
          const file = requireFile(existsSync(equal) ? equal : join(datasetsDir(run, c), `${format}.jsonl`), `the ${format} dataset of ${c.persona}`);
          const rows = format === 'chat' ? train_.readJsonl(file, train_.chatRowSchema) : train_.readJsonl(file, train_.textRowSchema);
          out = await train_.trainSft({ ...common, options: train.sft, rows });
        } else if (c.method === 'dpo') {
          const rows = train_.readJsonl(requireFile(join(datasetsDir(run, c), 'dpo.jsonl'), `the DPO pairs of ${c.persona}`), train_.pairRowSchema);
          out = await train_.trainDpo({ ...common, options: train.dpo, rows });
        } else if (c.method === 'grpo') {
          const rows = train_.readJsonl(requireFile(run.path('datasets', 'probes.train.jsonl'), 'the training identity probes'), train_.promptRowSchema);
          out = await train_.trainGrpo({ ...common, options: train.grpo, rows, judge: await ctx.model('judge') });
        } else {
          const onData = (dataset: string, done: number, total: number) => board.update(`train ${cellKey(c)} ${dataset}`, done, total);
          out = await introspectionRecipe(ctx, c, base, train, runOptions, constitutionOf(c.persona), { onStep: onStep(c, ' sft'), onData });
        }
        trained += 1;
        const kind = existsSync(join(out.outputDir, 'adapter_config.json')) ? 'adapter' : 'model';
        return { ...c, output: relative(run.dir, out.outputDir), kind, metrics: out.metrics, resumedFrom: out.resumedFrom };
      },
      { concurrency: 1 },
    );
    return { cells: cellsDone, trained };
  } finally {
    board.stop();
    ctx.saveAccounting();
  }
}

/**
 * The open recipe's second half for one persona and seed: the DPO-trained model (this cell's
 * persona and seed) generates introspection data on-policy (self-reflection, self-interaction),
 * an SFT adapter is trained on it from the base, and the two adapters are mixed linearly
 * (train.mix.weights: DPO 1.0 + SFT 0.25 by default).
 */
async function introspectionRecipe(
  ctx: StageContext,
  c: Cell,
  base: LocalModelRef,
  train: TrainOptions,
  runOptions: RunOptions,
  constitution: Constitution,
  progress: { onStep: (log: { step: number }, total: number) => void; onData: (dataset: string, done: number, total: number) => void },
): Promise<{ outputDir: string; metrics: Record<string, unknown>; resumedFrom: number }> {
  const { loaded, run } = ctx;
  if (train.sft.fullParameter || train.dpo.fullParameter) throw new InputError(loaded.file, 'train', 'LoRA (not fullParameter) for sft and dpo: dpo-introspection mixes adapters');
  const dir = cellDir(run, c);
  const dpo = join(cellDir(run, { ...c, method: 'dpo' }), 'adapter');
  if (!existsSync(join(dpo, 'adapter_config.json'))) throw new Error(`train: the DPO adapter ${dpo} is missing (the dpo cell of ${c.persona} seed ${c.seed} runs first)`);
  const sub = RunDir.open(join(dir, 'introspection'), { name: `${loaded.experiment.name}/${cellKey(c)}/introspection`, personaLabVersion: run.manifest.personaLabVersion, gitRevision: run.manifest.gitRevision, seeds: [c.seed], config: { introspector: { base: base.path, adapter: dpo } } });
  const introspector = await createChatModel({ provider: 'local', path: base.path, adapters: [{ path: dpo, scale: 1 }], concurrency: base.concurrency }, { noCache: true, accounting: ctx.accounting });
  let summary: GenerateSummary;
  try {
    const g = loaded.experiment.generate;
    summary = await generate(
      { seeds: [c.seed] },
      [constitution],
      { teacher: await ctx.model('teacher'), subject: await ctx.model('subject'), introspector },
      sub,
      { ...(g ?? {}), seed: c.seed, datasets: runOptions.introspection.datasets, inoculation: { ...(g?.inoculation ?? {}), datasets: [], files: [] } },
      { baseDir: dirname(resolve(loaded.file)), file: loaded.file, onProgress: (e) => progress.onData(e.dataset, e.done, e.total) },
    );
  } finally {
    sub.close();
    await introspector.close?.();
  }
  const train_ = await import('../train/index.js');
  const rows = runOptions.introspection.datasets.flatMap((d) => {
    const file = join(summary.personas[0].dir, `${d}.jsonl`);
    return existsSync(file) ? train_.readJsonl(file, train_.chatRowSchema) : [];
  });
  if (rows.length === 0) throw new Error(`train: the DPO-trained model's introspection data for ${c.persona} seed ${c.seed} is empty after filtering (see ${summary.personas[0].dir}/*.manifest.json)`);
  const sft = await train_.trainSft({ model: base.path, runDir: join(dir, 'sft'), seed: c.seed, threads: runOptions.threads, options: train.sft, rows, onStep: progress.onStep });
  const weights = train.mix.weights;
  const outputDir = train_.mixAdapters(
    [
      { dir: dpo, weight: weights.dpo ?? 1 },
      { dir: sft.outputDir, weight: weights.sft ?? 0.25 },
    ],
    join(dir, 'adapter'),
    base.path,
  );
  return { outputDir, metrics: { ...sft.metrics, introspectionRows: rows.length, mix: { dpo: weights.dpo ?? 1, sft: weights.sft ?? 0.25 } }, resumedFrom: sft.resumedFrom };
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

/** What `run` checks before writing: the extra subjects, and the matrix when it trains. */
export async function checkRun(loaded: LoadedExperiment): Promise<void> {
  checkSubjects(loaded);
  if (runOptionsOf(loaded).stages.includes('train')) await checkMatrix(loaded);
}

/** The eval options with the data stage's held-out prompts and probes filled in (run.heldOut). */
export function evalOptionsFor(loaded: LoadedExperiment, run: RunDir): EvalOptions | Record<string, never> {
  const options = loaded.experiment.eval;
  if (!runOptionsOf(loaded).heldOut) return options ?? {};
  const general = run.path('datasets', 'general-prompts.heldout.json');
  const probes = run.path('datasets', 'probes.heldout.json');
  const filled = structuredClone(options ?? {}) as Partial<EvalOptions>;
  if (filled.generalPrompts === undefined && existsSync(general)) filled.generalPrompts = general;
  if (filled.identity?.probes === undefined && existsSync(probes)) filled.identity = { ...(filled.identity ?? {}), probes } as EvalOptions['identity'];
  return filled as EvalOptions;
}

/**
 * Evaluates base, prompted (each constitution's system prompt on the subject model), every trained
 * adapter the run's train journal lists, and run.subjects; judges: models.judge, and
 * models.secondJudge for agreement; writes <run>/evals/summary.json.
 */
export async function evalStage(ctx: StageContext, options: StageOptions = {}): Promise<EvalSummary> {
  const { loaded, run } = ctx;
  const { experiment } = loaded;
  const runOptions = runOptionsOf(loaded);
  const evalOptions = evalOptionsFor(loaded, run);
  const names = { base: evalOptions.baseline ?? 'base', prompted: evalOptions.prompted ?? 'prompted' };
  const constitutions = loaded.constitutions.map((c) => c.constitution);
  const owned: ChatModel[] = [];
  const board = progressBoard(options.progress);
  try {
    const subjects: Subject[] = baselineSubjects(await ctx.model('subject'), constitutions, names);
    const trained = run.journal<TrainedCell>('train/adapters').values();
    const baseRef = trained.length > 0 ? await trainableBase(loaded) : undefined;
    for (const cell of trained) {
      const output = resolve(run.dir, cell.output);
      if (!existsSync(output)) continue;
      const ref: LocalModelRef =
        cell.kind === 'adapter' ? { provider: 'local', path: baseRef!.path, adapters: [{ path: output, scale: 1 }], concurrency: baseRef!.concurrency } : { provider: 'local', path: output, adapters: [], concurrency: baseRef!.concurrency };
      const model = await createChatModel(ref, { noCache: options.noCache, accounting: ctx.accounting });
      owned.push(model);
      subjects.push({ name: cellSubjectName(cell), model, persona: cell.persona });
    }
    checkSubjects(loaded);
    for (const extra of runOptions.subjects) {
      const model = await createChatModel(extra.model, { noCache: options.noCache, accounting: ctx.accounting });
      owned.push(model);
      subjects.push({ name: extra.name, model, persona: extra.persona, systemPrompt: extra.systemPrompt });
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
    ctx.saveAccounting();
    for (const model of owned) await model.close?.();
  }
}

export interface RunSummary {
  run: string;
  stages: string[];
  generate?: { dir: string; personas: { persona: string; datasets: Record<string, Record<string, number>> }[] };
  train?: TrainSummary;
  eval?: EvalSummary;
  report?: { html: string; markdown: string };
}

/**
 * generate -> train -> eval -> report over the matrix. Everything is validated (experiment,
 * constitutions, endpoints, the matrix's needs) before the run directory is touched; rerunning
 * after an interruption continues where it stopped.
 */
export async function runExperiment(file: string, options: StageOptions & { log?: (line: string) => void } = {}): Promise<RunSummary> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const ctx = await prepareStage(file, options, checkRun);
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
