/**
 * Providers' public surface: createChatModel() turns a model reference (the registry in
 * src/providers/refs/) into a ChatModel wearing the response cache and the run's accounting, whatever
 * serves it: an OpenAI-compatible endpoint, the local engine (loaded only when a local model is asked
 * for, so endpoint-only runs never load onnxruntime), or a steered local model.
 */
import { Accounting } from './accounting.js';
import { clearCache, defaultCacheDir, ResponseCache } from './cache.js';
import { ManagedChatModel } from './managed.js';
import { resolveModelRef, type ModelRefInput } from './refs/index.js';
import type { RetryPolicy } from './retry.js';
import type { ChatModel } from './types.js';

export type * from './types.js';
export { Accounting, type AccountingSnapshot, type ModelUsage, type Pricing } from './accounting.js';
export { clearCache, defaultCacheDir, ResponseCache, sampleKey } from './cache.js';
export { Judge, JudgeTally, judge, logprobScore, parseVerdict, scoreWithLogprobs, textScore } from './judge.js';
export type { Granularity, JudgeRequest, JudgeResult, ScoreOptions, ScoreResult } from './judge.js';
export { ManagedChatModel } from './managed.js';
export { EndpointUnreachableError, OpenAIChatModel, publicURL, type RetryEvent } from './openai.js';
export type { RetryPolicy } from './retry.js';
export * from './refs/index.js';

export interface CreateChatModelOptions {
  /** Default: PERSONA_LAB_CACHE_DIR, else .cache/persona-lab/responses under cwd. */
  cacheDir?: string;
  /** --no-cache: neither read nor write the response cache. */
  noCache?: boolean;
  accounting?: Accounting;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Overrides of the retry policy (tests use small backoff bases). maxAttempts defaults to the ref's. */
  retry?: Partial<RetryPolicy>;
}

export async function createChatModel(ref: ModelRefInput, options: CreateChatModelOptions = {}): Promise<ChatModel> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const { entry, ref: resolved } = resolveModelRef(ref, env, cwd);
  const { model, cacheScope } = await entry.create(resolved as never, { env, cwd, noCache: options.noCache, accounting: options.accounting, retry: options.retry });
  const cache = options.noCache ? undefined : new ResponseCache(options.cacheDir ?? defaultCacheDir(env, cwd));
  return new ManagedChatModel(model, { cache, accounting: options.accounting, cacheScope });
}

/** `persona-lab cache clear`: removes the cached samples, returns how many. */
export function clearResponseCache(options: { cacheDir?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<number> {
  return clearCache(options.cacheDir ?? defaultCacheDir(options.env ?? process.env, options.cwd ?? process.cwd()));
}
