/**
 * `openai:<model>[@<baseURL>]`: any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama,
 * OpenRouter) at OPENAI_BASE_URL / the explicit base URL, keyed by OPENAI_API_KEY (or apiKeyEnv).
 */
import { z } from 'zod';
import { InputError } from '../../core/errors.js';
import { OpenAIChatModel, publicURL } from '../openai.js';
import type { ProviderEntry } from './types.js';

export const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
/** Sent to local servers that want no key (the SDK insists on one). */
const PLACEHOLDER_KEY = 'sk-no-key-required';

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
export type EndpointRef = z.infer<typeof endpointSchema>;

/** Loopback and private-network hosts: servers there (vLLM, llama.cpp, Ollama) usually want no key. */
export function isLocalURL(baseURL: string): boolean {
  const host = new URL(baseURL).hostname.replace(/^\[|\]$/g, '');
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host.endsWith('.local') ||
    host === '::1' ||
    host === '0.0.0.0' ||
    /^127\./.test(host) ||
    /^10\./.test(host) ||
    /^192\.168\./.test(host) ||
    /^172\.(1[6-9]|2\d|3[01])\./.test(host)
  );
}

const SHORT = /^openai:(.+?)(?:@(https?:\/\/\S+))?$/;

export const openaiProvider: ProviderEntry<EndpointRef> = {
  grammar: ['openai:<model>[@<baseURL>]'],
  claims: (ref) => ref.startsWith('openai:'),
  schema: endpointSchema,
  parse(ref) {
    const m = SHORT.exec(ref);
    if (!m) throw new InputError('model reference', ref, 'expected "openai:<model>[@<baseURL>]"');
    return { provider: 'openai', model: m[1], ...(m[2] ? { baseURL: m[2] } : {}) };
  },
  resolve: (ref, env) => ({ ...ref, baseURL: ref.baseURL ?? env.OPENAI_BASE_URL ?? DEFAULT_BASE_URL }),
  async create(ref, ctx) {
    const baseURL = ref.baseURL ?? DEFAULT_BASE_URL;
    const key = ctx.env[ref.apiKeyEnv];
    if (!key && !isLocalURL(baseURL)) throw new InputError('environment', ref.apiKeyEnv, `an API key for model "${ref.model}" at ${publicURL(baseURL)} (the variable is not set)`);
    const accounting = ctx.accounting;
    const model = new OpenAIChatModel({
      model: ref.model,
      baseURL,
      apiKey: key || PLACEHOLDER_KEY,
      concurrency: ref.concurrency,
      timeoutMs: ref.timeoutMs,
      retry: { maxAttempts: ref.maxAttempts, ...ctx.retry },
      onRetry: accounting ? (event) => accounting.add(event.modelId, { retries: 1 }) : undefined,
    });
    accounting?.setPricing(model.id, ref.pricing);
    return { model };
  },
  capabilities: { generate: true, logprobs: true, steer: false, train: false },
};
