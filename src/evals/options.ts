import { z } from 'zod';

/** Options of the `eval` stage (FIELD §4). Filled in by the evaluation suite. */
export const evalOptionsSchema = z.object({}).strict();
export type EvalOptions = z.infer<typeof evalOptionsSchema>;
