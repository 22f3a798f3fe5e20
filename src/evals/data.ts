/** Eval data sets: a file named in the options (relative to the experiment) or the shipped one. */
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z, type ZodType } from 'zod';
import { loadFile } from '../core/load.js';

/** data/evals/ of the installed package. */
export const SHIPPED_DATA_DIR = fileURLToPath(new URL('../../data/evals/', import.meta.url));

export function loadEvalData<T>(baseDir: string, file: string | undefined, shippedName: string, schema: ZodType<T>): T {
  const path = file ? (isAbsolute(file) ? file : resolve(baseDir, file)) : resolve(SHIPPED_DATA_DIR, shippedName);
  return loadFile(path, schema);
}

export const generalPromptsSchema = z.array(z.string().min(1)).min(1);

export const suffixesSchema = z.array(z.object({ id: z.string().regex(/^[A-Za-z0-9_-]+$/), text: z.string().min(1) }).strict()).min(1);

export const traitWordsSchema = z.array(z.string().regex(/^[A-Za-z-]+$/, 'expected a single word')).min(2);

export const identityProbeSchema = z.object({ id: z.string().min(1), category: z.enum(['direct', 'indirect', 'adversarial']), prompt: z.string().min(1) }).passthrough();
export const identityProbesSchema = z.array(identityProbeSchema).min(1);

export const leakageQuestionsSchema = z
  .array(z.object({ id: z.string().min(1), category: z.string().min(1), question: z.string().min(1) }).strict())
  .min(1);

export const ipipItemSchema = z
  .object({
    id: z.number().int().positive(),
    text: z.string().min(1),
    /** Facet code: N1..N6, E1..E6, O1..O6, A1..A6, C1..C6. */
    facet: z.string().regex(/^[NEOAC][1-6]$/),
    /** -1: reverse-keyed (score 6 - answer). */
    key: z.union([z.literal(1), z.literal(-1)]),
  })
  .strict();
export const ipipSchema = z
  .object({
    source: z.string(),
    facets: z.record(z.string().regex(/^[NEOAC][1-6]$/), z.string()),
    items: z.array(ipipItemSchema).min(1),
  })
  .strict();

export const capabilityQuestionsSchema = z
  .array(
    z
      .object({
        id: z.string().min(1),
        kind: z.string().min(1),
        question: z.string().min(1),
        answer: z.string().min(1),
        /** Other accepted spellings of the answer. */
        accept: z.array(z.string().min(1)).optional(),
      })
      .strict(),
  )
  .min(1);

export type Suffix = z.infer<typeof suffixesSchema>[number];
export type IdentityProbe = z.infer<typeof identityProbeSchema>;
export type LeakageQuestion = z.infer<typeof leakageQuestionsSchema>[number];
export type IpipItem = z.infer<typeof ipipItemSchema>;
export type IpipInventory = z.infer<typeof ipipSchema>;
export type CapabilityQuestion = z.infer<typeof capabilityQuestionsSchema>[number];
