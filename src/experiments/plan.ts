/**
 * `run --dry-run`: what a run would do, from the experiment alone (validated as a run validates it),
 * without touching a model or the run directory: the stages, the model of each role, the datasets
 * and their sizes, the matrix of trained cells, the subjects evaluated and each eval's sample sizes,
 * and estimates of model calls and tokens per role, cost (where prices are set) and ETA (estimate.ts).
 */
import { evalOptionsSchema } from '../evals/options.js';
import { generateOptionsSchema } from '../data/options.js';
import type { ModelRef } from '../providers/index.js';
import { cellSubjectName } from './cells.js';
import { estimateRun, estimateText, type RunEstimate } from './estimate.js';
import { loadExperiment } from './load.js';
import { checkMatrix, planMatrix, runOptionsOf } from './runner.js';
import { checkSteer, plannedSteeringSubjects, runSteers } from './steer-stage.js';

export interface RunPlan {
  experiment: string;
  runDir: string;
  stages: string[];
  seeds: number[];
  models: Record<string, string>;
  personas: { name: string; traits: number }[];
  datasets: string[];
  /** Trained cells as eval subject names (<persona>.<method>.seed-<n>). */
  cells: string[];
  subjects: string[];
  /** Per eval, its numeric and boolean options (samples, prompts, tokens). */
  evals: Record<string, Record<string, number | boolean>>;
  /** Smoke-test limit (run --limit), when set. */
  limit?: number;
  estimate: RunEstimate;
}

/** A role's model without anything secret: "provider:model" for an object, the string as written otherwise. */
const describeRef = (ref: ModelRef): string => (typeof ref === 'string' ? ref.replace(/\/\/[^@/]*@/, '//') : `${ref.provider}:${'model' in ref ? String(ref.model) : ''}`);

/** The scalar options of an object, one level of nesting flattened ("judge.maxTokens"). */
function scalars(o: unknown, prefix = ''): Record<string, number | boolean> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return {};
  return Object.fromEntries(
    Object.entries(o).flatMap(([k, v]): [string, number | boolean][] =>
      typeof v === 'number' || typeof v === 'boolean' ? [[prefix + k, v]] : prefix === '' && typeof v === 'object' ? Object.entries(scalars(v, `${k}.`)) : [],
    ),
  );
}

export async function planRun(file: string, overrides: string[] = []): Promise<RunPlan> {
  const loaded = loadExperiment(file, overrides);
  const { experiment } = loaded;
  const run = { ...runOptionsOf(loaded) };
  run.stages = run.stages.filter((s) => s !== 'steer' || runSteers(loaded, run.stages));
  if (run.stages.includes('train')) await checkMatrix(loaded);
  if (run.stages.includes('steer')) checkSteer(loaded);
  const steering = run.stages.includes('steer') ? plannedSteeringSubjects(loaded) : [];
  const cells = run.stages.includes('train') || run.stages.includes('eval') ? planMatrix(loaded).map((c) => cellSubjectName(c)) : [];
  const evalOptions = evalOptionsSchema.parse(experiment.eval ?? {});
  const generate = generateOptionsSchema.parse(experiment.generate ?? {});
  const models = Object.fromEntries(Object.entries(experiment.models).flatMap(([role, ref]) => (ref === undefined ? [] : [[role, describeRef(ref as ModelRef)]])));
  const subjects = run.stages.includes('eval') ? [evalOptions.baseline, evalOptions.prompted, ...cells, ...steering, ...run.subjects.map((s) => s.name)] : [];
  const limit = evalOptions.limit ?? generate.limit;
  return {
    experiment: experiment.name,
    runDir: loaded.runDir,
    stages: run.stages,
    seeds: experiment.seeds,
    models,
    personas: loaded.constitutions.map((c) => ({ name: c.constitution.name, traits: c.constitution.traits.length })),
    datasets: run.stages.includes('generate') ? generate.datasets : [],
    cells,
    subjects,
    evals: run.stages.includes('eval') ? Object.fromEntries(evalOptions.evals.map((e) => [e, scalars((evalOptions as Record<string, unknown>)[e])])) : {},
    ...(limit !== undefined ? { limit } : {}),
    estimate: estimateRun(loaded, run.stages, subjects.length),
  };
}

export function planText(plan: RunPlan): string {
  const options = (o: Record<string, number | boolean>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'defaults';
  return [
    `experiment ${plan.experiment} -> ${plan.runDir}`,
    `stages: ${plan.stages.join(' -> ')}`,
    `models: ${Object.entries(plan.models)
      .map(([role, m]) => `${role} ${m}`)
      .join('; ')}`,
    `personas: ${plan.personas.map((p) => `${p.name} (${p.traits} traits)`).join(', ')}; seeds ${plan.seeds.join(', ')}`,
    ...(plan.datasets.length ? [`generate: ${plan.datasets.join(', ')}`] : []),
    `train: ${plan.cells.length} adapter(s)${plan.cells.length ? `: ${plan.cells.join(', ')}` : ''}`,
    ...(plan.subjects.length ? [`eval: ${plan.subjects.length} subject(s): ${plan.subjects.join(', ')}`] : []),
    ...Object.entries(plan.evals).map(([e, o]) => `  ${e}: ${options(o)}`),
    ...(plan.limit !== undefined ? [`limit: at most ${plan.limit} samples per eval and subject, ${plan.limit} prompts per trait and ${plan.limit} generated items per dataset (smoke test)`] : []),
    ...estimateText(plan.estimate),
    'nothing was run (--dry-run)',
  ].join('\n');
}
