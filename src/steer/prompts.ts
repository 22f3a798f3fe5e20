/**
 * The contrastive material of a persona vector (docs/protocols.md §5): pairs of system prompts, one eliciting the
 * trait and one suppressing it, and questions that leave room for it. Written per trait by a teacher
 * from the constitution, or read from a file of the same shape.
 */
import { z } from 'zod';
import type { Trait } from '../constitution/index.js';
import { InputError } from '../core/errors.js';
import { readStructured, validate } from '../core/load.js';
import { judge } from '../providers/judge.js';
import type { ChatModel } from '../providers/types.js';

export const contrastivePairSchema = z.object({ positive: z.string().min(1), negative: z.string().min(1) }).strict();
export const traitPromptsSchema = z
  .object({
    trait: z.string().min(1),
    pairs: z.array(contrastivePairSchema).min(1),
    questions: z.array(z.string().min(1)).min(2),
  })
  .strict();
export type ContrastivePair = z.infer<typeof contrastivePairSchema>;
export type TraitPrompts = z.infer<typeof traitPromptsSchema>;

export function teacherPrompt(trait: Trait, pairs: number, questions: number): string {
  return [
    'You are helping build a dataset that measures one character trait inside a language model.',
    `TRAIT (written in the first person by the character):\n${trait.trait}`,
    `Example user messages that draw the trait out:\n${trait.questions.map((q) => `- ${q}`).join('\n')}`,
    `1. Write ${pairs} pairs of system prompts for an AI assistant. In each pair, "positive" instructs the assistant to express this trait strongly in every reply, and "negative" instructs it to avoid the trait entirely and show its opposite. Vary the wording and angle from pair to pair; keep each prompt to one to three sentences.`,
    `2. Write ${questions} diverse user messages on everyday topics that give an assistant room either to express the trait or to avoid it, without asking for the trait directly. Do not repeat the examples.`,
    'Reply with a JSON object: {"pairs": [{"positive": "...", "negative": "..."}], "questions": ["..."]}.',
  ].join('\n\n');
}

/** Asks the teacher for `pairs` contrastive pairs and `questions` questions for one trait. */
export async function generateTraitPrompts(teacher: ChatModel, trait: Trait, o: { pairs: number; questions: number; seed?: number }): Promise<TraitPrompts> {
  const schema = z.object({ pairs: z.array(contrastivePairSchema).min(o.pairs), questions: z.array(z.string().min(1)).min(o.questions) });
  const r = await judge(teacher, { prompt: teacherPrompt(trait, o.pairs, o.questions), schema, temperature: 0.7, seed: o.seed, maxTokens: 300 + 60 * (o.pairs * 2 + o.questions) });
  if (!r.verdict) {
    throw new Error(`the teacher ${teacher.id} gave no usable contrastive prompts for the trait "${trait.trait}" after ${r.attempts} replies: ${r.error}`);
  }
  const questions = [...new Set(r.verdict.questions.map((q) => q.trim()))];
  if (questions.length < o.questions) throw new Error(`the teacher ${teacher.id} repeated questions for the trait "${trait.trait}": ${questions.length} distinct of ${o.questions} asked`);
  return { trait: trait.trait, pairs: r.verdict.pairs.slice(0, o.pairs), questions: questions.slice(0, o.questions) };
}

/**
 * Reads a prompts file ([{trait, pairs, questions}]) and returns the entry for `trait` (matched by its
 * text or label), or undefined when the file has none.
 */
export function readTraitPrompts(file: string, trait: Trait): TraitPrompts | undefined {
  const all = validate(file, readStructured(file), z.array(traitPromptsSchema));
  return all.find((p) => p.trait === trait.trait || (trait.label !== undefined && p.trait === trait.label));
}

/** The first `extract` questions extract the vector; the rest evaluate it (published: 20 / 20). */
export function splitQuestions(prompts: TraitPrompts, extract: number, where = 'steer.extract.extractQuestions'): { extract: string[]; evaluate: string[] } {
  if (extract > prompts.questions.length - 2) {
    throw new InputError(where, 'extractQuestions', `at most ${prompts.questions.length - 2} for the ${prompts.questions.length} questions of the trait "${prompts.trait}" (two or more must remain to evaluate: one half chooses the steering cell, the other reports it)`);
  }
  return { extract: prompts.questions.slice(0, extract), evaluate: prompts.questions.slice(extract) };
}
