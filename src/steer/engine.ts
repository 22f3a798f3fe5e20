/**
 * The local engine as the white-box stage uses it: chat prompts rendered to tokens, batched seeded
 * rollouts, residual-stream captures (mean over the reply, last prompt token, every reply token), all
 * under an optional fixed set of hooks. withHooks() gives a steered or capped view sharing the loaded
 * model and its compiled sessions; asChatModel() turns any view into a ChatModel subject.
 */
import { createHash } from 'node:crypto';
import { type Hooks, type Model, LocalChatModel } from '../engine/index.js';
import { ManagedChatModel } from '../providers/managed.js';
import { parseLocalModelRef, type LocalModelRef } from '../providers/refs/index.js';
import type { CallOptions, ChatMessage, ChatModel, ChatRequest, ChatResult, CompletionRequest } from '../providers/types.js';

export interface Rollout {
  /** Chat-template tokens of the conversation up to the assistant's turn. */
  prompt: number[];
  /** Generated tokens (the stop token left out). */
  reply: number[];
  text: string;
  finishReason: 'stop' | 'length';
}

export interface RolloutOptions {
  /** Rollouts per conversation (seeds seed + i). */
  n?: number;
  temperature?: number;
  maxTokens?: number;
  seed?: number;
  batchSize?: number;
}

/** Per row, per layer. */
export type LayerActivations = Map<number, Float32Array>;

/** A model view whose generate() always runs with `hooks` (shares the sessions of `model`). */
function hookedModel(model: Model, hooks: Hooks): Model {
  const view = Object.create(model) as Model;
  view.generate = (prompts, opts = {}) => model.generate(prompts, { ...opts, hooks: mergeHooks(hooks, opts.hooks) });
  return view;
}

/** Hooks of a view plus per-call ones (steering vectors add up; a per-call cap replaces the view's). */
function mergeHooks(base: Hooks | undefined, extra: Hooks | undefined): Hooks | undefined {
  if (!base) return extra;
  if (!extra) return base;
  return { steer: [...(base.steer ?? []), ...(extra.steer ?? [])], cap: extra.cap ?? base.cap, capture: extra.capture ?? base.capture };
}

/** A short stable description of hooks, for ChatModel ids (cache keys must differ from the unhooked model's). */
export function hooksTag(hooks: Hooks): string {
  const hash = createHash('sha256');
  for (const s of hooks.steer ?? []) hash.update(`s${s.layer}:${s.coef}:${s.positions ?? 'all'}:${Array.from(s.vector).join(',')};`);
  if (hooks.cap) hash.update(`c${hooks.cap.layers}:${JSON.stringify(hooks.cap.threshold)}:${Array.from(hooks.cap.axis).join(',')}`);
  const parts = [...(hooks.steer ?? []).map((s) => `steer@${s.layer}x${s.coef}${s.positions && s.positions !== 'all' ? `:${s.positions}` : ''}`), ...(hooks.cap ? [`cap@${hooks.cap.layers.join(',')}`] : [])];
  return `${parts.join('+')}#${hash.digest('hex').slice(0, 10)}`;
}

/** A hooked LocalChatModel under its own id; close() closes the engine only when the model owns it. */
class HookedChatModel implements ChatModel {
  constructor(
    readonly id: string,
    private readonly inner: LocalChatModel,
    /** The engine view this model answers with: captures of a white-box eval run under the same hooks. */
    readonly view: SteerEngine,
    private readonly owner?: SteerEngine,
  ) {}
  chat(request: ChatRequest, options?: CallOptions): Promise<ChatResult> {
    return this.inner.chat(request, options).then((r) => ({ ...r, model: this.id }));
  }
  embed(texts: string[], options?: CallOptions): Promise<number[][]> {
    return this.inner.embed(texts, options);
  }
  complete(request: CompletionRequest, options?: CallOptions): Promise<ChatResult> {
    return this.inner.complete(request, options).then((r) => ({ ...r, model: this.id }));
  }
  countTokens(text: string): number {
    return this.inner.countTokens(text);
  }
  get contextLength(): number {
    return this.inner.contextLength;
  }
  /** The engine's context bound (LocalChatModel.boundedContext), which `serve` sets. */
  get boundedContext(): boolean {
    return this.inner.boundedContext;
  }
  set boundedContext(bounded: boolean) {
    this.inner.boundedContext = bounded;
  }
  async close(): Promise<void> {
    await this.owner?.close();
  }
}

/**
 * The engine behind a ChatModel, for white-box reads (activations) of an eval subject: a local
 * model, a steered or capped view (captured under its hooks), either one inside the response cache
 * and accounting layer. Undefined for endpoints.
 */
export function engineOf(model: ChatModel): SteerEngine | undefined {
  let m: ChatModel = model;
  while (m instanceof ManagedChatModel) m = m.inner;
  if (m instanceof HookedChatModel) return m.view;
  if (m instanceof LocalChatModel) return SteerEngine.fromLocal(m);
  return undefined;
}

export class SteerEngine {
  private constructor(
    readonly local: LocalChatModel,
    readonly hooks: Hooks | undefined,
  ) {}

  /** Opens `local:<dir>[+<adapter>]` (or the object form) on the engine. */
  static open(ref: string | LocalModelRef, cwd = process.cwd()): SteerEngine {
    return new SteerEngine(LocalChatModel.open(parseLocalModelRef(ref, cwd)), undefined);
  }

  static fromLocal(local: LocalChatModel): SteerEngine {
    return new SteerEngine(local, undefined);
  }

  get model(): Model {
    return this.local.model;
  }
  get modelId(): string {
    return this.local.id;
  }
  get numLayers(): number {
    return this.model.config.numLayers;
  }
  get hiddenSize(): number {
    return this.model.config.hiddenSize;
  }
  get allLayers(): number[] {
    return Array.from({ length: this.numLayers }, (_, l) => l);
  }

  /** The same model with `hooks` applied to every generation, capture and chat (added to this view's own). */
  withHooks(hooks: Hooks): SteerEngine {
    return new SteerEngine(this.local, mergeHooks(this.hooks, hooks));
  }

  /** This view as a ChatModel (id = model id plus a tag of the hooks); `owned`: its close() closes the engine. */
  asChatModel(options: { owned?: boolean } = {}): ChatModel {
    const owner = options.owned ? this : undefined;
    if (!this.hooks) return new HookedChatModel(this.local.id, this.local, this, owner);
    const local = new LocalChatModel(hookedModel(this.model, this.hooks), this.local.tokenizer, this.local.defaults, parseLocalModelRef(this.local.id));
    return new HookedChatModel(`${this.local.id}@${hooksTag(this.hooks)}`, local, this, owner);
  }

  /** Tokens of a conversation up to the assistant's turn (chat template with the generation prompt). */
  render(messages: readonly ChatMessage[]): number[] {
    return this.local.tokenizer.encodeChat(messages.map((m) => ({ ...m })), { addGenerationPrompt: true });
  }

  /** Tokens of an assistant reply text as it follows the rendered prompt. */
  encodeReply(text: string): number[] {
    return this.local.tokenizer.encode(text, { addSpecialTokens: false });
  }

  decode(tokens: readonly number[]): string {
    return this.local.tokenizer.decode(tokens, { skipSpecialTokens: true });
  }

  private stopTokens(): number[] {
    const ids = new Set([...this.local.defaults.eosTokenIds, ...this.model.config.eosTokenIds]);
    if (this.local.tokenizer.eos) ids.add(this.local.tokenizer.eos.id);
    return [...ids];
  }

  /** `n` seeded rollouts per conversation, under this view's hooks; result[i][k] is conversation i's k-th. */
  async rollouts(conversations: readonly (readonly ChatMessage[])[], o: RolloutOptions = {}): Promise<Rollout[][]> {
    const n = o.n ?? 1;
    const prompts = conversations.map((c) => this.render(c));
    const rows = prompts.flatMap((p) => Array.from({ length: n }, () => p));
    const generations = await this.model.generate(rows, {
      temperature: o.temperature ?? 1,
      maxTokens: o.maxTokens ?? 200,
      stopTokens: this.stopTokens(),
      // per-row seeds given explicitly: generate() lets a top-level `seed` override its own seed + i (engine bug, reported)
      rows: rows.map((_, i) => ({ seed: (o.seed ?? 0) + i })),
      batchSize: o.batchSize,
      hooks: this.hooks,
    });
    return prompts.map((prompt, i) =>
      generations.slice(i * n, (i + 1) * n).map((g) => ({ prompt, reply: g.tokens, text: this.decode(g.tokens), finishReason: g.finishReason })),
    );
  }

  private captureHooks(): Omit<Hooks, 'capture'> | undefined {
    return this.hooks ? { steer: this.hooks.steer, cap: this.hooks.cap } : undefined;
  }

  /** Residual stream averaged over each row's reply tokens (rows need at least one reply token). */
  async replyMeans(rows: readonly { prompt: number[]; reply: number[] }[], layers: number[], batchSize?: number): Promise<LayerActivations[]> {
    if (rows.length === 0) return [];
    return this.model.capture(
      rows.map((r) => [...r.prompt, ...r.reply]),
      rows.map((r) => r.prompt.length),
      { layers, mode: 'mean', hooks: this.captureHooks(), batchSize },
    );
  }

  /** Residual stream at each prompt's last token (docs/protocols.md §5 monitoring). */
  async lastPromptToken(prompts: readonly number[][], layers: number[], batchSize?: number): Promise<LayerActivations[]> {
    if (prompts.length === 0) return [];
    return this.model.capture([...prompts], prompts.map((p) => p.length), { layers, mode: 'last', hooks: this.captureHooks(), batchSize });
  }

  /** Every reply token's activation: per row and layer, a list of [hidden] vectors. */
  async replyTokens(rows: readonly { prompt: number[]; reply: number[] }[], layers: number[], batchSize?: number): Promise<Map<number, Float32Array[]>[]> {
    if (rows.length === 0) return [];
    const captured = await this.model.capture(
      rows.map((r) => [...r.prompt, ...r.reply]),
      rows.map((r) => r.prompt.length),
      { layers, mode: 'tokens', hooks: this.captureHooks(), batchSize },
    );
    const d = this.hiddenSize;
    return captured.map((byLayer, i) => {
      const start = rows[i].prompt.length;
      const out = new Map<number, Float32Array[]>();
      for (const [layer, all] of byLayer) {
        out.set(layer, Array.from({ length: rows[i].reply.length }, (_, t) => all.slice((start + t) * d, (start + t + 1) * d)));
      }
      return out;
    });
  }

  async close(): Promise<void> {
    await this.local.close();
  }
}
