import { z } from 'zod';

/**
 * Options of the white-box stage (docs/protocols.md §5): persona vectors, the layer sweep, monitoring, the
 * assistant axis and activation capping, and the steered or capped subjects handed to the evals.
 * Published values are the defaults; numbers the field does not publish are marked "project default".
 * Files are relative to the experiment file.
 */

const positionsSchema = z
  .enum(['all', 'prompt', 'reply'])
  .describe('Where coef * v is added: every position, the prompt only, or the reply only (docs/protocols.md §5).');

const samplingSchema = (temperature: number, maxTokens: number) => ({
  temperature: z.number().min(0).max(2).default(temperature).describe('Sampling temperature of the rollouts.'),
  maxTokens: z.number().int().positive().default(maxTokens).describe('Most tokens per rollout (project default).'),
});

export const filterOptionsSchema = z
  .object({
    positiveMin: z.number().min(0).max(100).default(50).describe('Keep a pair only if the positive reply\'s trait score is at least this (published: 50).'),
    negativeBelow: z.number().min(0).max(100).default(50).describe('... and the negative reply\'s trait score is strictly below this (published: 50).'),
    coherenceMin: z.number().min(0).max(100).default(50).describe('... and both replies\' coherence is at least this (published: 50).'),
  })
  .strict();

export const extractOptionsSchema = z
  .object({
    pairs: z.number().int().positive().default(5).describe('Contrastive system-prompt pairs per trait, one eliciting and one suppressing it (published: 5).'),
    questions: z.number().int().positive().default(40).describe('Questions per trait (published: 40).'),
    extractQuestions: z.number().int().positive().default(20).describe('Of those, how many extract the vector; the rest evaluate it (published: 20 / 20).'),
    rollouts: z.number().int().positive().default(10).describe('Rollouts per system prompt and question (published: about 10).'),
    ...samplingSchema(1, 200),
    promptsFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        'JSON file with the pairs and questions instead of generating them with the teacher: [{"trait": <text or label>, "pairs": [{"positive", "negative"}], "questions": [..]}] (the shape written to steer/<trait>/prompts.json).',
      ),
    filter: filterOptionsSchema.prefault({}),
    format: z.enum(['json', 'safetensors']).default('safetensors').describe('How vectors are saved (both carry trait, layers, n kept, model id).'),
  })
  .strict()
  .refine((o) => o.extractQuestions <= o.questions - 2, {
    message: 'extractQuestions must leave at least two evaluation questions (the sweep chooses on one half and reports on the other)',
    path: ['extractQuestions'],
  });

export const sweepOptionsSchema = z
  .object({
    layers: z.array(z.number().int().nonnegative()).min(1).optional().describe('Candidate layers (0-based, the residual stream leaving block l); default every layer.'),
    coefficients: z.array(z.number()).min(1).default([0.5, 1, 1.5, 2, 2.5]).describe('Steering coefficients tried at each layer (project default, after the persona-vectors sweep range).'),
    positions: positionsSchema.default('all'),
    rollouts: z.number().int().min(3).default(3).describe('Rollouts per evaluation question and cell (at least 3: one sampled reply per question is too noisy to rank cells).'),
    ...samplingSchema(1, 200),
    coherenceTolerance: z
      .number()
      .min(0)
      .default(10)
      .describe('"Equal coherence": a cell counts only if its mean coherence is at least the unsteered mean minus this many points (project default).'),
    coherenceMin: z.number().min(0).max(100).default(50).describe('... and at least this absolute mean coherence.'),
  })
  .strict();

export const monitorOptionsSchema = z
  .object({
    confidence: z.number().gt(0).lt(1).default(0.95).describe('Level of the Fisher-z interval on Pearson r.'),
    flagFraction: z
      .number()
      .positive()
      .default(0.5)
      .describe('Data screening flags a row whose reply projects this fraction of |v| (the positive-minus-negative distance) beyond the base model\'s own reply (project default).'),
    shiftPosition: z
      .enum(['lastPrompt', 'reply'])
      .default('lastPrompt')
      .describe('Fine-tuning shift: mean activation at the last prompt token (persona-vectors), or averaged over each model\'s own greedy reply.'),
    adapters: z
      .array(z.string().min(1))
      .default([])
      .describe('Trained adapter directories (relative to the experiment file) whose fine-tuning shift along every persona vector is reported.'),
    screen: z
      .array(z.string().min(1))
      .default([])
      .describe('Chat JSONL files ({"messages": [..., {"role": "assistant"}]}, e.g. generate\'s chat.jsonl) screened row by row against every persona vector at its chosen layer.'),
    screenRows: z.number().int().positive().optional().describe('Screen only the first N rows of each file (default all).'),
    maxTokens: z.number().int().positive().default(120).describe('Most tokens per reply in monitoring (project default).'),
  })
  .strict();

export const axisOptionsSchema = z
  .object({
    personasFile: z.string().min(1).optional().describe('JSON array of role-play system prompts; default the shipped data/steer/roleplay-personas.json.'),
    personas: z.number().int().positive().optional().describe('Use only the first N role-play personas (default all).'),
    questionsFile: z.string().min(1).optional().describe('JSON array of general user prompts; default the shipped data/general-prompts.json.'),
    questions: z.number().int().positive().default(20).describe('General questions asked of the default assistant and of every persona (project default).'),
    assistantSystemPrompt: z.string().optional().describe('System prompt of "the default assistant"; default none.'),
    ...samplingSchema(0.7, 120),
    percentile: z.number().gt(0).lt(100).default(25).describe('Threshold = this percentile (nearest rank) of the default assistant\'s observed projections (published: about the 25th).'),
    thresholdFrom: z
      .enum(['tokens', 'replies'])
      .default('tokens')
      .describe('Observed projections: every reply token (capping acts per token), or one per reply (its mean activation).'),
    layers: z.array(z.number().int().nonnegative()).min(1).optional().describe('The capped band (0-based layers); default the fractional band below.'),
    band: z
      .tuple([z.number().min(0).max(1), z.number().min(0).max(1)])
      .default([0.6, 0.8])
      .describe('Default band as fractions of depth [from, to] (project default; the field publishes "a band of layers").'),
    axisLayer: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe('The engine caps one direction over the whole band: the axis taken at this layer (default the band\'s middle layer).'),
  })
  .strict();

export const steeredSubjectSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]+$/),
    persona: z.string().min(1).optional().describe('The constitution this subject embodies (evals compare it with that persona); default the first.'),
    steer: z
      .object({
        trait: z.union([z.string().min(1), z.number().int().nonnegative()]).describe('Constitution trait: its label, text or 0-based index.'),
        layer: z.number().int().nonnegative().optional().describe('Default: the layer the sweep chose.'),
        coef: z.number().optional().describe('Default: the coefficient the sweep chose at that layer.'),
        positions: positionsSchema.default('all'),
      })
      .strict()
      .optional(),
    cap: z.boolean().default(false).describe('Cap along the assistant axis over the band.'),
  })
  .strict();

export const steerOptionsSchema = z
  .object({
    traits: z
      .array(z.union([z.string().min(1), z.number().int().nonnegative()]))
      .optional()
      .describe('Constitution traits to extract vectors for (label, text or 0-based index); default every trait.'),
    extract: extractOptionsSchema.prefault({}),
    sweep: sweepOptionsSchema.prefault({}),
    monitor: monitorOptionsSchema.prefault({}),
    axis: axisOptionsSchema.optional().describe('Compute the assistant axis and capping thresholds (off unless given).'),
    subjects: z.array(steeredSubjectSchema).default([]).describe('Steered or capped variants of the subject model to evaluate beside prompting and fine-tuning.'),
    concurrency: z.number().int().positive().default(8).describe('Judge calls in flight.'),
    batchSize: z.number().int().positive().default(16).describe('Rows per engine batch.'),
  })
  .strict();

export type SteerOptions = z.infer<typeof steerOptionsSchema>;
export type ExtractOptions = z.infer<typeof extractOptionsSchema>;
export type FilterOptions = z.infer<typeof filterOptionsSchema>;
export type SweepOptions = z.infer<typeof sweepOptionsSchema>;
export type MonitorOptions = z.infer<typeof monitorOptionsSchema>;
export type AxisOptions = z.infer<typeof axisOptionsSchema>;
export type SteeredSubjectOptions = z.infer<typeof steeredSubjectSchema>;
