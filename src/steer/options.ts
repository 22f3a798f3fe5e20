import { z } from 'zod';

/** Options of persona vectors, steering and capping (FIELD §5). */
export const steerOptionsSchema = z.object({}).strict();
export type SteerOptions = z.infer<typeof steerOptionsSchema>;
