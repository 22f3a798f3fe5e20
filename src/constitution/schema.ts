import { z } from 'zod';

/** One trait: a first-person sentence and the seed prompts that draw it out (docs/protocols.md §1). */
export const traitSchema = z
  .object({
    trait: z.string().trim().min(1, 'expected a non-empty first-person sentence'),
    questions: z.array(z.string().trim().min(1)).min(1, 'expected at least one seed question'),
    /** Optional short label used in tables ("wit", "candor"). */
    label: z.string().optional(),
  })
  .strict();

/** Target Big Five profile on the IPIP 1-5 scale, for the psychometrics eval's distance. */
export const bigFiveSchema = z
  .object({
    openness: z.number().min(1).max(5),
    conscientiousness: z.number().min(1).max(5),
    extraversion: z.number().min(1).max(5),
    agreeableness: z.number().min(1).max(5),
    neuroticism: z.number().min(1).max(5),
  })
  .strict();

/** A fact about the persona that consistency checks can ask about. */
export const factSchema = z
  .object({
    question: z.string().min(1),
    answer: z.string().min(1),
    /** Wrong options for multiple-choice consistency questions (docs/protocols.md §4 drift Q&A). */
    distractors: z.array(z.string().min(1)).optional(),
  })
  .strict();

export const constitutionSchema = z
  .object({
    $schema: z.string().optional(),
    name: z.string().trim().min(1, 'expected the persona name'),
    description: z.string().optional(),
    facts: z
      .object({
        biography: z.string().optional(),
        likes: z.array(z.string()).optional(),
        history: z.array(z.string()).optional(),
        qa: z.array(factSchema).optional(),
      })
      .strict()
      .optional(),
    bigFive: bigFiveSchema.optional(),
    traits: z.array(traitSchema).min(1, 'expected at least one trait'),
  })
  .strict();

export type Trait = z.infer<typeof traitSchema>;
export type Constitution = z.infer<typeof constitutionSchema>;

/** The open character-training recipe's JSON shape: an array of {trait, questions}. */
export const openRecipeSchema = z.array(z.object({ trait: z.string().min(1), questions: z.array(z.string()).min(1) })).min(1, 'expected at least one trait');
