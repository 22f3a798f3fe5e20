/**
 * `vllm:<base model>[+<adapter dir>[=<name>]]...` (a managed `vllm serve` child process with the
 * adapters loaded) or `vllm:<model>@<baseURL>[+...]` (a running vLLM server): scale-out evaluation
 * over the OpenAI protocol (src/providers/vllm.ts). Black-box: no steering or capture, no training.
 */
import { z } from 'zod';
import { weightsFingerprint } from './local.js';
import type { ProviderEntry } from './types.js';

export const vllmModelSchema = z.object({ provider: z.literal('vllm'), ref: z.string().startsWith('vllm:') }).strict();
export type VllmModelRef = z.infer<typeof vllmModelSchema>;

export const vllmProvider: ProviderEntry<VllmModelRef> = {
  grammar: ['vllm:<base model>[@<baseURL>][+<adapter dir>[=<name>]]'],
  claims: (ref) => ref.startsWith('vllm:'),
  schema: vllmModelSchema,
  parse: (ref) => ({ provider: 'vllm', ref }),
  async create(ref, ctx) {
    const { createVllmChatModel, parseVllmRef } = await import('../vllm.js');
    const model = await createVllmChatModel(ref.ref, { env: ctx.env, cwd: ctx.cwd });
    const parsed = parseVllmRef(ref.ref, ctx.cwd);
    // retraining an adapter into the same folder must not be answered from the old adapter's samples
    const cacheScope = ctx.noCache ? undefined : await weightsFingerprint({ provider: 'local', path: parsed.model, adapters: parsed.adapters.map((a) => ({ path: a.path, scale: 1 })), concurrency: 1 });
    return { model, cacheScope };
  },
  capabilities: { generate: true, logprobs: true, steer: false, train: false },
};
