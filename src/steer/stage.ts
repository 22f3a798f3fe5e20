/**
 * The `steer` stage over an experiment: for every selected constitution trait, contrastive prompts
 * (teacher or file), the persona vector, the layer sweep, projection monitoring and the fine-tuning
 * shift of given adapters; then, when configured, the assistant axis and capping calibration. Files
 * under <run>/steer/ (see docs/steering.md); judge calls and rollouts are journaled, so a killed run
 * resumes. steeredSubjects() turns the configured subjects into evals subjects.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Constitution, Trait } from '../constitution/index.js';
import type { CellIdentity } from '../core/cell.js';
import { personaSlug } from '../core/slug.js';
import { InputError } from '../core/errors.js';
import { type RunDir, writeFileAtomic } from '../core/journal.js';
import type { Hooks } from '../engine/index.js';
import { Judge } from '../providers/judge.js';
import { resolveModelRef, type LocalModelRef, type ModelRef, type SteeredModelRef } from '../providers/refs/index.js';
import type { ChatModel } from '../providers/types.js';
import { sftChatRowSchema, readJsonl } from '../train/index.js';
import { cappingFileSchema, monitorFileSchema, screenFileSchema, steerSummarySchema, sweepFileSchema, writeSteerFile } from './artifacts.js';
import { assistantAxis, calibrateCapping, floorCapping, DEFAULT_PERSONAS_FILE, DEFAULT_QUESTIONS_FILE, readStringList, type CappingCalibration } from './axis.js';
import { SteerEngine } from './engine.js';
import { extractPersonaVector, type FilterCounts } from './extract.js';
import { finetuningShift, monitorConversations, projectionVsExpression, screenData, type LayerShift, type ScreenRow } from './monitor.js';
import type { SteerOptions } from './options.js';
import { generateTraitPrompts, readTraitPrompts, traitPromptsSchema, type TraitPrompts } from './prompts.js';
import { runSweep, type SweepResult } from './sweep.js';
import type { Correlation } from './math.js';
import { loadVectors, saveVectors, vectorAt, type LayerVectors } from './vectors.js';

/** The subject model must run on the engine: activations are read and written inside it. */
export function requireLocal(ref: ModelRef): LocalModelRef {
  const resolved = resolveModelRef(ref);
  if (!resolved.entry.capabilities.steer) throw new InputError('experiment', 'models.subject', 'a local model ("local:<dir>" or "tiny") for the steer stage: persona vectors need the engine\'s activations');
  return resolved.ref as LocalModelRef;
}

/** A trait named by 0-based index, label or text. */
export function resolveTrait(c: Constitution, ref: string | number, field = 'steer.traits'): number {
  const i = typeof ref === 'number' ? ref : c.traits.findIndex((t) => t.label === ref || t.trait === ref);
  if (i < 0 || i >= c.traits.length) throw new InputError('experiment', field, `a trait of "${c.name}" (0..${c.traits.length - 1}, a label or the trait's text); found ${JSON.stringify(ref)}`);
  return i;
}


/** Where a trait's files live in the run: under `folder` (steer/, or a later seed's steer/seed-<n>/). */
export function traitDir(run: RunDir, persona: string, traitIndex: number, folder = 'steer'): string {
  return run.path(folder, personaSlug(persona), `t${traitIndex}`);
}

export interface TraitSummary {
  persona: string;
  traitIndex: number;
  trait: string;
  vectorFile: string;
  counts: FilterCounts;
  sweep: SweepResult;
  monitor: { layer: number; correlation: Correlation; missing: number } | null;
  shifts: { adapter: string; cell?: CellIdentity; layers: LayerShift[] }[];
  /** Per screened file: rows, how many were flagged, and where the per-row results are. */
  screened: { file: string; rows: number; flagged: number; results: string }[];
}

export interface SteerSummary {
  model: string;
  traits: TraitSummary[];
  axis: (Omit<CappingCalibration, 'capping'> & { file: string }) | null;
}

export interface SteerStageInput {
  constitutions: Constitution[];
  options: SteerOptions;
  subject: ModelRef;
  /** Writes the contrastive prompts (not needed with extract.promptsFile). */
  teacher?: ChatModel;
  judge: ChatModel;
  run: RunDir;
  /** Relative files in the options are resolved against it (the experiment file's directory). */
  baseDir: string;
  /** Seed of the sweep's, monitoring's and the assistant axis's rollouts. */
  seed?: number;
  /** Seed of the extraction data (the teacher's contrastive prompts and the extraction rollouts); default: `seed`. */
  dataSeed?: number;
  /** The run folder the stage writes (its files and journals): steer/ by default, steer/seed-<n>/ for a later seed of a run. */
  folder?: string;
  /** The run folder of the extraction data, shared by the seeds that extract with the same data seed; default: `folder`. */
  dataFolder?: string;
  /** Adapters trained by the same run, measured for the fine-tuning shift beside monitor.adapters (`adapter` names it in the files). */
  trained?: { adapter: string; path: string; cell: CellIdentity }[];
  onProgress?: (label: string, done: number, total: number) => void;
}

const fileIn = (baseDir: string, p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));

/** The train stage's chat rows, ending with the assistant reply that is screened. */
const screenRowSchema = sftChatRowSchema.refine((r) => r.messages.length >= 2 && r.messages.at(-1)!.role === 'assistant', {
  message: 'expected a conversation ending with an assistant reply',
  path: ['messages'],
});

/** Chat JSONL rows split into the conversation before the last assistant turn and that turn. */
export function readScreenRows(file: string, limit?: number): ScreenRow[] {
  return readJsonl(file, screenRowSchema)
    .slice(0, limit)
    .map((r) => ({ messages: r.messages.slice(0, -1).map(({ role, content }) => ({ role, content })), reply: r.messages.at(-1)!.content }));
}

async function traitPrompts(input: SteerStageInput, c: Constitution, trait: Trait, dir: string): Promise<TraitPrompts> {
  const saved = join(dir, 'prompts.json');
  if (existsSync(saved)) return traitPromptsSchema.parse(JSON.parse(readFileSync(saved, 'utf8')));
  const o = input.options.extract;
  let prompts: TraitPrompts | undefined;
  if (o.promptsFile) {
    prompts = readTraitPrompts(fileIn(input.baseDir, o.promptsFile), trait);
    if (!prompts) throw new InputError(o.promptsFile, 'trait', `an entry for the trait "${trait.label ?? trait.trait}" of ${c.name}`);
  } else {
    if (!input.teacher) throw new InputError('experiment', 'models.teacher', 'a teacher to write contrastive prompts (or steer.extract.promptsFile)');
    prompts = await generateTraitPrompts(input.teacher, trait, { pairs: o.pairs, questions: o.questions, seed: input.dataSeed ?? input.seed });
  }
  writeFileAtomic(saved, JSON.stringify(prompts, null, 2) + '\n');
  return prompts;
}

export async function runSteerStage(input: SteerStageInput): Promise<SteerSummary> {
  const { options: o, run } = input;
  const engine = SteerEngine.open(requireLocal(input.subject));
  const judge = new Judge(input.judge);
  const seed = input.seed ?? 1;
  const common = { concurrency: o.concurrency, batchSize: o.batchSize, seed };
  const folder = input.folder ?? 'steer';
  const dataFolder = input.dataFolder ?? folder;
  try {
    const traits: TraitSummary[] = [];
    for (const c of input.constitutions) {
      const indices = (o.traits ?? c.traits.map((_, i) => i)).map((ref) => resolveTrait(c, ref));
      for (const t of indices) {
        const dir = traitDir(run, c.name, t, folder);
        const label = `${c.name} t${t}`;
        const journalPrefix = `${folder}/${personaSlug(c.name)}/t${t}`;
        const prompts = await traitPrompts(input, c, c.traits[t], traitDir(run, c.name, t, dataFolder));
        const extracted = await extractPersonaVector({
          ...common,
          seed: input.dataSeed ?? seed,
          engine,
          judge,
          prompts,
          options: o.extract,
          runDir: run,
          journalPrefix: `${dataFolder}/${personaSlug(c.name)}/t${t}`,
          onProgress: (phase, done, total) => input.onProgress?.(`${label} ${phase}`, done, total),
        });
        const sweep = await runSweep({
          ...common,
          engine,
          judge,
          vector: extracted.vector,
          questions: extracted.evaluate,
          options: o.sweep,
          confidence: o.monitor.confidence,
          runDir: run,
          journalPrefix: `${journalPrefix}/sweep`,
          onProgress: (phase, done, total) => input.onProgress?.(`${label} sweep ${phase}`, done, total),
        });
        const vector: LayerVectors = { ...extracted.vector, meta: { ...extracted.vector.meta, chosenLayer: sweep.chosen?.layer ?? null, chosenCoef: sweep.chosen?.coef ?? null } };
        const vectorFile = join(dir, `vector.${o.extract.format}`);
        saveVectors(vectorFile, vector);
        writeSteerFile(join(dir, 'sweep.json'), sweepFileSchema, sweep);
        const layer = sweep.chosen?.layer;
        const monitor =
          layer === undefined
            ? null
            : await projectionVsExpression({
                ...common,
                engine,
                judge,
                vector,
                layer,
                conversations: monitorConversations(prompts, extracted.evaluate),
                maxTokens: o.monitor.maxTokens,
                confidence: o.monitor.confidence,
              });
        const shifts: TraitSummary['shifts'] = [];
        const adapters = [
          ...o.monitor.adapters.map((adapter) => ({ adapter, path: fileIn(input.baseDir, adapter), cell: undefined })),
          ...(input.trained ?? []).filter((a) => a.cell.persona === c.name),
        ];
        for (const { adapter, path, cell } of adapters) {
          const base = requireLocal(input.subject);
          const trained = SteerEngine.open({ ...base, adapters: [...base.adapters, { path, scale: 1 }] });
          try {
            const conversations = extracted.evaluate.map((q) => [{ role: 'user' as const, content: q }]);
            const layers = await finetuningShift({ base: engine, trained, vector, conversations, position: o.monitor.shiftPosition, maxTokens: o.monitor.maxTokens, batchSize: o.batchSize });
            shifts.push({ adapter, ...(cell ? { cell } : {}), layers });
          } finally {
            await trained.close();
          }
        }
        const screened: TraitSummary['screened'] = [];
        for (const [k, file] of o.monitor.screen.entries()) {
          if (layer === undefined) break;
          const rows = readScreenRows(fileIn(input.baseDir, file), o.monitor.screenRows);
          const result = await screenData({ engine, vector, layer, rows, flagFraction: o.monitor.flagFraction, maxTokens: o.monitor.maxTokens, batchSize: o.batchSize });
          const results = join(dir, `screen-${k}.json`);
          writeSteerFile(results, screenFileSchema, { file, layer, ...result });
          screened.push({ file, rows: rows.length, flagged: result.rows.filter((r) => r.flagged).length, results });
        }
        const summary: TraitSummary = {
          persona: c.name,
          traitIndex: t,
          trait: c.traits[t].trait,
          vectorFile,
          counts: extracted.counts,
          sweep,
          monitor: monitor && { layer: monitor.layer, correlation: monitor.correlation, missing: monitor.missing },
          shifts,
          screened,
        };
        writeSteerFile(join(dir, 'monitor.json'), monitorFileSchema, { monitor, shifts });
        traits.push(summary);
      }
    }
    const axis = o.axis ? await axisStage(input, engine) : null;
    const summary: SteerSummary = { model: engine.modelId, traits, axis };
    writeSteerFile(run.path(folder, 'summary.json'), steerSummarySchema, summary);
    return summary;
  } finally {
    await engine.close();
  }
}

async function axisStage(input: SteerStageInput, engine: SteerEngine): Promise<SteerSummary['axis']> {
  const a = input.options.axis!;
  const personas = readStringList(a.personasFile ? fileIn(input.baseDir, a.personasFile) : DEFAULT_PERSONAS_FILE, 'steer.axis.personasFile').slice(0, a.personas);
  const questions = readStringList(a.questionsFile ? fileIn(input.baseDir, a.questionsFile) : DEFAULT_QUESTIONS_FILE, 'steer.axis.questionsFile').slice(0, a.questions);
  const { axis, assistant } = await assistantAxis({
    engine,
    personas,
    questions,
    assistantSystemPrompt: a.assistantSystemPrompt,
    temperature: a.temperature,
    maxTokens: a.maxTokens,
    seed: input.seed,
    batchSize: input.options.batchSize,
    onProgress: (done, total) => input.onProgress?.('assistant axis', done, total),
  });
  const calibration = await calibrateCapping({ engine, axis, assistant, options: a, batchSize: input.options.batchSize });
  const folder = input.folder ?? 'steer';
  const file = input.run.path(folder, 'assistant-axis.safetensors');
  const { capping: _hook, ...rest } = calibration;
  saveVectors(file, { ...axis, meta: { ...axis.meta, band: JSON.stringify(calibration.layers), axisLayer: calibration.axisLayer, floors: JSON.stringify(calibration.floors), percentile: calibration.percentile } });
  writeSteerFile(input.run.path(folder, 'capping.json'), cappingFileSchema, rest);
  return { ...rest, file };
}

/** A configured steer.subjects entry as a model reference (the `steered` provider) and the persona it stands for. */
export interface SteeredSubjectRef {
  name: string;
  ref: SteeredModelRef;
  persona?: string;
  kind: 'steered' | 'capped';
}

/**
 * steer.subjects as `steered` model references on the subject model, from the vectors and capping
 * calibration a finished steer stage left in the run (layer and coef default to the sweep's choice).
 */
export function steeredSubjectRefs(input: { constitutions: Constitution[]; options: SteerOptions; subject: ModelRef; run: RunDir }): SteeredSubjectRef[] {
  if (input.options.subjects.length === 0) return [];
  const base = requireLocal(input.subject);
  return input.options.subjects.map((s, i) => {
    const field = `steer.subjects[${i}]`;
    const c = s.persona === undefined ? input.constitutions[0] : input.constitutions.find((x) => x.name === s.persona);
    if (!c) throw new InputError('experiment', `${field}.persona`, `one of the constitutions (${input.constitutions.map((x) => x.name).join(', ')})`);
    const ref: SteeredModelRef = { provider: 'steered', base };
    if (s.steer) {
      const t = resolveTrait(c, s.steer.trait, `${field}.steer.trait`);
      const dir = traitDir(input.run, c.name, t);
      const file = ['vector.safetensors', 'vector.json'].map((f) => join(dir, f)).find(existsSync);
      if (!file) throw new InputError(dir, 'vector', `a persona vector for ${c.name} trait ${t} (run the steer stage first)`);
      const { layer, coef } = steeringChoice(loadVectors(file), s.steer);
      if (layer === null || coef === null) throw new InputError('experiment', `${field}.steer`, 'a layer and coef (the sweep chose none: no cell raised expression at equal coherence)');
      ref.steer = { vector: file, layer, coef, positions: s.steer.positions };
    }
    if (s.cap) {
      const calibration = input.run.path('steer', 'capping.json');
      if (!existsSync(calibration)) throw new InputError(calibration, '', 'a capping calibration (configure steer.axis and run the steer stage first)');
      ref.cap = { calibration };
    }
    return { name: s.name, ref, persona: s.steer ? c.name : undefined, kind: s.steer ? 'steered' : 'capped' };
  });
}

/** The layer and coefficient to steer with: as given, else the sweep's choice stored with the vector. */
function steeringChoice(vector: LayerVectors, given: { layer?: number; coef?: number }): { layer: number | null; coef: number | null } {
  return { layer: given.layer ?? (vector.meta.chosenLayer as number | null), coef: given.coef ?? (vector.meta.chosenCoef as number | null) };
}

/**
 * The `steered` provider's model: the base on the engine with coef * v added at one layer and/or
 * activations capped along the assistant axis (capping.json with assistant-axis.safetensors beside it).
 */
export function steeredChatModel(ref: SteeredModelRef & { base: LocalModelRef }): ChatModel {
  const hooks: Hooks = {};
  if (ref.steer) {
    const vector = loadVectors(ref.steer.vector);
    const { layer, coef } = steeringChoice(vector, ref.steer);
    if (layer === null || coef === null) throw new InputError(ref.steer.vector, 'chosenLayer', 'a sweep choice of layer and coef, or both given in the model reference');
    hooks.steer = [{ layer, vector: vectorAt(vector, layer), coef, positions: ref.steer.positions }];
  }
  if (ref.cap) {
    const file = ref.cap.calibration;
    if (!existsSync(file)) throw new InputError(file, '', 'a capping calibration (configure steer.axis and run the steer stage first)');
    const cal = cappingFileSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    const axis = loadVectors(join(dirname(file), 'assistant-axis.safetensors'));
    hooks.cap = floorCapping(vectorAt(axis, cal.axisLayer), cal.layers, cal.floors);
  }
  return SteerEngine.open(ref.base).withHooks(hooks).asChatModel({ owned: true });
}
