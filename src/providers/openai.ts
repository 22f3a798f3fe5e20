/**
 * ChatModel over any OpenAI-compatible endpoint (OpenAI, OpenRouter, vLLM, llama.cpp server, Ollama)
 * through the official `openai` SDK. The SDK's own retries are off: ./retry.ts is the policy.
 * Every ChatModel of the same base URL and key shares one client and one concurrency limit.
 */
import { createHash } from 'node:crypto';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import pLimit, { type LimitFunction } from 'p-limit';
import { ProviderError } from '../core/errors.js';
import { backoffMs, defaultRetryPolicy, retryAfterMs, sleep, type RetryPolicy } from './retry.js';
import type { CallOptions, ChatModel, ChatRequest, ChatResult, FinishReason, TokenLogprob } from './types.js';

/** Nothing answers at the endpoint (connection refused, host unknown): the CLI reports it as bad input. */
export class EndpointUnreachableError extends ProviderError {
  constructor(
    message: string,
    readonly baseURL: string,
  ) {
    super(message);
    this.name = 'EndpointUnreachableError';
  }
}

export interface RetryEvent {
  modelId: string;
  /** The attempt that failed (1-based); the next one is attempt + 1. */
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface OpenAIChatModelOptions {
  model: string;
  baseURL: string;
  /** Used only in the Authorization header; never in ids, messages, logs or caches. */
  apiKey: string;
  /** Requests in flight to this endpoint (shared by every model with the same base URL and key). */
  concurrency?: number;
  /** Limit for one attempt, from getting a slot to the parsed body. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  onRetry?: (event: RetryEvent) => void;
}

interface Endpoint {
  client: OpenAI;
  limit: LimitFunction;
  /** After a 429 with Retry-After, no request to the endpoint starts before this time (ms epoch). */
  pausedUntil: number;
}

const endpoints = new Map<string, Endpoint>();

/**
 * One client and one limiter per base URL + key. When configs disagree on the concurrency, the
 * smallest wins: it is the endpoint's capacity that is being protected.
 */
function endpointFor(baseURL: string, apiKey: string, concurrency: number): Endpoint {
  const key = createHash('sha256').update(baseURL).update('\0').update(apiKey).digest('hex');
  const existing = endpoints.get(key);
  if (existing) {
    if (concurrency < existing.limit.concurrency) existing.limit.concurrency = concurrency;
    return existing;
  }
  const endpoint = { client: new OpenAI({ baseURL, apiKey, maxRetries: 0 }), limit: pLimit(concurrency), pausedUntil: 0 };
  endpoints.set(key, endpoint);
  return endpoint;
}

/** The base URL without credentials, query or fragment: safe for ids, messages and cache keys. */
export function publicURL(baseURL: string): string {
  try {
    const url = new URL(baseURL);
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return baseURL.replace(/\/\/[^/@]*@/, '//').replace(/[?#].*$/, '');
  }
}

class AttemptTimeout extends Error {}
class MalformedResponse extends Error {}

interface Failure {
  retryable: boolean;
  reason: string;
  status?: number;
  retryAfterMs?: number;
  unreachable?: boolean;
}

const unreachableCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_INVALID_URL']);

function causeCode(error: unknown): string | undefined {
  for (let e: any = error, depth = 0; e && depth < 6; e = e.cause, depth++) {
    if (typeof e.code === 'string') return e.code;
  }
  return undefined;
}

function classify(error: unknown, timeoutMs: number): Failure {
  if (error instanceof AttemptTimeout || error instanceof APIConnectionTimeoutError) {
    return { retryable: true, reason: `no complete response within ${timeoutMs} ms` };
  }
  if (error instanceof APIConnectionError) {
    const code = causeCode(error);
    if (code && unreachableCodes.has(code)) return { retryable: false, unreachable: true, reason: code };
    return { retryable: true, reason: `connection failed (${code ?? error.message})` };
  }
  if (error instanceof APIError && typeof error.status === 'number') {
    const status = error.status;
    return {
      retryable: status === 408 || status === 409 || status === 429 || status >= 500,
      reason: `HTTP ${error.message}`,
      status,
      retryAfterMs: retryAfterMs(error.headers),
    };
  }
  if (error instanceof SyntaxError || error instanceof MalformedResponse) {
    return { retryable: true, reason: `malformed response body (${error.message})` };
  }
  return { retryable: false, reason: error instanceof Error ? error.message : String(error) };
}

const finishReasons: Record<string, FinishReason> = {
  stop: 'stop',
  length: 'length',
  content_filter: 'content_filter',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
};

function toResult(completion: unknown): ChatResult {
  const c = completion as OpenAI.ChatCompletion;
  if (!c || typeof c !== 'object' || !Array.isArray(c.choices)) throw new MalformedResponse('no choices array');
  const choices = [...c.choices]
    .sort((a, b) => a.index - b.index)
    .map((choice) => {
      if (!choice?.message) throw new MalformedResponse('a choice without a message');
      const logprobs: TokenLogprob[] | undefined = choice.logprobs?.content?.map((t) => ({
        token: t.token,
        logprob: t.logprob,
        top: (t.top_logprobs ?? []).map((a) => ({ token: a.token, logprob: a.logprob })),
      }));
      return {
        text: choice.message.content ?? choice.message.refusal ?? '',
        finishReason: finishReasons[choice.finish_reason ?? ''] ?? 'other',
        ...(logprobs ? { logprobs } : {}),
      };
    });
  return {
    choices,
    usage: { promptTokens: c.usage?.prompt_tokens ?? 0, completionTokens: c.usage?.completion_tokens ?? 0 },
    model: typeof c.model === 'string' ? c.model : '',
    cached: false,
  };
}

export class OpenAIChatModel implements ChatModel {
  readonly id: string;
  readonly model: string;
  /** The base URL without credentials. */
  readonly endpointURL: string;
  private readonly endpoint: Endpoint;
  private readonly policy: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly apiKey: string;
  private readonly onRetry?: (event: RetryEvent) => void;
  /** OpenAI's own API wants max_completion_tokens (reasoning models refuse max_tokens); most servers know max_tokens. */
  private maxTokensField: 'max_tokens' | 'max_completion_tokens';

  constructor(options: OpenAIChatModelOptions) {
    this.model = options.model;
    this.endpointURL = publicURL(options.baseURL);
    this.id = `openai:${options.model}@${this.endpointURL}`;
    this.apiKey = options.apiKey;
    this.endpoint = endpointFor(options.baseURL, options.apiKey, options.concurrency ?? 8);
    this.policy = { ...defaultRetryPolicy, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.onRetry = options.onRetry;
    this.maxTokensField = /(^|\.)openai\.com$/.test(new URL(options.baseURL).hostname) ? 'max_completion_tokens' : 'max_tokens';
  }

  async chat(request: ChatRequest, options?: CallOptions): Promise<ChatResult> {
    try {
      return await this.send((signal) => this.endpoint.client.chat.completions.create(this.body(request), { signal }).then(toResult), options?.signal);
    } catch (error) {
      // Servers disagree on the max-tokens field; switch once when the server names the one we sent.
      if (request.maxTokens !== undefined && error instanceof ProviderError && error.status === 400 && error.message.includes(this.maxTokensField)) {
        this.maxTokensField = this.maxTokensField === 'max_tokens' ? 'max_completion_tokens' : 'max_tokens';
        return this.send((signal) => this.endpoint.client.chat.completions.create(this.body(request), { signal }).then(toResult), options?.signal);
      }
      throw error;
    }
  }

  async embed(texts: string[], options?: CallOptions): Promise<number[][]> {
    if (texts.length === 0) return [];
    return this.send(
      (signal) =>
        this.endpoint.client.embeddings.create({ model: this.model, input: texts, encoding_format: 'float' }, { signal }).then((response) => {
          if (!Array.isArray(response?.data) || response.data.length !== texts.length) throw new MalformedResponse(`expected ${texts.length} embeddings`);
          return [...response.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
        }),
      options?.signal,
    );
  }

  private body(request: ChatRequest): OpenAI.ChatCompletionCreateParamsNonStreaming {
    const body: OpenAI.ChatCompletionCreateParamsNonStreaming = { model: this.model, messages: request.messages };
    if (request.temperature !== undefined) body.temperature = request.temperature;
    if (request.topP !== undefined) body.top_p = request.topP;
    if (request.maxTokens !== undefined) body[this.maxTokensField] = request.maxTokens;
    if (request.seed !== undefined) body.seed = request.seed;
    // standard OpenAI fields; top_k and min_p are the engine's (OpenAI rejects unknown params)
    if (request.logitBias !== undefined) body.logit_bias = request.logitBias;
    if (request.presencePenalty !== undefined) body.presence_penalty = request.presencePenalty;
    if (request.frequencyPenalty !== undefined) body.frequency_penalty = request.frequencyPenalty;
    if (request.n !== undefined && request.n !== 1) body.n = request.n;
    if (request.stop?.length) body.stop = request.stop;
    if (request.logprobs) {
      body.logprobs = true;
      if (request.topLogprobs !== undefined) body.top_logprobs = request.topLogprobs;
    }
    if (request.jsonSchema) {
      body.response_format = {
        type: 'json_schema',
        json_schema: { name: request.jsonSchema.name.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64) || 'verdict', schema: request.jsonSchema.schema },
      };
    }
    return body;
  }

  private describe(): string {
    return `model "${this.model}" at ${this.endpointURL}`;
  }

  /** The key must never reach a message, even when a server echoes it back. */
  private redact(text: string): string {
    return this.apiKey.length >= 4 ? text.split(this.apiKey).join('***') : text;
  }

  /** Runs `call` under the endpoint's limit with a per-attempt timeout, retrying per the policy. */
  private async send<T>(call: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let failure: Failure;
      try {
        return await this.endpoint.limit(() => this.attempt(call, signal));
      } catch (error) {
        if (signal?.aborted) throw signal.reason ?? error;
        failure = classify(error, this.timeoutMs);
      }
      const what = `${this.describe()}: ${this.redact(failure.reason)}`;
      if (failure.unreachable) {
        throw new EndpointUnreachableError(`cannot reach ${this.describe()} (${failure.reason}): is the server running and the base URL right?`, this.endpointURL);
      }
      if (!failure.retryable) throw new ProviderError(what, failure.status, false);
      if (attempt >= this.policy.maxAttempts) throw new ProviderError(`${what} (gave up after ${attempt} attempts)`, failure.status, true);
      if (failure.retryAfterMs !== undefined && failure.retryAfterMs > this.policy.maxRetryAfterMs) {
        throw new ProviderError(`${what} (the server asks to wait ${Math.round(failure.retryAfterMs / 1000)} s, more than the ${this.policy.maxRetryAfterMs / 1000} s allowed)`, failure.status, true);
      }
      const delayMs = failure.retryAfterMs ?? backoffMs(this.policy, attempt);
      // A rate limit concerns the whole endpoint: every request to it holds off, not just this one.
      if (failure.status === 429 && failure.retryAfterMs !== undefined) {
        this.endpoint.pausedUntil = Math.max(this.endpoint.pausedUntil, Date.now() + failure.retryAfterMs);
      }
      this.onRetry?.({ modelId: this.id, attempt, delayMs, reason: this.redact(failure.reason) });
      await sleep(delayMs, signal);
    }
  }

  private async attempt<T>(call: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const paused = this.endpoint.pausedUntil - Date.now();
    if (paused > 0) await sleep(paused, signal);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new AttemptTimeout()), this.timeoutMs);
    const onAbort = () => controller.abort(signal!.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await call(controller.signal);
    } catch (error) {
      if (controller.signal.reason instanceof AttemptTimeout) throw controller.signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
