/**
 * Training (docs/protocols.md §2-3, §5): SFT, DPO and GRPO of LoRA adapters (or every weight of a small model)
 * on the engine's own graph and autodiff, and linear adapter mixing. See docs/training.md.
 */
import { join } from 'node:path';
import { loadLoraAdapter, mixLoraAdapters, saveLoraAdapter } from '../engine/io/peft.js';
import type { ChatModel } from '../providers/types.js';
import type { ChatRow, PairRow, PromptRow, TextRow } from './data.js';
import { trainDpo } from './dpo.js';
import { trainGrpo } from './grpo.js';
import type { TrainOptions } from './options.js';
import type { Classifier } from './rewards.js';
import { type TrainOutput, trainSft } from './sft.js';
import type { StepLog } from './trainer.js';

export { trainSft, trainDpo, trainGrpo };
export type { TrainOutput, TrainRunInput } from './sft.js';
export type { GrpoInput } from './grpo.js';
export { type Classifier, type Reward, type RewardFunction, makeRewardFunction, groupAdvantages } from './rewards.js';
export type { StepLog };
export { chatRowSchema, pairRowSchema, promptRowSchema, readJsonl, textRowSchema } from './data.js';
export type { ChatRow, PairRow, PromptRow, TextRow } from './data.js';
export {
  type DpoOptions,
  type GrpoOptions,
  type SftOptions,
  type TrainOptions,
  IDENTITY_SIGNALS,
  dpoOptionsSchema,
  grpoOptionsSchema,
  sftOptionsSchema,
  trainOptionsSchema,
} from './options.js';

/**
 * Mixes PEFT adapters linearly (delta = sum_i weight_i * delta_i, exact, by rank concatenation) and
 * writes the result to `outDir`; the recipe's mix is DPO 1.0 + SFT 0.25. Returns `outDir`.
 */
export function mixAdapters(parts: readonly { dir: string; weight: number }[], outDir: string, baseModel?: string): string {
  const mixed = mixLoraAdapters(
    parts.map((p) => ({ adapter: loadLoraAdapter(p.dir), weight: p.weight })),
    baseModel,
  );
  saveLoraAdapter(outDir, mixed);
  return outDir;
}

/** The mix of a run's objectives by the `mix.weights` option: runDir/<objective>/adapter, into runDir/mixed. */
export function mixRunAdapters(runDir: string, weights: Record<string, number>, baseModel?: string): string {
  return mixAdapters(
    Object.entries(weights).map(([objective, weight]) => ({ dir: join(runDir, objective, 'adapter'), weight })),
    join(runDir, 'mixed'),
    baseModel,
  );
}

export interface RecipeInput {
  /** The base model directory. */
  model: string;
  options: TrainOptions;
  /** runDir/<objective>/ per objective, runDir/mixed for the mix. */
  runDir: string;
  /** Rows per objective: chat/text rows for sft, pairs for dpo, prompts for grpo. */
  data: { sft?: readonly (ChatRow | TextRow)[]; dpo?: readonly PairRow[]; grpo?: readonly PromptRow[] };
  seed?: number;
  threads?: number;
  judge?: ChatModel;
  classifiers?: Record<string, Classifier>;
  onStep?: (objective: string, log: StepLog, totalSteps: number) => void;
}

export interface RecipeOutput {
  outputs: Partial<Record<'sft' | 'dpo' | 'grpo', TrainOutput>>;
  /** The mixed adapter when more than one LoRA objective ran, else null. */
  mixed: string | null;
}

/**
 * The train stage: each objective of `options.objectives` in order, each a fresh adapter on the base
 * (as the open recipe trains DPO and introspection SFT separately), then the linear mix of the
 * adapters by `options.mix.weights` (objectives without a weight are left out of the mix).
 */
export async function trainRecipe(input: RecipeInput): Promise<RecipeOutput> {
  const outputs: RecipeOutput['outputs'] = {};
  for (const objective of input.options.objectives) {
    const common = { model: input.model, runDir: join(input.runDir, objective), seed: input.seed, threads: input.threads, onStep: (l: StepLog, n: number) => input.onStep?.(objective, l, n) };
    const rows = input.data[objective];
    if (!rows) throw new Error(`train: objective ${objective} has no data`);
    if (objective === 'sft') outputs.sft = await trainSft({ ...common, options: input.options.sft, rows: rows as readonly (ChatRow | TextRow)[] });
    else if (objective === 'dpo') outputs.dpo = await trainDpo({ ...common, options: input.options.dpo, rows: rows as readonly PairRow[] });
    else outputs.grpo = await trainGrpo({ ...common, options: input.options.grpo, rows: rows as readonly PromptRow[], judge: input.judge, classifiers: input.classifiers });
  }
  const mixable = Object.entries(input.options.mix.weights).filter(([objective]) => {
    const o = outputs[objective as keyof typeof outputs];
    return o && !input.options[objective as 'sft' | 'dpo' | 'grpo'].fullParameter;
  });
  const mixed = mixable.length > 1 ? mixRunAdapters(input.runDir, Object.fromEntries(mixable), input.model) : null;
  return { outputs, mixed };
}
