/**
 * Providers' public surface: createChatModel() turns a model reference (src/providers/ref.ts) into a
 * ChatModel wearing the response cache and the run's accounting, whatever serves it: an
 * OpenAI-compatible endpoint, or the local engine (loaded only when a local model is asked for, so
 * endpoint-only runs never load onnxruntime).
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../core/errors.js';
import { Accounting } from './accounting.js';
import { clearCache, defaultCacheDir, ResponseCache } from './cache.js';
import { ManagedChatModel } from './managed.js';
import { OpenAIChatModel, publicURL } from './openai.js';
import type { z } from 'zod';
import { endpointSchema, localModelSchema, type EndpointRef, type LocalModelRef, type ModelRef, type modelRefSchema } from './ref.js';
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

export const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
/** Sent to local servers that want no key (the SDK insists on one). */
const PLACEHOLDER_KEY = 'sk-no-key-required';

/** A reference as written (object defaults not yet filled in) or as parsed from a config. */
export type ModelRefInput = z.input<typeof modelRefSchema>;

/** Local references are parsed by the engine (src/engine/provider.ts); here they are only recognised. */
export type ResolvedRef = { kind: 'openai'; endpoint: EndpointRef & { baseURL: string } } | { kind: 'local'; ref: ModelRef } | { kind: 'vllm'; ref: string };

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

/** A model reference with every default filled in (base URL from OPENAI_BASE_URL). */
export function resolveModelRef(ref: ModelRefInput, env: NodeJS.ProcessEnv = process.env): ResolvedRef {
  if (typeof ref === 'string') {
    if (ref === 'tiny') return { kind: 'local', ref };
    if (ref.startsWith('local:')) return { kind: 'local', ref };
    if (ref.startsWith('vllm:')) return { kind: 'vllm', ref };
    const m = /^openai:(.+?)(?:@(https?:\/\/\S+))?$/.exec(ref);
    if (!m) throw new InputError('model reference', ref, 'expected "openai:<model>[@<baseURL>]", "local:<dir>[+<adapter>]" or "tiny"');
    ref = { provider: 'openai', model: m[1], ...(m[2] ? { baseURL: m[2] } : {}) };
  }
  if (ref.provider === 'local') {
    const parsed = localModelSchema.safeParse(ref);
    if (!parsed.success) throw InputError.fromZod(`model reference "${ref.path}"`, parsed.error);
    return { kind: 'local', ref: parsed.data };
  }
  const parsed = endpointSchema.safeParse({ ...ref, baseURL: ref.baseURL ?? env.OPENAI_BASE_URL ?? DEFAULT_BASE_URL });
  if (!parsed.success) throw InputError.fromZod(`model reference "${ref.model}"`, parsed.error);
  return { kind: 'openai', endpoint: parsed.data as EndpointRef & { baseURL: string } };
}

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

export interface LocalEngineModule {
  createLocalChatModel(ref: ModelRef, options: { env: NodeJS.ProcessEnv; cwd: string }): ChatModel | Promise<ChatModel>;
  /** The reference with absolute model and adapter paths. */
  parseLocalModelRef?(ref: ModelRef, cwd: string): LocalModelRef;
}

/**
 * Names, sizes and modification times of the files in the model and adapter folders: retraining an
 * adapter into the same folder must not be answered from the old adapter's cached samples.
 */
async function weightsFingerprint(local: LocalModelRef): Promise<string> {
  const hash = createHash('sha256');
  const dirs = [{ path: local.path, scale: 1 }, ...local.adapters];
  for (const { path, scale } of dirs) {
    hash.update(`${path}\0${scale}\0`);
    const names = (await readdir(path).catch(() => [] as string[])).sort();
    for (const name of names) {
      const info = await stat(join(path, name)).catch(() => undefined);
      if (info?.isFile()) hash.update(`${name}\0${info.size}\0${info.mtimeMs}\0`);
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The engine's module, imported only when a local model is asked for; a specifier in a variable keeps
 * tsc from requiring the file to exist. Exported for the test of the "not available" path.
 */
export async function loadLocalEngine(specifier = '../engine/provider.js'): Promise<LocalEngineModule> {
  try {
    return (await import(specifier)) as LocalEngineModule;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((error as Error).message).includes(specifier.replace(/^\.\.\/|\.js$/g, ''))) {
      throw new InputError('model reference', 'local', 'local engine not available in this build (src/engine/provider.ts is missing); use an "openai:" endpoint');
    }
    throw error;
  }
}

export async function createChatModel(ref: ModelRefInput, options: CreateChatModelOptions = {}): Promise<ChatModel> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const resolved = resolveModelRef(ref, env);
  let inner: ChatModel;
  let cacheScope: string | undefined;
  if (resolved.kind === 'local') {
    const engine = await loadLocalEngine();
    if (typeof engine.createLocalChatModel !== 'function') throw new InputError('model reference', 'local', 'local engine not available (src/engine/provider.ts exports no createLocalChatModel)');
    inner = await engine.createLocalChatModel(resolved.ref, { env, cwd });
    if (!options.noCache && engine.parseLocalModelRef) cacheScope = await weightsFingerprint(engine.parseLocalModelRef(resolved.ref, cwd));
  } else if (resolved.kind === 'vllm') {
    const { createVllmChatModel, parseVllmRef } = await import('./vllm.js');
    inner = await createVllmChatModel(resolved.ref, { env, cwd });
    const parsed = parseVllmRef(resolved.ref, cwd);
    // retraining an adapter into the same folder must not be answered from the old adapter's samples
    if (!options.noCache) cacheScope = await weightsFingerprint({ provider: 'local', path: parsed.model, adapters: parsed.adapters.map((a) => ({ path: a.path, scale: 1 })), concurrency: 1 });
  } else {
    const { model, baseURL, apiKeyEnv, concurrency, maxAttempts, timeoutMs, pricing } = resolved.endpoint;
    const key = env[apiKeyEnv];
    if (!key && !isLocalURL(baseURL)) {
      throw new InputError('environment', apiKeyEnv, `an API key for model "${model}" at ${publicURL(baseURL)} (the variable is not set)`);
    }
    const accounting = options.accounting;
    inner = new OpenAIChatModel({
      model,
      baseURL,
      apiKey: key || PLACEHOLDER_KEY,
      concurrency,
      timeoutMs,
      retry: { maxAttempts, ...options.retry },
      onRetry: accounting ? (event) => accounting.add(event.modelId, { retries: 1 }) : undefined,
    });
    options.accounting?.setPricing(inner.id, pricing);
  }
  const cache = options.noCache ? undefined : new ResponseCache(options.cacheDir ?? defaultCacheDir(env, cwd));
  return new ManagedChatModel(inner, { cache, accounting: options.accounting, cacheScope });
}

/** `persona-lab cache clear`: removes the cached samples, returns how many. */
export function clearResponseCache(options: { cacheDir?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<number> {
  return clearCache(options.cacheDir ?? defaultCacheDir(options.env ?? process.env, options.cwd ?? process.cwd()));
}
