/**
 * The engine's peak memory for a training run, estimated from the model's config and the run's
 * options before anything loads, so a run that cannot fit is refused up front (naming the `trl`
 * backend) instead of dying mid-way after the data stage has spent its API calls.
 *
 * The estimate is deliberately conservative (it counts every copy the engine keeps):
 * - the base weights as the engine loads them: float32, except that an int8 base is quantized as it is
 *   read and streamed to the session's data file, so only the embeddings, head and norms are ever
 *   float32; plus the training session's own copy of the frozen weights (float32; with baseWeights
 *   int8, 3 bytes per projection weight: its two int8 copies packed for ORT's GEMM, and the mapped
 *   data file's pages while they are packed; a 2.4B Llama peaked at 5.9 GiB, estimated 7.7 GiB);
 * - trainable tensors four times over (value, gradient, AdamW's two moments) plus the accumulator;
 * - activations of one micro-batch: per layer what the backward keeps (checkpointing mode), one
 *   layer's full working set being recomputed, and the logits with their softmax and gradient;
 * - DPO runs chosen and rejected rows together (x2); GRPO scores batchSize x groupSize completions.
 */
import { freemem, totalmem } from 'node:os';
import { InputError } from '../core/errors.js';
import type { ModelConfig } from '../engine/io/config.js';
import type { CheckpointMode } from './graph.js';
import type { LoraTarget } from './options.js';

export interface MemoryShape {
  objective: 'sft' | 'dpo' | 'grpo';
  lora: { rank: number; targets: readonly LoraTarget[] };
  fullParameter: boolean;
  activationCheckpointing?: CheckpointMode;
  baseWeights?: 'float32' | 'int8';
  batchSize: number;
  maxLength: number;
  /** GRPO: completions per prompt. */
  groupSize?: number;
}

export interface MemoryEstimate {
  /** Base weights loaded by the engine as float32 (with baseWeights int8: all but the projections). */
  weights: number;
  /** The training session's copy of the frozen weights. */
  frozen: number;
  /** Trainable tensors with gradients, optimizer moments and the accumulator. */
  trainable: number;
  /** Activations of one micro-batch, logits included. */
  activations: number;
  total: number;
}

/** Parameters of each projection LoRA can adapt: [in, out] features. */
function projectionShapes(c: ModelConfig): Record<LoraTarget, [number, number]> {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  return {
    q: [c.hiddenSize, q],
    k: [c.hiddenSize, kv],
    v: [c.hiddenSize, kv],
    o: [q, c.hiddenSize],
    gate: [c.hiddenSize, c.intermediateSize],
    up: [c.hiddenSize, c.intermediateSize],
    down: [c.intermediateSize, c.hiddenSize],
  };
}

/** Parameter count of a config (embeddings, projections, norms, an untied head). */
export function parameterCount(c: ModelConfig): number {
  const perLayer = Object.values(projectionShapes(c)).reduce((s, [i, o]) => s + i * o, 0) + 2 * c.hiddenSize;
  return c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2) + c.numLayers * perLayer + c.hiddenSize;
}

export function estimateTrainMemory(c: ModelConfig, s: MemoryShape): MemoryEstimate {
  const params = parameterCount(c);
  const shapes = projectionShapes(c);
  const projections = c.numLayers * Object.values(shapes).reduce((sum, [i, o]) => sum + i * o, 0);
  const int8 = s.baseWeights === 'int8' && !s.fullParameter;
  const weights = 4 * (int8 ? params - projections : params);
  const frozen = s.fullParameter ? 0 : (int8 ? 3 : 4) * projections + 4 * (params - projections);
  const trainableCount = s.fullParameter ? params : c.numLayers * s.lora.targets.reduce((sum, t) => sum + s.lora.rank * (shapes[t][0] + shapes[t][1]), 0);
  const trainable = 5 * 4 * trainableCount;
  const rows = s.batchSize * (s.objective === 'dpo' ? 2 : s.objective === 'grpo' ? (s.groupSize ?? 1) : 1);
  const tokens = rows * s.maxLength;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  // one layer's full working set: norms, q/k/v/o, the attention matrix, the gated MLP, LoRA middles
  const attention = rows * c.numHeads * s.maxLength * s.maxLength;
  const layerAll = tokens * (4 * c.hiddenSize + 2 * q + 2 * kv + 3 * c.intermediateSize + 2 * s.lora.rank * s.lora.targets.length) + 2 * attention;
  const kept = { off: layerAll, attention: tokens * (2 * c.hiddenSize + 3 * c.intermediateSize), layers: tokens * c.hiddenSize }[s.activationCheckpointing ?? 'attention'];
  const logits = 3 * tokens * c.vocabSize;
  const activations = 4 * (c.numLayers * kept + 2 * layerAll + logits);
  return { weights, frozen, trainable, activations, total: weights + frozen + trainable + activations };
}

const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(1)} GiB`;

/** The memory a run may use: PERSONA_LAB_TRAIN_MEMORY (GiB) when set, else total memory less what others use. */
export function availableTrainMemory(env: NodeJS.ProcessEnv = process.env): number {
  const set = env.PERSONA_LAB_TRAIN_MEMORY;
  if (set !== undefined && set !== '') {
    const n = Number(set);
    if (!(n > 0)) throw new InputError('PERSONA_LAB_TRAIN_MEMORY', '', 'a positive number of GiB');
    return n * GiB;
  }
  // free memory plus what this process already holds: the base weights may already be loaded
  return Math.min(totalmem(), freemem() + process.memoryUsage().rss);
}

/**
 * Refuses (InputError naming `where`) a run whose estimated peak exceeds `available` bytes, naming
 * what would make it fit and the `trl` backend for models the engine cannot train here.
 */
export function checkTrainMemory(c: ModelConfig, s: MemoryShape, where: string, available = availableTrainMemory()): MemoryEstimate {
  const e = estimateTrainMemory(c, s);
  if (e.total > available) {
    const parts = `weights ${gib(e.weights)} + frozen copy ${gib(e.frozen)} + trainable ${gib(e.trainable)} + activations ${gib(e.activations)}`;
    throw new InputError(
      where,
      `${s.objective}`,
      `a run that fits in memory: the engine needs about ${gib(e.total)} (${parts}) but ${gib(available)} is available. ` +
        `Lower batchSize or maxLength, set activationCheckpointing: layers or baseWeights: int8, or train on GPUs with train.backend: trl (persona-lab setup trl)`,
    );
  }
  return e;
}
