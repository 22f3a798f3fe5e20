/**
 * A loaded model: weights in memory (f32), ORT sessions compiled on demand per graph variant
 * (./graphs.ts), and the token-level operations the rest of the engine builds on: forward logits,
 * batched generation with a KV cache, scoring, activation capture and pooled embeddings.
 */
import { existsSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type ort from 'onnxruntime-node';
import { InputError } from '../../core/errors.js';
import { type ModelConfig, SafetensorsModel, checkTensorShapes, isGgufPath, loadModelConfig, openGgufModel } from '../io/index.js';
import { type Feed, Session, type WeightPlacement, floats } from '../runtime/index.js';
import { type Hooks, type SteerPositions, checkHooks, hookNames, positionMask, unit } from '../hooks/index.js';
import { type LoraAdapter, loadAdapterFor, loraNames, loraSpec, loraWeights, mergeLora } from '../lora/index.js';
import { type GraphSpec, buildGraph, io, specKey } from './graphs.js';
import { type RopeTables, ropeTables } from '../models/index.js';
import { KvCache, type PaddedBatch, leftPad, prefillBias } from './layout.js';
import { type SamplingOptions, candidatesNeeded, randomFor, sampleIndex } from './sample.js';

export interface AdapterRef {
  path: string;
  /** Multiplies lora_alpha / r (default 1). */
  scale?: number;
}

export interface LoadOptions {
  adapters?: AdapterRef[];
  /** Fold the adapters into the weights instead of running them as extra params. */
  mergeAdapters?: boolean;
  /**
   * How weights reach ORT. 'feed': passed on every run (fast session creation, one copy shared by all
   * sessions). 'initializer': baked into each session (MLAS prepacks them: decode ran 1.2-1.8x faster,
   * but each session holds its own copy and takes seconds to create). 'auto' (default): initializers
   * for the generation graph only (prefill and decode share it) when five times the weights fit in
   * a quarter of the machine's memory; feeds otherwise, and for scoring, capture and embeddings (one
   * forward pass over many tokens, where packing the weights per run costs least). Baked-in weights
   * cost memory, fed ones speed: SmolLM2-135M's generation peaked at 4.6x its float32 weights with
   * initializers and 1.4x with feeds, and decoded 1.7-4x faster with initializers
   * (bench/engine-inference.ts --gguf).
   */
  weightsAs?: WeightPlacement | 'auto';
  /** ORT intra-op threads (default: ORT's choice). */
  threads?: number;
}

const adjusts = (r: RowOptions) => Boolean(r.logitBias?.size || r.presencePenalty || r.frequencyPenalty);

/**
 * Samples after adding the row's logit bias and penalties to its candidates (the whole
 * vocabulary); returns the index into the graph's candidate list.
 */
function adjustedIndex(values: Float32Array, ids: BigInt64Array, opts: RowOptions, tokens: readonly number[], random: () => number): number {
  const counts = new Map<number, number>();
  for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  const adjusted = Array.from(values, (v, i) => {
    const id = Number(ids[i]);
    const count = counts.get(id) ?? 0;
    return { i, logit: v + (opts.logitBias?.get(id) ?? 0) - (count > 0 ? (opts.presencePenalty ?? 0) + (opts.frequencyPenalty ?? 0) * count : 0) };
  }).sort((a, b) => b.logit - a.logit);
  return adjusted[sampleIndex(adjusted.map((a) => a.logit), opts, random)].i;
}

/** What may differ between the rows of one batch. */
export interface RowOptions extends SamplingOptions {
  maxTokens?: number;
  /**
   * The row's random stream (default: GenerateOptions.seed + the row's index; without any seed,
   * fresh entropy, so two unseeded calls differ).
   */
  seed?: number;
  /**
   * Added to the logits before the warpers: a bias per token id (OpenAI's logit_bias), and
   * presence/frequency penalties over the tokens the row has generated so far (OpenAI's definition:
   * logit -= presence * [count > 0] + frequency * count).
   */
  logitBias?: ReadonlyMap<number, number>;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Token ids that end the row (default: the model's eos ids). The stop token is not returned. */
  stopTokens?: number[];
  /**
   * Called after each step with the row's tokens so far; return true to stop the row (stop strings
   * are checked this way by the caller, which owns the tokenizer).
   */
  shouldStop?: (row: number, tokens: readonly number[]) => boolean;
  /** Log-probabilities of chosen tokens and this many alternatives per step (<= 20). */
  logprobs?: boolean;
  topLogprobs?: number;
}

export interface GenerateOptions extends RowOptions {
  /** Per-row overrides of the options above (same length as the prompts). */
  rows?: RowOptions[];
  hooks?: Hooks;
  /** Rows per batch (default 32); longer lists run in several batches. */
  batchSize?: number;
}

export interface TokenChoice {
  id: number;
  logprob: number;
}

export interface Generation {
  tokens: number[];
  finishReason: 'stop' | 'length';
  /** With logprobs: per generated token, its log-probability and the top alternatives. */
  logprobs?: { logprob: number; top: TokenChoice[] }[];
}

export interface ScoreOptions {
  /** Also return the top-k alternatives at each continuation position. */
  topK?: number;
  hooks?: Hooks;
  batchSize?: number;
}

export interface Score {
  /** log p(continuation[i] | prompt, continuation[<i]) */
  logprobs: number[];
  total: number;
  top?: TokenChoice[][];
}

export interface CaptureOptions {
  layers: number[];
  /** 'mean' over the reply tokens (tokens after promptLengths), 'last' prompt position, or every token. */
  mode: 'mean' | 'last' | 'tokens';
  hooks?: Omit<Hooks, 'capture'>;
  batchSize?: number;
}

/** Per row, per requested layer: [hidden] (mean/last) or [tokens * hidden] (tokens, real tokens only). */
export type Captured = Map<number, Float32Array>[];

const DEFAULT_BATCH = 32;
const DEFAULT_MAX_TOKENS = 256;
/** Peak memory of a generation session with baked-in weights, in multiples of the weights (measured 4.6x). */
const BAKED_PEAK_RATIO = 5;

export class Model {
  private readonly sessions = new Map<string, { session: Promise<Session>; placement: WeightPlacement }>();
  private rope: RopeTables | null = null;
  private ropeLength = 0;

  private constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    private readonly weightMap: Map<string, Float32Array>,
    private readonly adapterList: { adapter: LoraAdapter; scale: number }[],
    private readonly options: LoadOptions,
  ) {}

  get weights(): ReadonlyMap<string, Float32Array> {
    return this.weightMap;
  }

  get adapters(): readonly { adapter: LoraAdapter; scale: number }[] {
    return this.adapterList;
  }

  /**
   * Replaces adapter `index` with one of the same modules and ranks (the adapter being trained, say)
   * without reloading anything: sessions with fed weights take the new values, sessions with baked-in
   * weights are rebuilt at their next use.
   */
  async setAdapter(index: number, adapter: LoraAdapter): Promise<void> {
    const current = this.adapterList[index];
    if (!current) throw new Error(`setAdapter: the model has ${this.adapterList.length} adapter(s), no index ${index}`);
    const shape = (x: LoraAdapter) => [...x.modules].map(([m, w]) => `${m}:${w.rank}`).sort().join(',');
    const [was, now] = [shape(current.adapter), shape(adapter)];
    if (was !== now) throw new Error(`setAdapter: the new adapter's modules and ranks (${now}) differ from the loaded one's (${was})`);
    this.adapterList[index] = { adapter, scale: current.scale };
    await this.refresh(loraWeights(this.adapterList.map((a) => a.adapter)));
  }

  /** Replaces base weights (same names and sizes; full-parameter training, say), as setAdapter does. */
  async setWeights(weights: ReadonlyMap<string, Float32Array>): Promise<void> {
    for (const [name, data] of weights) {
      const current = this.weightMap.get(name);
      if (!current || current.length !== data.length) throw new Error(`setWeights: ${name} is ${current ? `${current.length} values, not ${data.length}` : 'not a weight of this model'}`);
      this.weightMap.set(name, data);
    }
    await this.refresh(weights);
  }

  private async refresh(changed: ReadonlyMap<string, Float32Array>): Promise<void> {
    for (const [key, { session, placement }] of [...this.sessions]) {
      if (placement === 'feed') (await session).setWeights(changed);
      else {
        this.sessions.delete(key);
        await (await session.catch(() => null))?.release();
      }
    }
  }

  /** Reads a model directory (config.json, safetensors) or a GGUF file, checking every shape. */
  static load(dir: string, options: LoadOptions = {}): Model {
    let weights = new Map<string, Float32Array>();
    const config = Model.readWeights(dir, (name, data) => weights.set(name, data));
    if (config.tieWordEmbeddings) weights.delete('lm_head.weight');
    let adapters = (options.adapters ?? []).map((a) => ({ adapter: loadAdapterFor(a.path, config), scale: a.scale ?? 1 }));
    if (options.mergeAdapters && adapters.length) {
      weights = mergeLora(weights, adapters);
      adapters = [];
    }
    return new Model(dir, config, weights, adapters, options);
  }

  /**
   * Reads a model directory (config.json, safetensors in any float dtype) or a GGUF file (dequantized)
   * one weight at a time, as float32 under its Hugging Face name, every shape checked first; returns
   * the config. A caller that converts the weights as they come (an int8 training base) never holds
   * the whole float32 model.
   */
  static readWeights(dir: string, visit: (name: string, data: Float32Array, config: ModelConfig) => void): ModelConfig {
    Model.mustExist(dir);
    if (isGgufPath(dir)) {
      const gguf = openGgufModel(dir);
      try {
        for (const name of gguf.names.keys()) visit(name, gguf.readFloat32(name), gguf.config);
      } finally {
        gguf.close();
      }
      return gguf.config;
    }
    const config = loadModelConfig(join(dir, 'config.json'));
    const st = SafetensorsModel.open(dir);
    try {
      checkTensorShapes(config, st.shapes(), (name) => st.fileOf(name), join(dir, 'config.json'));
      for (const name of st.names()) if (!/rotary_emb\.inv_freq$/.test(name)) visit(name, st.readFloat32(name), config);
    } finally {
      st.close();
    }
    return config;
  }

  /** The config of a model directory or GGUF file, without reading its weights. */
  static readConfig(dir: string): ModelConfig {
    Model.mustExist(dir);
    if (!isGgufPath(dir)) return loadModelConfig(join(dir, 'config.json'));
    const gguf = openGgufModel(dir);
    gguf.close();
    return gguf.config;
  }

  private static mustExist(dir: string): void {
    if (!existsSync(dir)) throw new InputError(dir, '', isGgufPath(dir) ? 'a GGUF model file (not found)' : 'a model directory (not found)');
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  /** The weights with the given adapters folded in (for export, or a faster merged model). */
  mergedWeights(): Map<string, Float32Array> {
    return mergeLora(this.weights, this.adapters);
  }

  private spec(s: GraphSpec): GraphSpec {
    return this.adapters.length ? { ...s, lora: this.adapters.map((a) => loraSpec(a.adapter)) } : s;
  }

  private session(spec: GraphSpec): Promise<Session> {
    const key = specKey(spec);
    const open = this.sessions.get(key);
    if (open) return open.session;
    const weights = new Map(this.weights);
    for (const [k, v] of loraWeights(this.adapters.map((a) => a.adapter))) weights.set(k, v);
    const placement = this.placement(spec);
    const session = Session.create(buildGraph(this.config, spec), { weights, weightsAs: placement, threads: this.options.threads });
    session.catch(() => this.sessions.delete(key));
    this.sessions.set(key, { session, placement });
    return session;
  }

  private placement(spec: GraphSpec): WeightPlacement {
    const choice = this.options.weightsAs ?? 'auto';
    if (choice !== 'auto') return choice;
    let bytes = 0;
    for (const w of this.weights.values()) bytes += w.byteLength;
    return spec.cache && bytes * BAKED_PEAK_RATIO <= totalmem() / 4 ? 'initializer' : 'feed';
  }

  /** Model-wide feeds: LoRA scales and RoPE tables covering positions below `positions`. */
  private baseFeeds(positions: number): Record<string, Feed> {
    const feeds: Record<string, Feed> = {};
    if (!this.rope || this.ropeLength < positions) {
      this.ropeLength = Math.max(positions, 2 * this.ropeLength, 256);
      this.rope = ropeTables(this.config, this.ropeLength);
    }
    const dims = [this.ropeLength, this.config.headDim / 2];
    feeds[io.ropeCosQ] = { data: this.rope.cosQ, dims };
    feeds[io.ropeSinQ] = { data: this.rope.sinQ, dims };
    feeds[io.ropeCosK] = { data: this.rope.cosK, dims };
    feeds[io.ropeSinK] = { data: this.rope.sinK, dims };
    this.adapters.forEach(({ scale }, a) => {
      feeds[loraNames.scale(a)] = { data: new Float32Array([scale]), dims: [] };
    });
    return feeds;
  }

  /** Feeds for the hooks' vectors, thresholds and position masks. */
  private hookFeeds(hooks: Hooks | undefined, p: PaddedBatch, promptLengths: readonly number[], offset = 0, steps = p.length): Record<string, Feed> {
    checkHooks(hooks, this.config.numLayers, this.config.hiddenSize);
    const feeds: Record<string, Feed> = {};
    if (!hooks) return feeds;
    const d = this.config.hiddenSize;
    const masks = (which: SteerPositions) => {
      const m = new Float32Array(p.batch * steps);
      for (let b = 0; b < p.batch; b++) {
        const row = positionMask(which, offset + steps, p.pads[b], promptLengths[b]);
        m.set(row.subarray(offset), b * steps);
      }
      return { data: m, dims: [p.batch, steps] };
    };
    const byLayer = new Map<number, { vec: Float32Array; positions: SteerPositions }>();
    for (const s of hooks.steer ?? []) {
      const entry = byLayer.get(s.layer) ?? { vec: new Float32Array(d), positions: s.positions ?? 'all' };
      for (let i = 0; i < d; i++) entry.vec[i] += s.coef * s.vector[i];
      byLayer.set(s.layer, entry);
    }
    for (const [layer, { vec, positions }] of byLayer) {
      feeds[hookNames.steerVector(layer)] = { data: vec, dims: [d] };
      feeds[hookNames.steerMask(layer)] = masks(positions);
    }
    if (hooks.cap) {
      feeds[hookNames.capAxis] = { data: unit(hooks.cap.axis), dims: [d] };
      hooks.cap.layers.forEach((layer, i) => {
        const t = Array.isArray(hooks.cap!.threshold) ? hooks.cap!.threshold[i] : hooks.cap!.threshold;
        feeds[hookNames.capThreshold(layer)] = { data: new Float32Array([t as number]), dims: [] };
      });
    }
    if (hooks.capture?.mode === 'mean') feeds[hookNames.captureMask] = masks(hooks.capture.positions ?? 'reply');
    return feeds;
  }

  private padId(): number {
    return this.config.padTokenId ?? this.config.eosTokenIds[0] ?? 0;
  }

  private prefillFeeds(p: PaddedBatch): Record<string, Feed> {
    const rep = this.config.numHeads / this.config.numKvHeads;
    return {
      ...this.baseFeeds(p.length),
      [io.inputIds]: { data: p.ids, dims: [p.batch, p.length] },
      [io.positionIds]: { data: p.positions, dims: [p.batch, p.length] },
      [io.attentionBias]: { data: prefillBias(p, rep, this.config.slidingWindow), dims: [p.batch, 1, rep * p.length, p.length] },
    };
  }

  private checkTokens(rows: readonly (readonly number[])[]): void {
    for (const row of rows) {
      for (const id of row) {
        if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) throw new RangeError(`token id ${id} outside 0..${this.config.vocabSize - 1}`);
      }
    }
  }

  /**
   * Full logits [T * V] per row for the real tokens of each row (tests, small models). With hooks,
   * promptLengths say where each row's reply begins (default: all prompt).
   */
  async logits(rows: number[][], hooks?: Hooks, promptLengths = rows.map((r) => r.length)): Promise<Float32Array[]> {
    this.checkTokens(rows);
    const p = leftPad(rows, this.padId());
    const s = await this.session(this.spec({ cache: false, logits: true, hooks }));
    const out = await s.run({ ...this.prefillFeeds(p), ...this.hookFeeds(hooks, p, promptLengths) }, [io.logits]);
    const all = floats(out[io.logits]);
    const V = this.config.vocabSize;
    return rows.map((r, b) => all.slice((b * p.length + p.pads[b]) * V, (b + 1) * p.length * V));
  }

  /** Generates a continuation of each prompt (token ids), batched with a KV cache. */
  async generate(prompts: number[][], opts: GenerateOptions = {}): Promise<Generation[]> {
    this.checkTokens(prompts);
    if (opts.rows && opts.rows.length !== prompts.length) throw new RangeError(`generate: ${opts.rows.length} row options for ${prompts.length} prompts`);
    const size = opts.batchSize ?? DEFAULT_BATCH;
    const out: Generation[] = [];
    for (let i = 0; i < prompts.length; i += size) {
      const rows = prompts.slice(i, i + size).map((_, j) => ({ ...opts, seed: opts.seed === undefined ? undefined : opts.seed + i + j, ...opts.rows?.[i + j] }));
      // captures are for capture(): left out here so the decode graph does not compute them
      const hooks = opts.hooks ? { ...opts.hooks, capture: undefined } : undefined;
      out.push(...(await this.generateBatch(prompts.slice(i, i + size), rows, hooks)));
    }
    return out;
  }

  private async generateBatch(prompts: number[][], rows: RowOptions[], hooks: Hooks | undefined): Promise<Generation[]> {
    const { numLayers: L, numKvHeads: KV, headDim: D, numHeads: H, vocabSize: V } = this.config;
    const rep = H / KV;
    const maxTokens = rows.map((r) => r.maxTokens ?? DEFAULT_MAX_TOKENS);
    const stops = rows.map((r) => new Set(r.stopTokens ?? this.config.eosTokenIds));
    const topLogprobs = rows.map((r) => (r.logprobs ? Math.min(r.topLogprobs ?? 0, 20) : 0));
    // a bias or penalty can lift any token into the top candidates: those rows need the whole vocabulary
    const k = Math.max(...rows.map((r, b) => (adjusts(r) ? V : candidatesNeeded(r, V, topLogprobs[b]))));
    const promptLengths = prompts.map((p) => p.length);
    const p = leftPad(prompts, this.padId());
    const B = p.batch;
    const randoms = rows.map((r) => randomFor(r.seed));
    const results: Generation[] = rows.map((r) => ({ tokens: [], finishReason: 'length', ...(r.logprobs ? { logprobs: [] } : {}) }));
    const done = maxTokens.map((m) => m <= 0);
    if (done.every(Boolean)) return results;

    // one session for prefill (an empty cache) and decode: one copy of the weights when they are initializers
    const session = await this.session(this.spec({ cache: true, kv: true, sample: true, hooks }));
    const kvNames = Array.from({ length: L }, (_, l) => [io.key(l), io.value(l)]).flat();
    const sampleNames = [io.topValues, io.topIds, io.lse];
    const cache = new KvCache(L, B, KV, D, p.length + Math.max(...maxTokens));
    const kFeed: Feed = { data: new BigInt64Array([BigInt(k)]), dims: [1] };
    const empty = new Float32Array(0);
    const prefillFeeds: Record<string, Feed> = { ...this.prefillFeeds(p), ...this.hookFeeds(hooks, p, promptLengths), [io.topK]: kFeed };
    for (let l = 0; l < L; l++) {
      prefillFeeds[io.pastKey(l)] = { data: empty, dims: [B, KV, D, 0] };
      prefillFeeds[io.pastValue(l)] = { data: empty, dims: [B, KV, 0, D] };
    }
    let outputs = await session.run(prefillFeeds, [...kvNames, ...sampleNames]);
    const lengths = prompts.map((r) => r.length); // real tokens per row so far
    for (let step = 0; ; step++) {
      cache.append(
        Array.from({ length: L }, (_, l) => floats(outputs[io.key(l)])),
        Array.from({ length: L }, (_, l) => floats(outputs[io.value(l)])),
        step === 0 ? p.length : 1,
        step === 0 ? p.mask : new Uint8Array(B).fill(1),
      );
      const next = this.pick(outputs, k, rows, randoms, topLogprobs, results);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const choice = next[b];
        if (stops[b].has(choice.id)) {
          results[b].finishReason = 'stop';
          done[b] = true;
          continue;
        }
        results[b].tokens.push(choice.id);
        results[b].logprobs?.push({ logprob: choice.logprob, top: choice.top });
        if (rows[b].shouldStop?.(b, results[b].tokens)) {
          results[b].finishReason = 'stop';
          done[b] = true;
        } else if (results[b].tokens.length >= maxTokens[b]) done[b] = true;
      }
      if (done.every(Boolean)) break;
      // one decode step for every row (finished rows ride along; their tokens are ignored)
      const ids = new BigInt64Array(B);
      const positions = new BigInt64Array(B);
      for (let b = 0; b < B; b++) {
        ids[b] = BigInt(next[b].id);
        positions[b] = BigInt(lengths[b]++);
      }
      const C = cache.capacity;
      const feeds: Record<string, Feed> = {
        ...this.baseFeeds(cache.capacity),
        [io.inputIds]: { data: ids, dims: [B, 1] },
        [io.positionIds]: { data: positions, dims: [B, 1] },
        [io.attentionBias]: { data: cache.decodeBias(rep, this.config.slidingWindow), dims: [B, 1, rep, C + 1] },
        [io.topK]: kFeed,
        ...this.hookFeeds(hooks, p, promptLengths, p.length + step, 1),
      };
      for (let l = 0; l < L; l++) {
        feeds[io.pastKey(l)] = { data: cache.keys[l], dims: [B, KV, D, C] };
        feeds[io.pastValue(l)] = { data: cache.values[l], dims: [B, KV, C, D] };
      }
      outputs = await session.run(feeds, [...kvNames, ...sampleNames]);
    }
    return results;
  }

  /** The sampled token per row, with its log-probability and the top alternatives. */
  private pick(
    outputs: Record<string, ort.Tensor>,
    k: number,
    rows: readonly SamplingOptions[],
    randoms: (() => number)[],
    topLogprobs: readonly number[],
    sofar: readonly Generation[],
  ): { id: number; logprob: number; top: TokenChoice[] }[] {
    const values = floats(outputs[io.topValues]);
    const ids = outputs[io.topIds].data as BigInt64Array;
    const lse = floats(outputs[io.lse]);
    return rows.map((opts, b) => {
      const row = values.subarray(b * k, (b + 1) * k);
      const i = adjusts(opts) ? adjustedIndex(row, ids.subarray(b * k, (b + 1) * k), opts, sofar[b].tokens, randoms[b]) : sampleIndex(row, opts, randoms[b]);
      const top: TokenChoice[] = [];
      for (let j = 0; j < topLogprobs[b]; j++) top.push({ id: Number(ids[b * k + j]), logprob: row[j] - lse[b] });
      return { id: Number(ids[b * k + i]), logprob: row[i] - lse[b], top };
    });
  }

  /** Log-probabilities of each continuation given its prompt (one forward pass per batch). */
  async score(prompts: number[][], continuations: number[][], opts: ScoreOptions = {}): Promise<Score[]> {
    if (prompts.length !== continuations.length) throw new RangeError(`score: ${prompts.length} prompts but ${continuations.length} continuations`);
    const rows = prompts.map((pr, i) => [...pr, ...continuations[i]]);
    this.checkTokens(rows);
    prompts.forEach((p, i) => {
      if (p.length === 0) throw new RangeError(`score: prompt ${i} is empty (a continuation needs at least one token before it)`);
    });
    const size = opts.batchSize ?? DEFAULT_BATCH;
    const k = Math.min(opts.topK ?? 0, this.config.vocabSize);
    const session = await this.session(this.spec({ cache: false, score: true, scoreTop: k > 0, hooks: opts.hooks }));
    const out: Score[] = [];
    for (let start = 0; start < rows.length; start += size) {
      const batch = rows.slice(start, start + size);
      const p = leftPad(batch, this.padId());
      const T = p.length;
      // target at position t is the token at t + 1 (the last position's target is unused)
      const targets = new BigInt64Array(p.batch * T);
      for (let i = 0; i < targets.length; i++) if ((i + 1) % T !== 0) targets[i] = p.ids[i + 1];
      const promptLengths = batch.map((_, i) => prompts[start + i].length);
      const feeds: Record<string, Feed> = {
        ...this.prefillFeeds(p),
        ...this.hookFeeds(opts.hooks, p, promptLengths),
        [io.targets]: { data: targets, dims: [p.batch, T] },
      };
      if (k > 0) feeds[io.topK] = { data: new BigInt64Array([BigInt(k)]), dims: [1] };
      const res = await session.run(feeds, k > 0 ? [io.targetLogprobs, io.topValues, io.topIds] : [io.targetLogprobs]);
      const lp = floats(res[io.targetLogprobs]);
      const topV = k > 0 ? floats(res[io.topValues]) : null;
      const topI = k > 0 ? (res[io.topIds].data as BigInt64Array) : null;
      batch.forEach((_, i) => {
        const cont = continuations[start + i];
        const first = p.pads[i] + promptLengths[i] - 1; // position predicting the first continuation token
        const logprobs = cont.map((_, j) => lp[i * T + first + j]);
        const score: Score = { logprobs, total: logprobs.reduce((a, b) => a + b, 0) };
        if (topV && topI) {
          score.top = cont.map((_, j) => {
            const at = (i * T + first + j) * k;
            return Array.from({ length: k }, (_, c) => ({ id: Number(topI[at + c]), logprob: topV[at + c] }));
          });
        }
        out.push(score);
      });
    }
    return out;
  }

  /**
   * Residual-stream activations leaving the given layers. Rows are full token sequences;
   * promptLengths[i] tokens of row i are the prompt, the rest the reply ('mean' averages the reply;
   * 'last' takes the last token of the row, so pass the prompt alone for the last prompt token).
   */
  async capture(rows: number[][], promptLengths: number[], opts: CaptureOptions): Promise<Captured> {
    this.checkTokens(rows);
    const hooks: Hooks = { ...opts.hooks, capture: { layers: opts.layers, mode: opts.mode, positions: 'reply' } };
    const session = await this.session(this.spec({ cache: false, hooks }));
    const size = opts.batchSize ?? DEFAULT_BATCH;
    const d = this.config.hiddenSize;
    const out: Captured = [];
    for (let start = 0; start < rows.length; start += size) {
      const batch = rows.slice(start, start + size);
      const p = leftPad(batch, this.padId());
      const lengths = promptLengths.slice(start, start + size);
      if (opts.mode === 'mean') {
        lengths.forEach((n, i) => {
          if (n >= batch[i].length) throw new RangeError(`capture: row ${start + i} has no reply tokens to average (prompt ${n} of ${batch[i].length})`);
        });
      }
      const names = opts.layers.map(hookNames.captured);
      const res = await session.run({ ...this.prefillFeeds(p), ...this.hookFeeds(hooks, p, lengths) }, names);
      batch.forEach((row, i) => {
        const m = new Map<number, Float32Array>();
        opts.layers.forEach((layer) => {
          const data = floats(res[hookNames.captured(layer)]);
          m.set(layer, opts.mode === 'tokens' ? data.slice((i * p.length + p.pads[i]) * d, (i + 1) * p.length * d) : data.slice(i * d, (i + 1) * d));
        });
        out.push(m);
      });
    }
    return out;
  }

  /** Mean of the final (normed) hidden states over each row's tokens. */
  async embed(rows: number[][], batchSize = DEFAULT_BATCH): Promise<Float32Array[]> {
    this.checkTokens(rows);
    const session = await this.session(this.spec({ cache: false, pool: true }));
    const d = this.config.hiddenSize;
    const out: Float32Array[] = [];
    for (let start = 0; start < rows.length; start += batchSize) {
      const p = leftPad(rows.slice(start, start + batchSize), this.padId());
      const mask = Float32Array.from(p.mask);
      const res = await session.run({ ...this.prefillFeeds(p), [io.poolMask]: { data: mask, dims: [p.batch, p.length] } }, [io.embedding]);
      const e = floats(res[io.embedding]);
      for (let i = 0; i < p.batch; i++) out.push(e.slice(i * d, (i + 1) * d));
    }
    return out;
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const { session } of all) await (await session.catch(() => null))?.release();
  }
}
