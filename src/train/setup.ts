/**
 * What every objective sets up before its loop: the model and tokenizer, the trainable tensors
 * (a fresh LoRA adapter with PEFT's default init, or every weight), the training session with the
 * frozen weights baked in, the preventative-steering vector, and how the result is written.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../core/errors.js';
import { writeFileAtomic } from '../core/journal.js';
import { adapterBaseOf } from '../providers/hub/cache.js';
import { Model } from '../engine/generate/model.js';
import { Graph } from '../engine/graph/index.js';
import { hookNames } from '../engine/hooks/index.js';
import { type ModelConfig, loadModelConfig } from '../engine/io/config.js';
import { ExternalDataFile, MAX_INLINE_BYTES, type StoredWeight } from '../engine/graph/onnx.js';
import { type LoraAdapter, type LoraModule, saveLoraAdapter } from '../engine/io/peft.js';
import { writeSafetensors } from '../engine/io/safetensors.js';
import { TextTokenizer } from '../engine/io/tokenizer.js';
import { loadTokenizer } from '../engine/io/model-dir.js';
import { type Feed, Session } from '../engine/runtime/index.js';
import { type CheckpointMode, type TrainedLoraShape, type Objective, type TrainableSpec, buildTrainGraph, dropoutMaskName, int8Converter, int8Weights } from './graph.js';
import type { Param } from './optim.js';
import { type MemoryShape, checkTrainMemory } from './memory.js';
import type { LoraTarget, PreventativeSteering } from './options.js';
import { Rng } from './rng.js';

/** The options every objective shares (a parsed sft/dpo/grpo block of the train section). */
export interface RunShape {
  lora: { rank: number; alpha: number; dropout: number; targets: LoraTarget[] };
  fullParameter: boolean;
  /** Default 'attention' (see options.ts). */
  activationCheckpointing?: CheckpointMode;
  /** Default 'float32' (see options.ts). */
  baseWeights?: 'float32' | 'int8';
  seed?: number;
  steering?: PreventativeSteering;
  /** Micro-batch shape, for the memory estimate (memory.ts). */
  batchSize?: number;
  maxLength?: number;
  groupSize?: number;
}

export interface SetupInput {
  /** A model directory or an already loaded engine Model. */
  model: string | Model;
  options: RunShape;
  seed: number;
  objective: Objective;
  dpoBeta?: number;
  grpoClip?: number;
  grpoKl?: number;
  /** The steering vector itself (overrides options.steering.vector, a file). */
  steeringVector?: Float32Array;
  threads?: number;
  /**
   * Where the training session keeps the frozen weights. Default: baked in as initializers, or in
   * an ONNX external data file when they pass protobuf's 2 GB limit.
   */
  frozenWeightsAs?: 'initializer' | 'external';
  /** Bytes the run may use (default: availableTrainMemory()). */
  memoryLimit?: number;
}

export interface Setup {
  /** The base model: its directory (or GGUF file). */
  dir: string;
  config: ModelConfig;
  tokenizer: TextTokenizer;
  lora: TrainedLoraShape | undefined;
  trainables: TrainableSpec[];
  params: Param[];
  session: Session;
  /** Feeds shared by every call: the LoRA scale, steering vector. */
  constantFeeds: Record<string, Feed>;
  /** rep = query heads per KV head, for the attention bias layout. */
  rep: number;
  /** How the frozen base projections compute (options.ts baseWeights). */
  baseWeights: 'float32' | 'int8';
  /**
   * The frozen base weights as the graphs take them (int8 copies of the projections with baseWeights
   * int8), for another session such as the reference scorer. An int8 base read from disk is read
   * again (lean, as setup read it) rather than kept: a training session alone needs no JS copy.
   */
  frozenWeights(): Map<string, Float32Array | Int8Array>;
  /** Writes the trained adapter (PEFT) or model (HF directory) into `dir`. */
  writeOutput(dir: string): void;
  /** Puts the parameters as trained so far into a model loaded from writeOutput's directory, in place. */
  updatePolicy(policy: Model): Promise<void>;
  /** Preventative steering in force (the vector already times coef), for the reference and the sampler. */
  steering: { layer: number; positions: PreventativeSteering['positions']; vector: Float32Array } | null;
  /** LoRA dropout masks for a [B,T] batch (none when dropout is 0), drawn from the run's RNG. */
  dropoutMasks(rows: number, length: number, rng: Rng): Record<string, Feed>;
  /** Per-batch steering mask feeds for [B,T] rows, given which positions are reply tokens. */
  steeringMask(rows: number, length: number, reply: Float32Array, real: Float32Array): Record<string, Feed>;
}

/** PEFT's default LoRA init: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0. */
export function initLora(trainables: readonly TrainableSpec[], rng: Rng): Param[] {
  return trainables.map((t) => {
    const data = new Float32Array(t.shape[0] * t.shape[1]);
    if (t.factor === 'A') {
      const bound = 1 / Math.sqrt(t.shape[1]);
      rng.fillUniform(data, -bound, bound);
    }
    return { name: t.name, shape: t.shape, data };
  });
}

/**
 * A steering vector file: JSON number[] (one vector), number[][] (one per layer: the layer's is
 * taken), or an object with `vector` / `vectors` holding those.
 */
export function readSteeringVector(file: string, layer: number, hidden: number): Float32Array {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new InputError(file, '', 'a JSON steering vector (file missing or malformed)');
  }
  const obj = raw as { vector?: unknown; vectors?: unknown };
  const value: unknown = Array.isArray(raw) ? raw : (obj.vectors ?? obj.vector);
  const perLayer = Array.isArray(value) && Array.isArray(value[0]);
  const v: unknown = perLayer ? (value as unknown[])[layer] : value;
  if (!Array.isArray(v) || v.length !== hidden || v.some((x) => typeof x !== 'number')) {
    throw new InputError(file, perLayer ? `[${layer}]` : 'vector', `${hidden} numbers (the model's hidden size)`);
  }
  return Float32Array.from(v as number[]);
}

function loraAdapterOf(lora: TrainedLoraShape, dropout: number, trainables: readonly TrainableSpec[], params: readonly Param[], base: string): LoraAdapter {
  const modules = new Map<string, LoraModule>();
  trainables.forEach((t, i) => {
    if (t.factor !== 'A') return;
    const b = params[i + 1];
    modules.set(t.module!, { rank: lora.rank, inFeatures: t.shape[1], outFeatures: b.shape[0], alpha: lora.alpha, A: params[i].data, B: b.data });
  });
  return {
    config: {
      r: lora.rank,
      loraAlpha: lora.alpha,
      targetModules: [...new Set(trainables.flatMap((t) => (t.factor === 'A' ? [t.module!.split('.').at(-1)!] : [])))],
      loraDropout: dropout,
      useRslora: false,
      ...adapterBaseOf(base),
      rankPattern: {},
      alphaPattern: {},
    },
    modules,
  };
}

/** Copies config and tokenizer files next to fully trained weights so the directory loads as a model. */
function writeModelDir(dir: string, source: string, params: readonly Param[]): void {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(source)) {
    if (/\.(json|jinja|txt|model)$/.test(f) && !f.startsWith('model.safetensors')) copyFileSync(join(source, f), join(dir, f));
  }
  writeSafetensors(join(dir, 'model.safetensors'), params.map((p) => ({ name: p.name, shape: p.shape, data: p.data })), { format: 'pt' });
}

/**
 * A model's frozen weights as a graph with baseWeights int8 takes them, each projection quantized as
 * it is read (int8Converter): only one float32 projection exists at a time, so a model trains in
 * little more than its int8 size rather than its float32 one (docs/training.md). With `store`, the
 * int8 copies go straight to that external data file and are not held at all.
 */
export function readInt8Base(path: string): { config: ModelConfig; weights: Map<string, Float32Array | Int8Array> };
export function readInt8Base(path: string, store: ExternalDataFile): { config: ModelConfig; weights: Map<string, Float32Array | Int8Array | StoredWeight> };
export function readInt8Base(path: string, store?: ExternalDataFile): { config: ModelConfig; weights: Map<string, Float32Array | Int8Array | StoredWeight> } {
  const weights = new Map<string, Float32Array | Int8Array | StoredWeight>();
  const out = { set: (name: string, data: Float32Array | Int8Array) => weights.set(name, store && data instanceof Int8Array ? store.append(data) : data) };
  let put: ReturnType<typeof int8Converter> | null = null;
  const config = Model.readWeights(path, (name, data, c) => (put ??= int8Converter(c))(out, name, data));
  if (config.tieWordEmbeddings) weights.delete('lm_head.weight');
  return { config, weights };
}

/**
 * The training session of an int8 base read from disk: each projection's int8 copies go straight to
 * the session's external data file as the projection is read and quantized, so neither the float32
 * nor the int8 projections are ever held (only the embeddings, head and norms are, as float32).
 */
async function int8BaseSession(g: Graph, path: string, threads?: number): Promise<Session> {
  const dir = mkdtempSync(join(tmpdir(), 'persona-lab-train-'));
  try {
    const store = new ExternalDataFile(join(dir, 'frozen.data'));
    let weights: Map<string, Float32Array | Int8Array | StoredWeight>;
    try {
      weights = readInt8Base(path, store).weights;
    } finally {
      store.close();
    }
    return await Session.create(g, { weights, weightsAs: 'external', threads, modelPath: join(dir, `${g.name}.onnx`) });
  } finally {
    // ORT holds the weights now (read or mapped): the files can go
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function setup(input: SetupInput): Promise<Setup> {
  const o = input.options;
  if (typeof input.model === 'string' && statSync(input.model).isDirectory() && o.batchSize && o.maxLength) {
    // before the weights load: a model too big for the engine is refused while nothing is spent
    const shape = { ...o, objective: input.objective as MemoryShape['objective'], batchSize: o.batchSize, maxLength: o.maxLength };
    checkTrainMemory(loadModelConfig(input.model), shape, join(input.model, 'config.json'), input.memoryLimit);
  }
  // An int8 base read from disk is never loaded as float32 (readInt8Base); unless asked to bake it in,
  // its int8 copies go straight to the session's external data file (int8BaseSession)
  const lean = typeof input.model === 'string' && o.baseWeights === 'int8' && !o.fullParameter;
  const model = lean ? null : typeof input.model === 'string' ? Model.load(input.model, { weightsAs: 'feed', threads: input.threads }) : (input.model as Model);
  const base = typeof input.model === 'string' ? input.model : input.model.dir;
  const config = model?.config ?? Model.readConfig(base);
  const frozenWeights = (): Map<string, Float32Array | Int8Array> =>
    lean ? readInt8Base(base).weights : o.baseWeights === 'int8' ? int8Weights(model!.weights, config) : new Map<string, Float32Array | Int8Array>(model!.weights);
  const tokenizer = loadTokenizer(base);
  const lora: TrainedLoraShape | undefined = o.fullParameter ? undefined : { rank: o.lora.rank, alpha: o.lora.alpha, targets: o.lora.targets, dropout: o.lora.dropout };
  const steering = o.steering;
  if (steering && (steering.layer < 0 || steering.layer >= config.numLayers)) {
    throw new InputError('train options', 'steering.layer', `a layer in 0..${config.numLayers - 1}`);
  }
  const g = new Graph(`train-${input.objective}`);
  const tg = buildTrainGraph(g, {
    config,
    lora,
    objective: input.objective,
    steering: steering && { layer: steering.layer, positions: steering.positions },
    dpoBeta: input.dpoBeta,
    grpoClip: input.grpoClip,
    grpoKl: input.grpoKl,
    checkpointing: o.activationCheckpointing,
    baseWeights: o.baseWeights,
  });
  let params: Param[];
  if (lora) {
    params = initLora(tg.trainables, Rng.seeded(input.seed ^ 0x5eed));
  } else {
    // full-parameter: every weight is trained, starting from the model's own values (copied)
    params = tg.trainables.map((t) => ({
      name: t.name,
      shape: t.shape,
      data: Float32Array.from(model!.weights.get(t.name)!),
      decay: t.shape.length > 1 && !/norm/.test(t.name),
    }));
  }
  let session: Session;
  if (lean && input.frozenWeightsAs !== 'initializer') session = await int8BaseSession(g, base, input.threads);
  else {
    const frozen = o.fullParameter ? new Map<string, Float32Array>() : frozenWeights();
    let frozenBytes = 0;
    for (const w of frozen.values()) frozenBytes += w.byteLength;
    const weightsAs = input.frozenWeightsAs ?? (frozenBytes > MAX_INLINE_BYTES ? 'external' : 'initializer');
    session = await Session.create(g, { weights: frozen, weightsAs, threads: input.threads });
  }
  const constantFeeds: Record<string, Feed> = {};
  if (lora) constantFeeds.lora_scale_0 = { data: new Float32Array([lora.alpha / lora.rank]), dims: [] };
  let steer: Setup['steering'] = null;
  if (steering) {
    const v = input.steeringVector ?? readSteeringVector(steering.vector, steering.layer, config.hiddenSize);
    if (v.length !== config.hiddenSize) throw new InputError('train options', 'steering.vector', `${config.hiddenSize} numbers (the model's hidden size)`);
    steer = { layer: steering.layer, positions: steering.positions, vector: v.map((x) => x * steering.coef) };
    constantFeeds[hookNames.steerVector(steering.layer)] = { data: steer.vector, dims: [config.hiddenSize] };
  }
  return {
    dir: base,
    config,
    tokenizer,
    lora,
    trainables: tg.trainables,
    params,
    session,
    constantFeeds,
    rep: config.numHeads / config.numKvHeads,
    steering: steer,
    baseWeights: o.baseWeights ?? 'float32',
    frozenWeights,
    writeOutput: (dir) => (lora ? saveLoraAdapter(dir, loraAdapterOf(lora, o.lora.dropout, tg.trainables, params, base)) : writeModelDir(dir, base, params)),
    updatePolicy: (policy) =>
      lora ? policy.setAdapter(0, loraAdapterOf(lora, o.lora.dropout, tg.trainables, params, base)) : policy.setWeights(new Map(params.map((p) => [p.name, p.data]))),
    dropoutMasks: (rows, length, rng) => {
      const p = lora?.dropout ?? 0;
      if (p === 0) return {};
      return Object.fromEntries(
        tg.trainables
          .filter((t) => t.factor === 'A')
          .map((t) => [dropoutMaskName(t.module!), { data: rng.dropoutMask(rows * length * t.shape[1], p), dims: [rows, length, t.shape[1]] }]),
      );
    },
    steeringMask: (rows, length, reply, real) => {
      if (!steering) return {};
      const m = steering.positions === 'all' ? real : steering.positions === 'reply' ? reply : real.map((x, i) => x * (1 - reply[i]));
      return { [hookNames.steerMask(steering.layer)]: { data: m, dims: [rows, length] } };
    },
  };
}

/** Writes a small JSON file atomically (metrics, reference caches). */
export function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

export function readJsonIfExists<T>(file: string): T | null {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : null;
}

export interface ReferenceScorer {
  /** Log-probabilities of a batch's targets (feeds as for training; extra feeds are ignored). */
  score(feeds: Record<string, Feed>): Promise<{ tokenLogp: Float32Array; logp: Float32Array }>;
  release(): Promise<void>;
}

/**
 * A forward-only session returning per-token and per-row log-probabilities under the frozen base
 * model (the adapter at scale 0, or the original weights in full-parameter runs): the reference of
 * DPO and of GRPO's KL term. Preventative steering applies to it as to the policy, so the two
 * differ only by what training changed. Weights are fed (shared with the engine Model, no copy).
 */
export async function referenceScorer(s: Setup, threads?: number): Promise<ReferenceScorer> {
  const g = new Graph('reference-logprobs');
  buildTrainGraph(g, { config: s.config, lora: s.lora, objective: 'logprobs', steering: s.steering ?? undefined, baseWeights: s.baseWeights });
  // the same base numerics as the policy's graph, so the adapter starting at zero means log-ratio 0
  const weights = s.frozenWeights();
  for (const p of s.params) if (s.lora) weights.set(p.name, new Float32Array(p.data.length));
  const session = await Session.create(g, { weights, weightsAs: 'feed', threads, outputs: ['token_logp', 'logp'] });
  const constant: Record<string, Feed> = s.lora ? { lora_scale_0: { data: new Float32Array([0]), dims: [] } } : {};
  if (s.steering) constant[hookNames.steerVector(s.steering.layer)] = { data: s.steering.vector, dims: [s.config.hiddenSize] };
  const names = new Set(session.inputNames);
  return {
    async score(feeds) {
      const used = Object.fromEntries(Object.entries(feeds).filter(([name]) => names.has(name)));
      const out = await session.run({ ...used, ...constant }, ['token_logp', 'logp']);
      return { tokenLogp: out.token_logp.data as Float32Array, logp: out.logp.data as Float32Array };
    },
    release: () => session.release(),
  };
}
