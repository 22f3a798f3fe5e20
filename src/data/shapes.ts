/**
 * The outside shapes `export` writes, as their tools document them, strict (no extra keys):
 * - messages: TRL SFT "conversational" and the OpenAI chat fine-tuning line
 *   {"messages":[{"role":"system"|"user"|"assistant","content":"..."}]}, at least one assistant turn;
 * - text: TRL SFT "standard" language modelling / continued pre-training {"text":"..."};
 * - dpo: TRL DPO "conversational preference" {"prompt":[messages],"chosen":[assistant],"rejected":[assistant]};
 * - dpo-standard: TRL DPO "standard preference" {"prompt":"...","chosen":"...","rejected":"..."};
 * - openai-dpo: OpenAI preference fine-tuning
 *   {"input":{"messages":[...]},"preferred_output":[assistant],"non_preferred_output":[assistant]}.
 */
import { z } from 'zod';

const outsideMessage = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() }).strict();
const assistantOnly = z.array(z.object({ role: z.literal('assistant'), content: z.string() }).strict()).length(1);

export const messagesShape = z
  .object({ messages: z.array(outsideMessage).min(1) })
  .strict()
  .refine((row) => row.messages.some((m) => m.role === 'assistant'), 'expected at least one assistant message');

export const textShape = z.object({ text: z.string().min(1) }).strict();

export const dpoShape = z
  .object({
    prompt: z.array(outsideMessage).min(1),
    chosen: assistantOnly,
    rejected: assistantOnly,
  })
  .strict()
  .refine((row) => row.prompt.at(-1)?.role === 'user', 'expected the prompt to end with a user message');

export const dpoStandardShape = z.object({ prompt: z.string(), chosen: z.string(), rejected: z.string() }).strict();

export const openAiDpoShape = z
  .object({
    input: z.object({ messages: z.array(outsideMessage).min(1) }).strict(),
    preferred_output: assistantOnly,
    non_preferred_output: assistantOnly,
  })
  .strict();

export const EXPORT_SHAPES = {
  messages: messagesShape,
  text: textShape,
  dpo: dpoShape,
  'dpo-standard': dpoStandardShape,
  'openai-dpo': openAiDpoShape,
} as const;
export type ExportShape = keyof typeof EXPORT_SHAPES;
