/**
 * One zod schema per dataset row type. Training rows are in the shapes other tools train with
 * (chat `messages`, TRL conversational `prompt/chosen/rejected`, plain `text`) plus a `meta` object
 * with provenance; `export` writes the bare shapes (see ./shapes.ts) for tools that reject extra keys.
 */
import { z } from 'zod';

export const messageSchema = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() }).strict();
export type Message = z.infer<typeof messageSchema>;

export const inoculationMetaSchema = z
  .object({
    instruction: z.string().min(1),
    model: z.string(),
    template: z.string(),
    /** The id of the row this one is the inoculated copy of. */
    of: z.string(),
  })
  .strict();

/** Where a row came from. `trait` is the source trait's text (null for general prompts and whole-persona rows). */
export const provenanceSchema = z
  .object({
    id: z.string().min(1),
    persona: z.string(),
    dataset: z.string(),
    model: z.string().describe('Generator model id; for pairs "chosen-model | rejected-model".'),
    template: z.string().describe('Prompt template id "<id>@<sha8>", or the name of the fixed prompt used.'),
    seed: z.number().int(),
    trait: z.string().nullable(),
    source: z.string().describe('Where the user prompt came from: seed, expanded, general, reflection, free, leading, document, file.'),
    sample: z.number().int().nonnegative(),
    inoculation: inoculationMetaSchema.optional(),
  })
  .strict();
export type Provenance = z.infer<typeof provenanceSchema>;

export const chatRowSchema = z
  .object({
    messages: z.array(messageSchema).min(2),
    meta: provenanceSchema,
  })
  .strict();
export type ChatRow = z.infer<typeof chatRowSchema>;

export const dpoRowSchema = z
  .object({
    prompt: z.array(messageSchema).min(1),
    chosen: z.array(messageSchema).length(1),
    rejected: z.array(messageSchema).length(1),
    meta: provenanceSchema,
  })
  .strict();
export type DpoRow = z.infer<typeof dpoRowSchema>;

export const textRowSchema = z.object({ text: z.string().min(1), meta: provenanceSchema }).strict();
export type TextRow = z.infer<typeof textRowSchema>;

export const SPLITS = ['train', 'heldout'] as const;
export const splitSchema = z.enum(SPLITS);
export type Split = z.infer<typeof splitSchema>;

/** A user prompt: a constitution seed, an expanded one or a general chat prompt. */
export const promptRowSchema = z
  .object({
    id: z.string(),
    prompt: z.string().min(1),
    split: splitSchema,
    source: z.enum(['seed', 'expanded', 'general']),
    trait: z.string().nullable(),
    /** Provenance of an expanded prompt: generator model id, template id, seed; null for seeds and general prompts. */
    model: z.string().nullable(),
    template: z.string().nullable(),
    seed: z.number().int().nullable(),
  })
  .strict();
export type PromptRow = z.infer<typeof promptRowSchema>;

export const PROBE_CATEGORIES = ['direct', 'indirect', 'adversarial'] as const;
export const probeRowSchema = z
  .object({
    id: z.string().min(1),
    category: z.enum(PROBE_CATEGORIES),
    prompt: z.string().min(1),
    split: splitSchema,
  })
  .strict();
export type ProbeRow = z.infer<typeof probeRowSchema>;

/** The manifest written beside every dataset file. */
export const datasetManifestSchema = z
  .object({
    dataset: z.string(),
    persona: z.string().nullable(),
    shape: z.enum(['messages', 'dpo', 'text', 'prompts', 'probes']),
    files: z.record(z.string(), z.string()).describe('Split or variant -> file name beside the manifest.'),
    rows: z.record(z.string(), z.number().int().nonnegative()).describe('Rows per file.'),
    tokens: z.number().int().nonnegative().describe('Tokens of all message contents / texts in the main file.'),
    tokenizer: z.string(),
    generated: z.number().int().nonnegative().describe('Items generated before filtering.'),
    dropped: z.record(z.string(), z.number().int().nonnegative()).describe('Rows dropped, by filter.'),
    models: z.array(z.string()),
    seed: z.number().int(),
    configHash: z.string(),
    notes: z.array(z.string()).default([]),
    extra: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type DatasetManifest = z.infer<typeof datasetManifestSchema>;
