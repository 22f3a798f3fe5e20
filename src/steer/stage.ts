/**
 * The `steer` stage over an experiment: for every selected constitution trait, contrastive prompts
 * (teacher or file), the persona vector, the layer sweep, projection monitoring and the fine-tuning
 * shift of given adapters; then, when configured, the assistant axis and capping calibration. Files
 * under <run>/steer/ (see docs/steering.md); judge calls and rollouts are journaled, so a killed run
 * resumes. steeredSubjects() turns the configured subjects into evals subjects.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import type { Constitution, Trait } from '../constitution/index.js';
import { InputError } from '../core/errors.js';
import { type RunDir, writeFileAtomic } from '../core/journal.js';
import { type Hooks, parseLocalModelRef } from '../engine/index.js';
import { Judge } from '../providers/judge.js';
import type { ModelRef } from '../providers/ref.js';
import type { ChatModel } from '../providers/types.js';
import { chatRowSchema, readJsonl } from '../train/index.js';
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
export function requireLocal(ref: ModelRef): ModelRef {
  const local = typeof ref === 'string' ? ref === 'tiny' || ref.startsWith('local:') || ref.startsWith('hf:') : ref.provider === 'local';
  if (!local) throw new InputError('experiment', 'models.subject', 'a local model ("local:<dir>" or "tiny") for the steer stage: persona vectors need the engine\'s activations');
  return ref;
}

/** A trait named by 0-based index, label or text. */
export function resolveTrait(c: Constitution, ref: string | number, field = 'steer.traits'): number {
  const i = typeof ref === 'number' ? ref : c.traits.findIndex((t) => t.label === ref || t.trait === ref);
  if (i < 0 || i >= c.traits.length) throw new InputError('experiment', field, `a trait of "${c.name}" (0..${c.traits.length - 1}, a label or the trait's text); found ${JSON.stringify(ref)}`);
  return i;
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'persona';

/** Where a trait's files live in the run. */
export function traitDir(run: RunDir, persona: string, traitIndex: number): string {
  return run.path('steer', slug(persona), `t${traitIndex}`);
}

export interface TraitSummary {
  persona: string;
  traitIndex: number;
  trait: string;
  vectorFile: string;
  counts: FilterCounts;
  sweep: SweepResult;
  monitor: { layer: number; correlation: Correlation; missing: number } | null;
  shifts: { adapter: string; layers: LayerShift[] }[];
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
  seed?: number;
  onProgress?: (label: string, done: number, total: number) => void;
}

const fileIn = (baseDir: string, p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));

/** The train stage's chat rows, ending with the assistant reply that is screened. */
const screenRowSchema = chatRowSchema.refine((r) => r.messages.length >= 2 && r.messages.at(-1)!.role === 'assistant', {
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
    prompts = await generateTraitPrompts(input.teacher, trait, { pairs: o.pairs, questions: o.questions, seed: input.seed });
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
  try {
    const traits: TraitSummary[] = [];
    for (const c of input.constitutions) {
      const indices = (o.traits ?? c.traits.map((_, i) => i)).map((ref) => resolveTrait(c, ref));
      for (const t of indices) {
        const dir = traitDir(run, c.name, t);
        const label = `${c.name} t${t}`;
        const journalPrefix = `steer/${slug(c.name)}/t${t}`;
        const prompts = await traitPrompts(input, c, c.traits[t], dir);
        const extracted = await extractPersonaVector({
          ...common,
          engine,
          judge,
          prompts,
          options: o.extract,
          runDir: run,
          journalPrefix,
          onProgress: (phase, done, total) => input.onProgress?.(`${label} ${phase}`, done, total),
        });
        const sweep = await runSweep({
          ...common,
          engine,
          judge,
          vector: extracted.vector,
          questions: extracted.evaluate,
          options: o.sweep,
          runDir: run,
          journalPrefix: `${journalPrefix}/sweep`,
          onProgress: (phase, done, total) => input.onProgress?.(`${label} sweep ${phase}`, done, total),
        });
        const vector: LayerVectors = { ...extracted.vector, meta: { ...extracted.vector.meta, chosenLayer: sweep.chosen?.layer ?? null, chosenCoef: sweep.chosen?.coef ?? null } };
        const vectorFile = join(dir, `vector.${o.extract.format}`);
        saveVectors(vectorFile, vector);
        writeFileAtomic(join(dir, 'sweep.json'), JSON.stringify(sweep, null, 2) + '\n');
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
        for (const adapter of o.monitor.adapters) {
          const base = parseLocalModelRef(input.subject);
          const trained = SteerEngine.open({ ...base, adapters: [...base.adapters, { path: fileIn(input.baseDir, adapter), scale: 1 }] });
          try {
            const conversations = extracted.evaluate.map((q) => [{ role: 'user' as const, content: q }]);
            shifts.push({ adapter, layers: await finetuningShift({ base: engine, trained, vector, conversations, position: o.monitor.shiftPosition, maxTokens: o.monitor.maxTokens, batchSize: o.batchSize }) });
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
          writeFileAtomic(results, JSON.stringify({ file, layer, ...result }, null, 2) + '\n');
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
        writeFileAtomic(join(dir, 'monitor.json'), JSON.stringify({ monitor, shifts }, null, 2) + '\n');
        traits.push(summary);
      }
    }
    const axis = o.axis ? await axisStage(input, engine) : null;
    const summary: SteerSummary = { model: engine.modelId, traits, axis };
    writeFileAtomic(run.path('steer', 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
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
  const file = input.run.path('steer', 'assistant-axis.safetensors');
  const { capping: _hook, ...rest } = calibration;
  saveVectors(file, { ...axis, meta: { ...axis.meta, band: JSON.stringify(calibration.layers), axisLayer: calibration.axisLayer, floors: JSON.stringify(calibration.floors), percentile: calibration.percentile } });
  writeFileAtomic(input.run.path('steer', 'capping.json'), JSON.stringify(rest, null, 2) + '\n');
  return { ...rest, file };
}

const cappingFileSchema = z.object({ layers: z.array(z.number().int()), axisLayer: z.number().int(), floors: z.array(z.number()) }).passthrough();

/** An evals subject (src/evals Subject): a name, a ChatModel and the persona it stands for. */
export interface SteeredSubject {
  name: string;
  model: ChatModel;
  persona?: string;
}

/**
 * The configured steered / capped subjects, from the vectors, sweep choices and capping calibration a
 * finished steer stage left in the run. They share one loaded engine (returned for closing).
 */
export function steeredSubjects(input: { constitutions: Constitution[]; options: SteerOptions; subject: ModelRef; run: RunDir }): { subjects: SteeredSubject[]; engine: SteerEngine } {
  requireLocal(input.subject);
  const planned = input.options.subjects.map((s, i) => {
    const field = `steer.subjects[${i}]`;
    const c = s.persona === undefined ? input.constitutions[0] : input.constitutions.find((x) => x.name === s.persona);
    if (!c) throw new InputError('experiment', `${field}.persona`, `one of the constitutions (${input.constitutions.map((x) => x.name).join(', ')})`);
    const hooks: Hooks = {};
    if (s.steer) {
      const t = resolveTrait(c, s.steer.trait, `${field}.steer.trait`);
      const dir = traitDir(input.run, c.name, t);
      const file = ['vector.safetensors', 'vector.json'].map((f) => join(dir, f)).find(existsSync);
      if (!file) throw new InputError(dir, 'vector', `a persona vector for ${c.name} trait ${t} (run the steer stage first)`);
      const vector = loadVectors(file);
      const layer = s.steer.layer ?? (vector.meta.chosenLayer as number | null);
      const coef = s.steer.coef ?? (vector.meta.chosenCoef as number | null);
      if (layer === null || coef === null) throw new InputError('experiment', `${field}.steer`, 'a layer and coef (the sweep chose none: no cell kept coherence)');
      hooks.steer = [{ layer, vector: vectorAt(vector, layer), coef, positions: s.steer.positions }];
    }
    if (s.cap) {
      const calibrationFile = input.run.path('steer', 'capping.json');
      if (!existsSync(calibrationFile)) throw new InputError(calibrationFile, '', 'a capping calibration (configure steer.axis and run the steer stage first)');
      const cal = cappingFileSchema.parse(JSON.parse(readFileSync(calibrationFile, 'utf8')));
      const axis = loadVectors(input.run.path('steer', 'assistant-axis.safetensors'));
      hooks.cap = floorCapping(vectorAt(axis, cal.axisLayer), cal.layers, cal.floors);
    }
    return { name: s.name, hooks, persona: s.steer ? c.name : undefined };
  });
  const engine = SteerEngine.open(input.subject);
  return { subjects: planned.map((p) => ({ name: p.name, model: engine.withHooks(p.hooks).asChatModel(), persona: p.persona })), engine };
}
