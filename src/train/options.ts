import { z } from 'zod';

/** Options of the `train` stage (SFT, DPO, GRPO; FIELD §2-3). Filled in by the training issue. */
export const trainOptionsSchema = z.object({}).strict();
export type TrainOptions = z.infer<typeof trainOptionsSchema>;
