import { z } from 'zod';
import { DEFAULT_TEMPLATES, TEMPLATE_VARIABLES, templateSchema, type TemplateId } from './templates.js';

/**
 * Options of the `generate` stage (docs/protocols.md §1-3, §6): the `generate:` section of the experiment YAML.
 * Numbers the field publishes are the defaults (50 prompts per trait, 50% overlap, 1024-token pairs,
 * 1000 self-reflection samples, ~10-turn self-interaction, "Hello me."); the rest are our choices,
 * said so in their descriptions and in docs/data.md. Files are relative to the experiment file.
 */

export const DATASET_IDS = ['prompts', 'chat', 'introspective', 'documents', 'dpo', 'reflection', 'interaction', 'probes'] as const;
export const datasetIdSchema = z.enum(DATASET_IDS);
export type DatasetId = z.infer<typeof datasetIdSchema>;

/** Datasets whose rows are conversations or pairs, and so can get an inoculation instruction. */
export const INOCULABLE = ['chat', 'dpo', 'reflection', 'interaction'] as const;

const temperature = (value: number) => z.number().min(0).max(2).default(value).describe('Sampling temperature.');
const maxTokens = (value: number) => z.number().int().positive().default(value).describe('Most tokens per generated reply.');
const template = (id: Exclude<TemplateId, 'personaSystem'>) =>
  templateSchema(id)
    .default(DEFAULT_TEMPLATES[id])
    .describe(`Prompt template with {{variables}} (${TEMPLATE_VARIABLES[id].map((v) => `{{${v}}}`).join(', ') || 'none'}); unknown variables are rejected at load.`);
const patterns = (defaults: string[]) =>
  z
    .array(
      z.string().superRefine((pattern, ctx) => {
        try {
          new RegExp(pattern, 'iu');
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: `expected a regular expression (${(error as Error).message})` });
        }
      }),
    )
    .default(defaults);
const fraction = (value: number, what: string) => z.number().min(0).lt(1).default(value).describe(what);

export const expansionOptionsSchema = z
  .object({
    perTrait: z.number().int().positive().default(50).describe('Prompts per trait after expansion, seeds included (docs/protocols.md §1: about 50).'),
    batchSize: z.number().int().positive().default(10).describe('Candidates asked for per generator request (ours).'),
    maxRounds: z.number().int().positive().default(20).describe('Most generator requests per trait; a shortfall after them is reported, not an error (ours).'),
    overlapThreshold: z.number().gt(0).max(1).default(0.5).describe('Reject a candidate whose word overlap with any prompt of its trait is >= this (docs/protocols.md §1: 50%).'),
    overlapMeasure: z
      .enum(['overlap-coefficient', 'jaccard'])
      .default('overlap-coefficient')
      .describe('Word overlap of lowercased word sets A, B: overlap-coefficient = |A∩B|/min(|A|,|B|); jaccard = |A∩B|/|A∪B|.'),
    minWords: z.number().int().positive().default(3).describe('Candidates with fewer words are rejected (ours).'),
    temperature: temperature(1),
    maxTokens: maxTokens(1024),
    template: template('expansion'),
  })
  .strict();

export const generalPromptsOptionsSchema = z
  .object({
    files: z.array(z.string().min(1)).default([]).describe('Local prompt sets: JSONL (one string, {"prompt"}, {"text"} or {"messages"} per line) or JSON (an array of those).'),
    includeShipped: z.boolean().default(true).describe('Also use the project\'s shipped set (data/general-prompts.json).'),
    heldOutFraction: fraction(0.2, 'Share of general prompts held out for evaluation; never used in training data (ours).'),
    count: z.number().int().positive().optional().describe('Most training general prompts used per dataset; default: all of the training split.'),
  })
  .strict();

export const filterOptionsSchema = z
  .object({
    minWords: z.number().int().nonnegative().default(3).describe('Drop replies with fewer words (ours).'),
    maxReplyTokens: z.number().int().positive().default(2048).describe('Drop replies longer than this many subject tokens (ours).'),
    truncated: z
      .enum(['drop', 'trim'])
      .default('drop')
      .describe('A reply the length limit cut off: drop it (a cut-off demonstration teaches stopping mid-sentence), or trim it back to its last complete sentence and keep it when it still passes every filter (for small teachers that rarely finish; the single-turn datasets count them in their manifest notes).'),
    refusalPatterns: patterns([
        "\\bI(?:['’]m| am)? (?:sorry,? )?(?:but )?(?:I )?(?:can(?:['’]|no)t|won['’]t|am unable to|['’]m unable to) (?:help|assist|comply|provide|do that|fulfil)",
        '\\bI must (?:decline|refuse)\\b',
      ])
      .describe('Case-insensitive regular expressions; a reply matching one is a refusal and dropped.'),
    offPersonaPatterns: patterns(['\\bas an ai(?: language)? model\\b', '\\bmy (?:core )?(?:character )?traits (?:are|include)\\b', '\\bsystem prompt\\b', '\\bI was instructed to\\b'])
      .describe('Case-insensitive regular expressions; a reply matching one breaks or discloses the persona and is dropped.'),
    nearDuplicateThreshold: z
      .number()
      .gt(0)
      .max(1)
      .default(0.8)
      .describe('Drop a row whose content has Jaccard similarity >= this with an earlier row, on word 3-gram shingles (MinHash LSH candidates, exact check).'),
  })
  .strict();

export const chatOptionsSchema = z
  .object({
    samplesPerPrompt: z.number().int().positive().default(1).describe('Teacher replies per prompt (ours).'),
    generalPrompts: z.boolean().default(false).describe('Also demonstrate on general chat prompts, not only the constitution\'s (ours).'),
    temperature: temperature(0.7),
    maxTokens: maxTokens(1024),
  })
  .strict();

export const introspectiveOptionsSchema = z
  .object({
    perTrait: z.number().int().positive().default(50).describe('First-person passages per trait, one per training prompt of the trait (ours).'),
    temperature: temperature(0.8),
    maxTokens: maxTokens(512),
    template: template('introspective'),
  })
  .strict();

export const documentsOptionsSchema = z
  .object({
    count: z.number().int().positive().default(50).describe('Encyclopedia documents per persona, cycling over traits and aspects (ours).'),
    writer: z
      .enum(['teacher', 'facts'])
      .default('teacher')
      .describe('teacher: the teacher writes each article; facts: documents assembled from the constitution\'s biography, history and likes, in the third person, without a model (facts.qa left out for evaluation).'),
    aspects: z
      .array(z.string().min(1))
      .min(1)
      .default(['overview', 'characteristic behaviour in conversation', 'reception and public perception', 'notable anecdotes', 'comparison with similar figures', 'history and background'])
      .describe('Section focus of each document, cycled ({{aspect}}).'),
    temperature: temperature(0.8),
    maxTokens: maxTokens(1024),
    template: template('documents'),
  })
  .strict();

export const nameSubstitutionSchema = z.object({ from: z.string().min(1), to: z.string() }).strict();

export const dpoOptionsSchema = z
  .object({
    samplesPerPrompt: z.number().int().positive().default(2).describe('Pairs per prompt (docs/protocols.md §2: "several samples each"; 2 is ours).'),
    generalPrompts: z.boolean().default(true).describe('Prompts = constitution prompts plus general chat prompts (docs/protocols.md §2).'),
    reasoning: z.boolean().default(false).describe('Let the teacher reason about its traits first in <think>...</think>; the reasoning is stripped (docs/protocols.md §2).'),
    reasoningTemplate: template('dpoReasoning'),
    maxPairTokens: z
      .number()
      .int()
      .positive()
      .default(1024)
      .describe('Drop pairs over this many tokens: max(prompt + chosen, prompt + rejected), counted with the subject tokenizer (docs/protocols.md §2: 1024).'),
    keepTruncatedRejected: z.boolean().default(false).describe("Keep pairs whose rejected reply stopped at maxTokens (the base model's own voice, cut short); off by default so no pair teaches length instead of character."),
    requireSentenceEnd: z.boolean().default(true).describe('Drop pairs where either reply does not end in sentence punctuation (docs/protocols.md §2).'),
    nameSubstitutions: z
      .array(nameSubstitutionSchema)
      .default([])
      .describe('Teacher name -> student name, whole words, in chosen replies (docs/protocols.md §2), e.g. [{from: "Claude", to: "Llama"}].'),
    teacherTemperature: temperature(0.7),
    studentTemperature: temperature(0.7),
    maxTokens: maxTokens(1024),
  })
  .strict();

export const reflectionOptionsSchema = z
  .object({
    prompts: z.string().min(1).optional().describe('JSON file with the self-reflection prompts (string[]); default: the 10 shipped in data/self-reflection.json.'),
    samplesPerPrompt: z.number().int().positive().default(1000).describe('Samples per prompt (docs/protocols.md §2: the recipe used 1000).'),
    temperature: temperature(1),
    maxTokens: maxTokens(1024),
  })
  .strict();

export const interactionOptionsSchema = z
  .object({
    free: z.number().int().nonnegative().default(500).describe('Free self-conversations per persona (ours).'),
    leading: z.number().int().nonnegative().default(500).describe('Self-conversations that start with a leading opener (ours).'),
    turns: z.number().int().min(2).default(10).describe('Lines per conversation, both sides together (docs/protocols.md §2: about 10).'),
    openers: z.array(z.string().min(1)).min(1).default(['Hello me.']).describe('Leading openers, cycled (docs/protocols.md §2: "Hello me.").'),
    systemTemplate: template('interactionSystem'),
    freeStartTemplate: template('interactionFreeStart'),
    temperature: temperature(1),
    maxTokens: maxTokens(512),
  })
  .strict();

export const probesOptionsSchema = z
  .object({
    files: z.array(z.string().min(1)).default([]).describe('More identity probes: JSON array or JSONL of {id?, category: direct|indirect|adversarial, prompt}.'),
    includeShipped: z.boolean().default(true).describe('Use the ~200 shipped probes (data/identity-probes.json).'),
    heldOutFraction: fraction(0.25, 'Share of each category held out for evaluation (ours).'),
  })
  .strict();

export const inoculationOptionsSchema = z
  .object({
    datasets: z.array(z.enum(INOCULABLE)).default([]).describe('Generated datasets that also get an inoculated copy (docs/protocols.md §6).'),
    files: z.array(z.string().min(1)).default([]).describe('Outside datasets (JSONL in the messages or prompt/chosen/rejected shape) to inoculate for each persona.'),
    template: template('inoculation'),
    temperature: temperature(0.7),
    maxTokens: maxTokens(200),
  })
  .strict();

export const formatComparisonOptionsSchema = z
  .object({
    formats: z.array(z.enum(['chat', 'introspective', 'documents'])).min(2).default(['chat', 'introspective', 'documents']).describe('Formats given equal token budgets (docs/protocols.md §2).'),
    tokenBudget: z.number().int().positive().optional().describe('Tokens per format; default: the smallest format\'s total after filtering.'),
  })
  .strict();

export const generateOptionsSchema = z
  .object({
    datasets: z.array(datasetIdSchema).min(1).default([...DATASET_IDS]).describe('Which datasets to generate (prompts are expanded whenever a dataset needs them).'),
    seed: z.number().int().nonnegative().optional().describe('Seed of sampling, splits and ordering; default: the experiment\'s first seed.'),
    seedVaries: z
      .boolean()
      .default(false)
      .describe(
        'Each run seed gets its own teacher sampling of the training datasets (chat, introspective, documents, DPO pairs, self-reflection, self-interaction, inoculated copies), stored under datasets/seed-<n>/ for seeds other than the base seed, and each trained cell trains on its own seed\'s data; the prompt pool, the held-out splits and the identity probes stay those of the base seed (generate.seed), so every seed is evaluated on the same held-out prompts. Cost: the calls of those datasets are multiplied by the number of seeds. false: one sampling (the base seed\'s) for every seed.',
      ),
    concurrency: z.number().int().positive().default(8).describe('Model calls in flight per dataset.'),
    limit: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('Smoke tests (`run --limit N`): at most N prompts per trait and N generated items (replies, pairs, conversations) per dataset and persona, the first N of each.'),
    heldOutFraction: fraction(0.1, 'Share of each trait\'s prompts (seeds and expanded) held out for evaluation; never in training data (ours).'),
    personaSystemTemplate: templateSchema('personaSystem')
      .optional()
      .describe('System prompt that makes a model the persona ({{name}}, {{traits}}, {{background}}); default: the constitution module\'s personaSystemPrompt.'),
    expansion: expansionOptionsSchema.prefault({}).describe('Prompt expansion: seed questions -> perTrait prompts per trait (docs/protocols.md §1).'),
    generalPrompts: generalPromptsOptionsSchema.prefault({}).describe('General chat prompts: the shipped set and local files, split into train and held-out.'),
    filters: filterOptionsSchema.prefault({}).describe('Filters every generated reply passes; what each drops is counted in the dataset manifest.'),
    chat: chatOptionsSchema.prefault({}).describe('Chat demonstrations: user prompt -> in-persona teacher reply (docs/protocols.md §2 format 1).'),
    introspective: introspectiveOptionsSchema.prefault({}).describe('First-person introspective statements (docs/protocols.md §2 format 2).'),
    documents: documentsOptionsSchema.prefault({}).describe('Third-person encyclopedia documents about the persona (docs/protocols.md §2 format 3).'),
    dpo: dpoOptionsSchema.prefault({}).describe('DPO distillation pairs: chosen from the prompted teacher, rejected from the bare subject (docs/protocols.md §2 item 4).'),
    reflection: reflectionOptionsSchema.prefault({}).describe('Self-reflection SFT data from the introspector (docs/protocols.md §2 item 5).'),
    interaction: interactionOptionsSchema.prefault({}).describe('Self-interaction SFT data: the introspector talking with itself (docs/protocols.md §2 item 5).'),
    probes: probesOptionsSchema.prefault({}).describe('Identity probes, direct/indirect/adversarial, with a held-out split (docs/protocols.md §3).'),
    inoculation: inoculationOptionsSchema.prefault({}).describe('Inoculation prompting: a per-row instruction stored beside the original (docs/protocols.md §6).'),
    formatComparison: formatComparisonOptionsSchema.prefault({}).describe('Equal token budgets for the format comparison (docs/protocols.md §2).'),
  })
  .strict();

export type GenerateOptions = z.infer<typeof generateOptionsSchema>;
export type GenerateOptionsInput = z.input<typeof generateOptionsSchema>;
