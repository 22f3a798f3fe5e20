/**
 * Training graphs: the decoder of the config's architecture (src/engine/models/index.ts) with the engine's LoRA projection
 * (src/engine/lora/: params lora.0.<module>.A [r, in] and .B [out, r], PEFT's layouts, scale input
 * lora_scale_0 = alpha / r) or every weight trainable (full-parameter), an objective head, and the
 * backward appended by the engine's autodiff, so one session call per micro-batch returns the loss
 * and every gradient. Objectives return *summed* losses; the trainer divides accumulated gradients by
 * the step's normaliser (target tokens or pairs).
 */
import {
  type Graph,
  type Tensor,
  abs,
  add,
  linearCrossEntropy,
  quantLinear,
  exp,
  grad,
  linear,
  log,
  maximum,
  minimum,
  mul,
  neg,
  reduceSum,
  reshape,
  reshapeAs,
  slice,
  stopGradient,
  sub,
} from '../engine/graph/index.js';
import { type SteerPositions, buildHooks } from '../engine/hooks/index.js';
import type { ModelConfig } from '../engine/io/config.js';
import { type LoraSpec as EngineLoraSpec, loraLinear, loraNames } from '../engine/lora/index.js';
import { groupedAttentionBias } from '../engine/generate/layout.js';
import { architectureOf, type Linear, plainLinear } from '../engine/models/index.js';
import type { Feed } from '../engine/runtime/index.js';
import type { Batch } from './data.js';
import type { LoraTarget } from './options.js';

/** The shape of the adapter a run trains (not the loaded adapters inference applies: src/engine/lora LoraSpec). */
export interface TrainedLoraShape {
  rank: number;
  alpha: number;
  targets: readonly LoraTarget[];
  /** Dropout on the adapter's input (PEFT's lora_dropout); masks are fed per micro-batch. */
  dropout?: number;
}

/** The graph input holding the dropout mask [B, T, in] of one adapted module. */
export const dropoutMaskName = (module: string): string => `lora_dropout.${module}`;

/**
 * The engine's LoRA projection with PEFT's dropout on the adapter branch only:
 * y = x W^T + ((x * mask) A^T) B^T * scale, mask an inverted-dropout keep mask fed per run
 * (drawn from the run's RNG, so a resumed run draws the same masks).
 */
function dropoutLoraLinear(g: Graph, spec: EngineLoraSpec, base: Linear): Linear {
  const scale = g.input(loraNames.scale(0), 'float32', []);
  return (x, module, inFeatures, outFeatures, bias) => {
    const y = base(x, module, inFeatures, outFeatures, bias);
    const target = spec.targets[module];
    if (!target) return y;
    const mask = g.input(dropoutMaskName(module), 'float32', ['B', 'T', inFeatures]);
    const a = g.param(loraNames.a(0, module), [target.rank, inFeatures]);
    const b = g.param(loraNames.b(0, module), [outFeatures, target.rank]);
    return add(y, linear(mul(linear(mul(x, mask), a), scale), b));
  };
}

/** Graph param names of a frozen projection's int8 copies (see int8Weights). */
export const int8Names = (module: string) => ({
  wT: `${module}.weight.int8_t`,
  scaleOut: `${module}.weight.int8_t.scale`,
  w: `${module}.weight.int8`,
  scaleIn: `${module}.weight.int8.scale`,
});

/** Frozen base projections through int8 copies of their weights (bias, if any, stays float). */
function int8Linear(g: Graph): Linear {
  return (x, module, inFeatures, outFeatures, bias) => {
    const n = int8Names(module);
    const q = {
      wT: g.param(n.wT, [inFeatures, outFeatures], { dtype: 'int8', trainable: false }),
      scaleOut: g.param(n.scaleOut, [outFeatures], { trainable: false }),
      w: g.param(n.w, [outFeatures, inFeatures], { dtype: 'int8', trainable: false }),
      scaleIn: g.param(n.scaleIn, [inFeatures], { trainable: false }),
    };
    const y = quantLinear(x, q);
    return bias ? add(y, g.param(`${module}.bias`, [outFeatures])) : y;
  };
}

/**
 * The weights a graph with baseWeights 'int8' takes: each projection weight [out, in] replaced by two
 * symmetric int8 copies, wT [in, out] with one scale per output (for x @ W^T) and w [out, in] with
 * one scale per input (for g @ W), each scale = max |row| / 127. Other weights pass through.
 */
export function int8Weights(weights: ReadonlyMap<string, Float32Array>, config: ModelConfig): Map<string, Float32Array | Int8Array> {
  const out = new Map<string, Float32Array | Int8Array>(weights);
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const { path, inFeatures: K, outFeatures: N } of Object.values(architectureOf(config).loraModules(config))) {
      const module = `model.layers.${layer}.${path}`;
      const w = weights.get(`${module}.weight`);
      if (!w) continue;
      const n = int8Names(module);
      const scaleOut = new Float32Array(N);
      const scaleIn = new Float32Array(K);
      for (let o = 0; o < N; o++) {
        for (let i = 0; i < K; i++) {
          const v = Math.abs(w[o * K + i]);
          if (v > scaleOut[o]) scaleOut[o] = v;
          if (v > scaleIn[i]) scaleIn[i] = v;
        }
      }
      for (const s of [scaleOut, scaleIn]) for (let j = 0; j < s.length; j++) s[j] = s[j] > 0 ? s[j] / 127 : 1;
      const wT = new Int8Array(K * N);
      const wq = new Int8Array(N * K);
      for (let o = 0; o < N; o++) {
        for (let i = 0; i < K; i++) {
          const v = w[o * K + i];
          wT[i * N + o] = Math.round(v / scaleOut[o]);
          wq[o * K + i] = Math.round(v / scaleIn[i]);
        }
      }
      out.delete(`${module}.weight`);
      out.set(n.wT, wT).set(n.scaleOut, scaleOut).set(n.w, wq).set(n.scaleIn, scaleIn);
    }
  }
  return out;
}

/** The module path (within a layer) and the [in, out] sizes of one LoRA target, from the config's architecture. */
export function loraModule(config: ModelConfig, target: LoraTarget): { path: string; inFeatures: number; outFeatures: number } {
  return architectureOf(config).loraModules(config)[target];
}

/** A trainable tensor: its graph name and shape; for LoRA, its module (HF path) and factor. */
export interface TrainableSpec {
  name: string;
  shape: number[];
  module?: string;
  factor?: 'A' | 'B';
}

/** The LoRA tensors of an adapter on `targets` of every layer, in a fixed order (layer, target, A then B). */
export function loraTrainables(config: ModelConfig, lora: TrainedLoraShape): TrainableSpec[] {
  const out: TrainableSpec[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const target of lora.targets) {
      const { path, inFeatures, outFeatures } = loraModule(config, target);
      const module = `model.layers.${layer}.${path}`;
      out.push({ name: loraNames.a(0, module), shape: [lora.rank, inFeatures], module, factor: 'A' });
      out.push({ name: loraNames.b(0, module), shape: [outFeatures, lora.rank], module, factor: 'B' });
    }
  }
  return out;
}


/** log(1 + exp(x)), stable for large |x|. */
function softplus(x: Tensor): Tensor {
  return add(maximum(x, 0), log(add(exp(neg(abs(x))), 1)));
}

export type Objective = 'sft' | 'dpo' | 'grpo' | 'logprobs';

/**
 * What the backward keeps of the forward (activation checkpointing):
 * - 'attention': the residual stream between layers and the MLP's gate and up projections; the
 *   attention block (norm, q/k/v projections, scores, softmax) is recomputed from them as the
 *   gradient reaches each layer. The MLP's matmuls, most of a layer's work, are not redone.
 * - 'layers': only the residual stream between layers; each layer is recomputed whole (least
 *   memory, about one extra forward).
 * - 'off': every activation the backward reads is kept (fastest, most memory).
 */
export type CheckpointMode = 'attention' | 'layers' | 'off';

export interface TrainGraphOptions {
  config: ModelConfig;
  /** LoRA adapter; absent means full-parameter training (every weight trainable). */
  lora?: TrainedLoraShape;
  objective: Objective;
  /**
   * Preventative steering (docs/protocols.md §5) through the engine's steering hook: inputs steer_<layer> (coef * v)
   * and steer_mask_<layer> [B,T] (which positions) are added to the residual stream leaving the layer.
   */
  steering?: { layer: number; positions: SteerPositions };
  dpoBeta?: number;
  grpoClip?: number;
  grpoKl?: number;
  /** Row chunks of the fused loss head (more: less memory, a little more overhead). */
  lossChunks?: number;
  /**
   * How LoRA's frozen base projections compute: 'float32' (default) or 'int8' (weights quantized
   * per output channel, see int8Weights; activations and gradients quantized per tensor at run time).
   */
  baseWeights?: 'float32' | 'int8';
  /** Activation checkpointing (default 'attention'); see CheckpointMode. */
  checkpointing?: CheckpointMode;
}

export interface TrainGraph {
  graph: Graph;
  trainables: TrainableSpec[];
  /** Output names: 'loss' (summed), 'grad.<name>' per trainable, and objective extras. */
  outputs: string[];
}

/**
 * Inputs (B rows of T tokens): input_ids, position_ids [B,T] int64; attention_bias [B,1,rep*T,T]
 * (the engine's grouped-query layout, see segmentAttentionBias);
 * targets [B,T] int64 (next tokens); weights [B,T] (loss weight per target). Per objective:
 *  sft:  loss = sum(nll * weights)
 *  dpo:  rows [chosen(P); rejected(P)], ref_logp [2P], nll_weights [2P,T];
 *        loss = sum_p softplus(-beta * ((pc - rc) - (pr - rr))) + sum(nll * nll_weights); out logp [2P]
 *  grpo: advantages [B], old_logp [B,T] (or the current, detached, when absent: iterations = 1),
 *        ref_logp [B,T] when grpoKl > 0; loss = sum(weights * (-min(r A, clip(r) A) + kl * k3))
 *  logprobs: forward only, out token_logp [B,T] and logp [B] (sum over weights).
 * With LoRA, input lora_scale_0 [] is alpha / r for training and 0 for the frozen base (reference).
 */
export function buildTrainGraph(g: Graph, o: TrainGraphOptions): TrainGraph {
  const { config } = o;
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const positionIds = g.input('position_ids', 'int64', ['B', 'T']);
  const attentionBias = g.input('attention_bias', 'float32', ['B', 1, `${config.numHeads / config.numKvHeads}*T`, 'T']);
  const targets = g.input('targets', 'int64', ['B', 'T']);
  const weights = g.input('weights', 'float32', ['B', 'T']);
  const trainables = o.lora ? loraTrainables(config, o.lora) : [];
  const spec: EngineLoraSpec = { targets: Object.fromEntries(trainables.filter((t) => t.factor === 'A').map((t) => [t.module!, { rank: o.lora!.rank }])) };
  const dropout = o.lora?.dropout && o.objective !== 'logprobs' ? o.lora.dropout : 0;
  const base = o.lora && o.baseWeights === 'int8' ? int8Linear(g) : plainLinear(g);
  const linear = o.lora ? (dropout > 0 ? dropoutLoraLinear(g, spec, base) : loraLinear(g, [spec], base)) : base;
  const mode = o.checkpointing ?? 'attention';
  const checkpoints: Tensor[] = [];
  const architecture = architectureOf(config);
  // 'attention' keeps the MLP's gate and up projections: everything after them in the layer is cheap to recompute.
  const mlpInputs = ['gate', 'up'].map((t) => `.${architecture.loraModules(config)[t].path}`);
  const projection: Linear = (x, module, inFeatures, outFeatures, bias) => {
    const y = linear(x, module, inFeatures, outFeatures, bias);
    if (mode === 'attention' && mlpInputs.some((m) => module.endsWith(m))) checkpoints.push(y);
    return y;
  };
  const hook = o.steering
    ? buildHooks(g, { steer: [{ ...o.steering, vector: new Float32Array(config.hiddenSize), coef: 1 }] }, config.hiddenSize, ['B', 'T'])
    : undefined;
  const { hidden } = architecture.buildDecoder(g, config, { inputIds, positionIds, attentionBias }, projection, (layer, residual) => {
    const out = hook ? hook(layer, residual) : residual;
    checkpoints.push(out);
    return out;
  });
  // The vocabulary head and its cross-entropy fused in row chunks: only one chunk's softmax and
  // gradient over the vocabulary ever exist (the spike lost half its time and most of its
  // memory to a naive loss head). LoRA leaves the head frozen, so the forward also finishes the
  // head's backward matmul and keeps [N, d] rather than [N, V] (a logprobs pass needs neither).
  const headName = config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const head = g.params.get(headName) ?? g.param(headName, [config.vocabSize, config.hiddenSize]);
  const lce = linearCrossEntropy(reshape(hidden, [-1, config.hiddenSize]), head, reshape(targets, [-1]), {
    chunks: o.lossChunks ?? 8,
    frozenHead: o.lora !== undefined && o.objective !== 'logprobs',
  });
  checkpoints.push(...lce.kept);
  const nll = reshapeAs(lce.loss, targets); // [B, T]
  const tokenLogp = neg(nll);
  const seqLogp = reduceSum(mul(tokenLogp, weights), [1]); // [B]
  const outputs: string[] = [];
  const out = (name: string, t: Tensor) => {
    g.output(name, t);
    outputs.push(name);
  };

  let loss: Tensor;
  switch (o.objective) {
    case 'logprobs':
      out('token_logp', tokenLogp);
      out('logp', seqLogp);
      return { graph: g, trainables, outputs };
    case 'sft':
      loss = reduceSum(mul(nll, weights), [0, 1]);
      break;
    case 'dpo': {
      const refLogp = g.input('ref_logp', 'float32', ['B']);
      const nllWeights = g.input('nll_weights', 'float32', ['B', 'T']);
      const ratio = sub(seqLogp, refLogp); // [2P]: log pi/ref per row
      const pairs = reshape(ratio, [2, -1]); // [2, P]
      const chosen = reshape(slice(pairs, [0], [1], [0]), [-1]);
      const rejected = reshape(slice(pairs, [1], [2], [0]), [-1]);
      const margin = mul(sub(chosen, rejected), o.dpoBeta ?? 0.1);
      loss = add(reduceSum(softplus(neg(margin)), [0]), reduceSum(mul(nll, nllWeights), [0, 1]));
      out('logp', seqLogp);
      break;
    }
    case 'grpo': {
      const advantages = reshape(g.input('advantages', 'float32', ['B']), [-1, 1]);
      const eps = o.grpoClip ?? 0.2;
      const ratio = exp(sub(tokenLogp, stopGradient(tokenLogp)));
      const clipped = minimum(maximum(ratio, 1 - eps), 1 + eps);
      let perToken = neg(minimum(mul(ratio, advantages), mul(clipped, advantages)));
      if (o.grpoKl && o.grpoKl > 0) {
        const refLogp = g.input('ref_logp', 'float32', ['B', 'T']);
        const d = sub(refLogp, tokenLogp);
        const k3 = sub(sub(exp(d), d), 1); // unbiased, non-negative KL(pi || ref) estimate
        out('kl', reduceSum(mul(k3, weights), [0, 1]));
        perToken = add(perToken, mul(k3, o.grpoKl));
      }
      loss = reduceSum(mul(perToken, weights), [0, 1]);
      out('logp', seqLogp);
      break;
    }
  }
  const wrt = trainables.length > 0 ? trainables.map((t) => g.params.get(t.name)!) : [...g.params.values()];
  if (!o.lora) for (const p of wrt) trainables.push({ name: p.name!, shape: p.shape as number[] });
  out('loss', loss);
  grad(loss, wrt, { checkpoints: mode === 'off' ? undefined : checkpoints }).forEach((d, i) => out(`grad.${trainables[i].name}`, d));
  return { graph: g, trainables, outputs };
}

/**
 * Additive attention bias in the engine's layout [B,1,rep*T,T] from segment ids (0 = padding):
 * causal within a segment (and within the sliding window, if any), so packed sequences never see
 * each other. A padding position attends to itself only, keeping softmax finite.
 */
export function segmentAttentionBias(segments: BigInt64Array, rows: number, length: number, rep: number, window: number | null = null): Float32Array {
  const T = length;
  return groupedAttentionBias(rows, T, T, rep, (b, q, k) => {
    if (k > q || (window !== null && q - k >= window)) return false;
    const sq = segments[b * T + q];
    return k === q || (sq !== 0n && segments[b * T + k] === sq);
  });
}

/** The graph inputs of a padded batch (see data.ts makeBatch). */
export function batchFeeds(batch: Batch, rep: number, window: number | null): Record<string, Feed> {
  const { rows: B, length: T } = batch;
  return {
    input_ids: { data: batch.inputIds, dims: [B, T] },
    position_ids: { data: batch.positions, dims: [B, T] },
    attention_bias: { data: segmentAttentionBias(batch.segments, B, T, rep, window), dims: [B, 1, rep * T, T] },
    targets: { data: batch.targets, dims: [B, T] },
    weights: { data: batch.weights, dims: [B, T] },
  };
}
