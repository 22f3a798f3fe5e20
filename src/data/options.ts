import { z } from 'zod';

/** Options of the `generate` stage (FIELD §1-3). Filled in by the data engine. */
export const generateOptionsSchema = z.object({}).strict();
export type GenerateOptions = z.infer<typeof generateOptionsSchema>;
