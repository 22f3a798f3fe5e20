/**
 * The local engine as a ChatModel (src/providers/types.ts), for `local:<model dir or .gguf file>[+<adapter dir>[*scale]]...`:
 * the chat template renders the conversation, generation_config.json supplies the sampling defaults
 * a request leaves out, `n` samples run as rows of one batch, and concurrent requests share
 * batches. Stop strings end a row as soon as they appear (the text is cut before them), logprobs
 * come with their top alternatives, and embed() mean-pools the final hidden states.
 *
 * Not supported locally: `jsonSchema` (no constrained decoding; the request is answered unconstrained).
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, ProviderError } from '../core/errors.js';
import { type LocalModelRef, localModelSchema, type ModelRef } from '../providers/ref.js';
import type { CallOptions, ChatModel, ChatRequest, ChatResult, CompletionRequest, TokenLogprob } from '../providers/types.js';
import { type GenerationDefaults, TextTokenizer, loadGenerationDefaults, loadTokenizer } from './io/index.js';
import { type Generation, Model, type RowOptions } from './generate/model.js';
import { findStop } from './generate/sample.js';

const DEFAULT_MAX_TOKENS = 512;

/** "local:<dir>[+<adapter>[*<scale>]]..." -> the object form ("tiny" is the bundled models/tiny). */
export function parseLocalModelRef(ref: ModelRef, cwd = process.cwd()): LocalModelRef {
  let parsed: LocalModelRef;
  if (typeof ref !== 'string') {
    if (ref.provider !== 'local') throw new InputError('model reference', 'provider', `"local" for the engine (found "${ref.provider}")`);
    parsed = localModelSchema.parse(ref);
  } else if (ref === 'tiny') {
    parsed = localModelSchema.parse({ provider: 'local', path: join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models', 'tiny') });
  } else {
    if (!ref.startsWith('local:')) throw new InputError('model reference', ref, 'expected "local:<model dir>[+<adapter dir>[*<scale>]]"');
    const [path, ...adapters] = ref.slice('local:'.length).split('+');
    parsed = localModelSchema.parse({
      provider: 'local',
      path,
      adapters: adapters.map((a) => {
        const star = a.lastIndexOf('*');
        const scale = star > 0 ? Number(a.slice(star + 1)) : NaN;
        return Number.isFinite(scale) ? { path: a.slice(0, star), scale } : { path: a };
      }),
    });
  }
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  return { ...parsed, path: abs(parsed.path), adapters: parsed.adapters.map((a) => ({ ...a, path: abs(a.path) })) };
}

interface Pending {
  prompt: number[];
  rows: RowOptions[];
  resolve: (g: Generation[]) => void;
  reject: (e: unknown) => void;
}

/** Rows one batch of concurrent requests may hold. */
const BATCH_ROWS = 32;

export class LocalChatModel implements ChatModel {
  readonly id: string;
  private readonly pending: Pending[] = [];
  private running = false;

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
    const stops = request.stop ?? [];
    const decode = (tokens: readonly number[]) => this.tokenizer.decode(tokens, { skipSpecialTokens: true });
    const seed = request.seed ?? 0;
    const row: RowOptions = {
      temperature: request.temperature ?? (d.doSample ? d.temperature : 0),
      topP: request.topP ?? (d.doSample ? d.topP : 1),
      topK: request.topK ?? (d.doSample && d.topK > 0 ? d.topK : undefined),
      maxTokens: request.maxTokens ?? d.maxNewTokens ?? DEFAULT_MAX_TOKENS,
      stopTokens: this.stopTokens(),
      shouldStop: stops.length ? (_row, tokens) => findStop(decode(tokens), stops) >= 0 : undefined,
      logprobs: request.logprobs ?? false,
      topLogprobs: request.topLogprobs ?? 0,
    };
    const generations = await this.queue(prompt, Array.from({ length: n }, (_, i) => ({ ...row, seed: seed + i })));
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
  private queue(prompt: number[], rows: RowOptions[]): Promise<Generation[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ prompt, rows, resolve, reject });
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
    while (this.pending.length && (batch.length === 0 || size + this.pending[0].rows.length <= BATCH_ROWS)) {
      const next = this.pending.shift()!;
      batch.push(next);
      size += next.rows.length;
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
    const rows = texts.map((t) => {
      const ids = this.tokenizer.encode(t);
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

/** The entry point src/providers/index.ts imports lazily. */
export function createLocalChatModel(ref: ModelRef, options: { cwd?: string } = {}): ChatModel {
  return LocalChatModel.open(parseLocalModelRef(ref, options.cwd));
}
