/**
 * The layer every factory-made ChatModel wears: the per-sample response cache and the run's
 * accounting, around any backend (endpoint or local engine).
 *
 * Samples are cached by index. Missing samples are fetched in one request for as many as are
 * missing; when the request has a seed, a request whose first missing sample is index k is sent
 * with seed + k, so topping up n = 2 to n = 4 does not fetch the same two samples again from a
 * deterministic server. Servers that return fewer choices than asked (Ollama, llama.cpp ignore n)
 * are asked again for the rest.
 */
import { ProviderError } from '../core/errors.js';
import type { Accounting } from './accounting.js';
import { CACHE_FORMAT, sampleKey, type CachedSample, type ResponseCache } from './cache.js';
import type { CallOptions, ChatModel, ChatRequest, ChatResult } from './types.js';

export interface ManagedOptions {
  /** Absent: no caching (--no-cache). */
  cache?: ResponseCache;
  accounting?: Accounting;
  /** Mixed into cache keys beside the model id: what else decides the outputs (local weights' fingerprint). */
  cacheScope?: string;
}

export class ManagedChatModel implements ChatModel {
  readonly id: string;
  readonly embed?: (texts: string[], options?: CallOptions) => Promise<number[][]>;
  readonly countTokens?: (text: string) => number;

  constructor(
    readonly inner: ChatModel,
    private readonly options: ManagedOptions = {},
  ) {
    this.id = inner.id;
    if (inner.embed) {
      const embed = inner.embed.bind(inner);
      this.embed = async (texts, callOptions) => {
        try {
          const vectors = await embed(texts, callOptions);
          this.options.accounting?.add(this.id, { embedCalls: 1 });
          return vectors;
        } catch (error) {
          this.options.accounting?.add(this.id, { embedCalls: 1, failures: 1 });
          throw error;
        }
      };
    }
    if (inner.countTokens) this.countTokens = inner.countTokens.bind(inner);
  }

  async chat(request: ChatRequest, options?: CallOptions): Promise<ChatResult> {
    const { cache, accounting } = this.options;
    const n = request.n ?? 1;
    const scope = this.options.cacheScope ? `${this.id}#${this.options.cacheScope}` : this.id;
    const keys = cache ? Array.from({ length: n }, (_, i) => sampleKey(scope, request, i)) : [];
    const samples: (CachedSample | undefined)[] = cache ? await Promise.all(keys.map((key) => cache.read(key))) : new Array(n).fill(undefined);
    const fromCache = samples.flatMap((s, i) => (s ? [i] : []));
    const cachedCount = fromCache.length;
    const fresh = { calls: 0, promptTokens: 0, completionTokens: 0, model: '' };

    try {
      for (let missing = missingIndices(samples); missing.length > 0; missing = missingIndices(samples)) {
        const first = missing[0];
        const result = await this.inner.chat(
          { ...request, n: missing.length, ...(request.seed !== undefined && first > 0 ? { seed: request.seed + first } : {}) },
          options,
        );
        fresh.calls++;
        fresh.promptTokens += result.usage.promptTokens;
        fresh.completionTokens += result.usage.completionTokens;
        fresh.model ||= result.model;
        if (result.choices.length === 0) throw new ProviderError(`${this.id}: the backend returned no choices`);
        const got = result.choices.slice(0, missing.length);
        const share = result.usage.completionTokens / got.length;
        const writes = got.map((choice, j) => {
          const index = missing[j];
          samples[index] = {
            v: CACHE_FORMAT,
            modelId: this.id,
            index,
            choice,
            model: result.model,
            usage: { promptTokens: result.usage.promptTokens, completionTokens: share },
            createdAt: new Date().toISOString(),
          };
          return cache?.write(keys[index], samples[index]!);
        });
        await Promise.all(writes);
      }
    } catch (error) {
      accounting?.add(this.id, { calls: 1, failures: 1, backendCalls: fresh.calls, cachedSamples: cachedCount, promptTokens: fresh.promptTokens, completionTokens: fresh.completionTokens });
      throw error;
    }

    accounting?.add(this.id, {
      calls: 1,
      cacheHits: fresh.calls === 0 ? 1 : 0,
      cachedSamples: cachedCount,
      backendCalls: fresh.calls,
      promptTokens: fresh.promptTokens,
      completionTokens: fresh.completionTokens,
    });
    const all = samples as CachedSample[];
    // Usage: what the backend reported for the fresh samples plus what the cached ones cost originally.
    const cachedCompletion = fromCache.reduce((sum, i) => sum + all[i].usage.completionTokens, 0);
    return {
      choices: all.map((s) => s.choice),
      usage: {
        promptTokens: fresh.calls > 0 ? fresh.promptTokens : (all[0]?.usage.promptTokens ?? 0),
        completionTokens: fresh.completionTokens + Math.round(cachedCompletion),
      },
      model: fresh.model || all[0]?.model || '',
      cached: fresh.calls === 0,
    };
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}

function missingIndices(samples: (CachedSample | undefined)[]): number[] {
  const missing: number[] = [];
  samples.forEach((s, i) => s === undefined && missing.push(i));
  return missing;
}
