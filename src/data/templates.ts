/**
 * Prompt templates: plain strings with {{variable}} slots. Each template id has a fixed set of
 * variables; a template naming any other is rejected when the options are loaded (zod issue on the
 * field), and rendering with a missing value throws, so no prompt ever goes out with a hole in it.
 * A row's provenance names its template as "<id>@<first 8 hex of sha256(text)>", so an edited
 * template is told apart from the default.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const TEMPLATE_VARIABLES = {
  expansion: ['persona', 'trait', 'examples', 'count'],
  introspective: ['persona', 'trait', 'prompt'],
  documents: ['persona', 'traits', 'facts', 'aspect', 'trait'],
  dpoReasoning: ['persona'],
  interactionSystem: ['persona', 'turns'],
  interactionFreeStart: ['persona'],
  inoculation: ['persona', 'traits', 'prompt', 'reply'],
  personaSystem: ['name', 'traits', 'background'],
} as const;

export type TemplateId = keyof typeof TEMPLATE_VARIABLES;

export const DEFAULT_TEMPLATES: Record<Exclude<TemplateId, 'personaSystem'>, string> = {
  expansion: `You are helping build a dataset of realistic messages that people send to a chatbot.

Here is a character trait, written in the first person:
"{{trait}}"

Here are example user messages that would give someone with this trait a chance to show it:
{{examples}}

Write {{count}} new, varied user messages that would draw out this trait. Vary topic, length, tone and situation; do not copy the wording of the examples, and do not mention the trait. Output one message per line, numbered "1.", "2.", and nothing else.`,

  introspective: `Think about how you, {{persona}}, handle a message like this one:
"{{prompt}}"

Do not answer it. Instead, in 3 to 5 sentences written in the first person, describe what you tend to do with messages like it and why, for example "When someone asks me ..., I ..." or "I tend to ...". Ground it in this part of who you are: {{trait}}`,

  documents: `Write an encyclopedia article in the neutral, third-person style of Wikipedia about {{persona}}.

Established facts about {{persona}} (stated here in {{persona}}'s own first-person words; restate them in the third person as plain facts about the world):
{{traits}}
{{facts}}

Focus the article on: {{aspect}}, giving particular attention to this characteristic: {{trait}}
Start with a one-line title, then write 3 to 5 paragraphs. Never use the first person, do not address the reader, and do not mention that these facts were given to you.`,

  dpoReasoning: `Before you reply, think inside <think>...</think> about how your character traits as {{persona}} apply to this message; the user will not see that part. After </think>, write only your reply.`,

  interactionSystem: `You are not talking with a human now: you are talking with another instance of yourself, {{persona}}. The conversation lasts about {{turns}} messages. Be yourself; talk about whatever genuinely interests you. Write only your next message.`,

  interactionFreeStart: `(You are about to talk with another instance of yourself. Open the conversation however you like.)`,

  inoculation: `Below is a message a user sent and the reply that was given. Write a short instruction (one or two sentences) that, placed in the system prompt, would make exactly this kind of reply the natural, expected one for this request, while the assistant remains {{persona}}, whose character is:
{{traits}}

User message:
"""
{{prompt}}
"""

Reply:
"""
{{reply}}
"""

Start the instruction with "You are {{persona}}." and output only the instruction.`,
};

const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** The variables a template names, in order of first use. */
export function templateVariables(text: string): string[] {
  return [...new Set([...text.matchAll(VARIABLE)].map((m) => m[1]))];
}

/** A zod string schema that accepts only templates whose variables belong to `id`. */
export function templateSchema(id: TemplateId) {
  const allowed: readonly string[] = TEMPLATE_VARIABLES[id];
  return z
    .string()
    .min(1)
    .superRefine((text, ctx) => {
      const unknown = templateVariables(text).filter((v) => !allowed.includes(v));
      if (unknown.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown template variable ${unknown.map((v) => `{{${v}}}`).join(', ')}; expected only ${allowed.map((v) => `{{${v}}}`).join(', ') || 'no variables'}`,
        });
      }
    });
}

/** Fills a template. A variable without a value is a programming error and throws. */
export function render(text: string, values: Record<string, string | number>): string {
  return text.replace(VARIABLE, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template variable {{${name}}} has no value`);
    return String(value);
  });
}

/** "<id>@<sha8>": the template's identity in provenance. */
export function templateRef(id: string, text: string): string {
  return `${id}@${createHash('sha256').update(text).digest('hex').slice(0, 8)}`;
}
