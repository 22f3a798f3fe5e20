import { z } from 'zod';

/**
 * How a config names a model. Short strings (promptfoo style):
 *   "openai:<model>"                  OpenAI-compatible endpoint at OPENAI_BASE_URL / OPENAI_API_KEY
 *   "openai:<model>@<baseURL>"        the same at an explicit base URL (vLLM, llama.cpp, Ollama, OpenRouter)
 *   "local:<model dir>[+<adapter dir>[*<scale>]]..."   the local engine, optionally with LoRA adapters
 *   "vllm:<base>[+<adapter dir>[=<name>]]..."   vLLM serving LoRA adapters (./vllm.ts)
 *   "tiny"                            the bundled tiny model (models/tiny)
 * or an object with every option spelled out.
 */
export const endpointSchema = z
  .object({
    provider: z.literal('openai'),
    model: z.string().min(1),
    baseURL: z.string().url().optional(),
    /** Name of the environment variable holding the API key (never the key itself). */
    apiKeyEnv: z.string().default('OPENAI_API_KEY'),
    concurrency: z.number().int().positive().default(8),
    maxAttempts: z.number().int().positive().default(5),
    timeoutMs: z.number().int().positive().default(120_000),
    /** USD per million tokens, for cost accounting. */
    pricing: z.object({ input: z.number().nonnegative(), output: z.number().nonnegative() }).strict().optional(),
  })
  .strict();

export const localModelSchema = z
  .object({
    provider: z.literal('local'),
    path: z.string().min(1),
    adapters: z.array(z.object({ path: z.string().min(1), scale: z.number().default(1) }).strict()).default([]),
    concurrency: z.number().int().positive().default(1),
  })
  .strict();

export const modelRefSchema = z.union([
  z.string().regex(/^(openai:.+|local:.+|vllm:.+|tiny)$/, 'expected "openai:<model>[@<baseURL>]", "local:<dir>[+<adapter>]", "vllm:<base>[+<adapter>]" or "tiny"'),
  z.discriminatedUnion('provider', [endpointSchema, localModelSchema]),
]);

export type EndpointRef = z.infer<typeof endpointSchema>;
export type LocalModelRef = z.infer<typeof localModelSchema>;
export type ModelRef = z.infer<typeof modelRefSchema>;
