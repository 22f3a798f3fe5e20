/**
 * The local engine as a ChatModel (src/providers/types.ts), for `local:<model dir or .gguf file>[+<adapter dir>[*scale]]...`:
 * the chat template renders the conversation, generation_config.json supplies the sampling defaults
 * a request leaves out, `n` samples run as rows of one batch, and concurrent requests share
 * batches. Stop strings end a row as soon as they appear (the text is cut before them), logprobs
 * come with their top alternatives, and embed() mean-pools the final hidden states.
 *
 * With `boundedContext` (what `serve` sets), prompts are bounded by the model's context
 * (max_position_embeddings): a longer prompt is refused with ContextLengthError, and maxTokens is
 * clamped to what is left of the context, so a request's buffers never outgrow the context. In
 * process (the pipeline's own calls) rotary models may run past it, as they always could. A batch holds at most BATCH_ROWS rows and BATCH_POSITIONS
 * cached positions (rows x (longest prompt + most new tokens)), so concurrent requests bound memory.
 *
 * Not supported locally: `jsonSchema` (no constrained decoding): refused like an endpoint's 400.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ContextLengthError, InputError, ProviderError } from '../core/errors.js';
import type { LocalModelRef } from '../providers/refs/index.js';
import type { CallOptions, ChatModel, ChatRequest, ChatResult, CompletionRequest, TokenLogprob } from '../providers/types.js';
import { type GenerationDefaults, TextTokenizer, loadGenerationDefaults, loadTokenizer } from './io/index.js';
import { type Generation, Model, type RowOptions } from './generate/model.js';
import { findStop } from './generate/sample.js';

const DEFAULT_MAX_TOKENS = 512;

interface Pending {
  prompt: number[];
  rows: RowOptions[];
  signal?: AbortSignal;
  resolve: (g: Generation[]) => void;
  reject: (e: unknown) => void;
}

/** Rows one batch of concurrent requests may hold. */
const BATCH_ROWS = 32;
/** Cached positions one batch may hold (rows x (longest prompt + most new tokens)); one request alone may exceed it. */
const BATCH_POSITIONS = 32 * 1024;

const batchPositions = (batch: readonly Pending[]) =>
  batch.reduce((n, r) => n + r.rows.length, 0) *
  (Math.max(...batch.map((r) => r.prompt.length)) + Math.max(...batch.flatMap((r) => r.rows.map((row) => row.maxTokens ?? 0))));

export class LocalChatModel implements ChatModel {
  readonly id: string;
  private readonly pending: Pending[] = [];
  private running = false;

  /** Refuse prompts of contextLength tokens or more and clamp maxTokens to the rest (see above). */
  boundedContext = false;

  get contextLength(): number {
    return this.model.config.maxPositionEmbeddings;
  }

  constructor(
    readonly model: Model,
    readonly tokenizer: TextTokenizer,
    readonly defaults: GenerationDefaults,
    ref: LocalModelRef,
  ) {
    this.id = `local:${ref.path}${ref.adapters.map((a) => `+${a.path}${a.scale === 1 ? '' : `*${a.scale}`}`).join('')}`;
  }

  static open(ref: LocalModelRef): LocalChatModel {
    if (!existsSync(ref.path)) throw new InputError(ref.path, '', 'a model directory or GGUF file (not found)');
    const model = Model.load(ref.path, { adapters: ref.adapters });
    const tokenizer = loadTokenizer(ref.path);
    if (tokenizer.vocabSize > model.config.vocabSize) {
      throw new InputError(join(ref.path, 'tokenizer.json'), 'model.vocab', `at most ${model.config.vocabSize} ids (config.json vocab_size), found ${tokenizer.vocabSize}`);
    }
    return new LocalChatModel(model, tokenizer, loadGenerationDefaults(ref.path), ref);
  }

  /** Ids that end a reply: generation_config's eos ids, config.json's, and the tokenizer's eos. */
  private stopTokens(): number[] {
    const ids = new Set([...this.defaults.eosTokenIds, ...this.model.config.eosTokenIds]);
    if (this.tokenizer.eos) ids.add(this.tokenizer.eos.id);
    return [...ids];
  }

  async chat(request: ChatRequest, options: CallOptions = {}): Promise<ChatResult> {
    options.signal?.throwIfAborted();
    // refused as an endpoint refuses it (a 400), so callers such as the judge fall back to plain text
    if (request.jsonSchema) throw new ProviderError(`local engine (${this.id}): structured output (json_schema) is not supported: no constrained decoding`, 400);
    return this.sample(this.tokenizer.encodeChat(request.messages.map((m) => ({ ...m })), { addGenerationPrompt: true }), request, options);
  }

  /** Raw text in, continuation out: no chat template (the text's special tokens are honoured). */
  async complete(request: CompletionRequest, options: CallOptions = {}): Promise<ChatResult> {
    options.signal?.throwIfAborted();
    const prompt = this.tokenizer.encode(request.prompt);
    if (prompt.length === 0) throw new InputError('completion request', 'prompt', 'a prompt of at least one token');
    return this.sample(prompt, request, options);
  }

  /** Samples n continuations of prompt token ids with the request's parameters (generation_config fills the rest). */
  private async sample(prompt: number[], request: CompletionRequest | ChatRequest, options: CallOptions): Promise<ChatResult> {
    const n = request.n ?? 1;
    const d = this.defaults;
    if (this.boundedContext && prompt.length >= this.contextLength) throw new ContextLengthError('request', prompt.length, this.contextLength);
    const logitBias = request.logitBias && new Map(Object.entries(request.logitBias).map(([id, bias]) => [Number(id), bias]));
    for (const id of logitBias?.keys() ?? []) {
      if (!Number.isInteger(id) || id < 0 || id >= this.model.config.vocabSize) throw new InputError('request', 'logitBias', `token ids in 0..${this.model.config.vocabSize - 1} (found ${id})`);
    }
    const stops = request.stop ?? [];
    const decode = (tokens: readonly number[]) => this.tokenizer.decode(tokens, { skipSpecialTokens: true });
    const row: RowOptions = {
      temperature: request.temperature ?? (d.doSample ? d.temperature : 0),
      topP: request.topP ?? (d.doSample ? d.topP : 1),
      topK: request.topK ?? (d.doSample && d.topK > 0 ? d.topK : undefined),
      minP: request.minP ?? (d.doSample && d.minP ? d.minP : undefined),
      logitBias,
      presencePenalty: request.presencePenalty,
      frequencyPenalty: request.frequencyPenalty,
      maxTokens: Math.min(request.maxTokens ?? d.maxNewTokens ?? DEFAULT_MAX_TOKENS, this.boundedContext ? this.contextLength - prompt.length : Infinity),
      stopTokens: this.stopTokens(),
      shouldStop: stops.length ? (_row, tokens) => findStop(decode(tokens), stops) >= 0 : undefined,
      logprobs: request.logprobs ?? false,
      topLogprobs: request.topLogprobs ?? 0,
    };
    const rows = Array.from({ length: n }, (_, i) => ({ ...row, seed: request.seed === undefined ? undefined : request.seed + i }));
    const generations = await this.queue(prompt, rows, options.signal);
    options.signal?.throwIfAborted();
    const token = (id: number) => this.tokenizer.decode([id]);
    return {
      choices: generations.map((g) => {
        let text = decode(g.tokens);
        const at = findStop(text, stops);
        if (at >= 0) text = text.slice(0, at);
        const logprobs: TokenLogprob[] | undefined = g.logprobs?.map((lp, i) => ({
          token: token(g.tokens[i]),
          logprob: lp.logprob,
          top: lp.top.map((t) => ({ token: token(t.id), logprob: t.logprob })),
        }));
        return { text, finishReason: g.finishReason, ...(logprobs ? { logprobs } : {}) };
      }),
      usage: { promptTokens: prompt.length, completionTokens: generations.reduce((s, g) => s + g.tokens.length, 0) },
      model: this.id,
      cached: false,
    };
  }

  /**
   * Concurrent chat() calls share batches: requests that arrive while a batch runs (or in the same
   * tick) go together into the next one, up to BATCH_ROWS rows, each row with its own options.
   */
  private queue(prompt: number[], rows: RowOptions[], signal?: AbortSignal): Promise<Generation[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ prompt, rows, signal, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.running || this.pending.length === 0) return;
    this.running = true;
    setImmediate(() => void this.runBatch());
  }

  private async runBatch(): Promise<void> {
    const batch: Pending[] = [];
    let size = 0;
    while (this.pending.length && (batch.length === 0 || (size + this.pending[0].rows.length <= BATCH_ROWS && batchPositions([...batch, this.pending[0]]) <= BATCH_POSITIONS))) {
      const next = this.pending.shift()!;
      // a caller that gave up while waiting (client gone, timed out) costs nothing
      if (next.signal?.aborted) {
        next.reject(next.signal.reason);
        continue;
      }
      batch.push(next);
      size += next.rows.length;
    }
    if (batch.length === 0) {
      this.running = false;
      return this.pump();
    }
    try {
      const generations = await this.model.generate(
        batch.flatMap((r) => r.rows.map(() => r.prompt)),
        { rows: batch.flatMap((r) => r.rows), batchSize: BATCH_ROWS },
      );
      let at = 0;
      for (const r of batch) {
        r.resolve(generations.slice(at, at + r.rows.length));
        at += r.rows.length;
      }
    } catch (error) {
      const wrapped = error instanceof InputError || error instanceof RangeError ? error : new ProviderError(`local engine (${this.id}): ${(error as Error).message}`);
      for (const r of batch) r.reject(wrapped);
    } finally {
      this.running = false;
      this.pump();
    }
  }

  async embed(texts: string[], options: CallOptions = {}): Promise<number[][]> {
    options.signal?.throwIfAborted();
    const rows = texts.map((t, i) => {
      const ids = this.tokenizer.encode(t);
      if (this.boundedContext && ids.length > this.contextLength) throw new ContextLengthError(`input[${i}]`, ids.length, this.contextLength);
      return ids.length ? ids : [this.model.config.bosTokenId ?? this.tokenizer.eos?.id ?? 0];
    });
    return (await this.model.embed(rows)).map((e) => Array.from(e));
  }

  countTokens(text: string): number {
    return this.tokenizer.encode(text, { addSpecialTokens: false }).length;
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}

/** The entry point the provider registry (src/providers/refs/local.ts) imports lazily. */
export function createLocalChatModel(ref: LocalModelRef): ChatModel {
  return LocalChatModel.open(ref);
}
