/**
 * Training (docs/protocols.md §2-3, §5): SFT, DPO and GRPO of LoRA adapters (or every weight of a small model)
 * on the engine's own graph and autodiff, and linear adapter mixing. See docs/training.md.
 */
import { loadLoraAdapter, mixLoraAdapters, saveLoraAdapter } from '../engine/io/peft.js';
import { trainDpo } from './dpo.js';
import { trainGrpo } from './grpo.js';
import { trainSft } from './sft.js';
import type { StepLog } from './trainer.js';

export { trainSft, trainDpo, trainGrpo };
export type { TrainOutput, TrainRunInput } from './sft.js';
export type { GrpoInput } from './grpo.js';
export { type Classifier, type Reward, type RewardFunction, makeRewardFunction, groupAdvantages } from './rewards.js';
export type { StepLog };
export { sftChatRowSchema, pairRowSchema, promptRowSchema, readJsonl, sftTextRowSchema } from './data.js';
export type { SftChatRow, PairRow, PromptRow, SftTextRow } from './data.js';
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
