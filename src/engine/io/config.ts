/**
 * Hugging Face `config.json` -> one normalized `ModelConfig` that every architecture file builds on.
 * Families differ only in the flags recorded here (biases, q/k norm, rope layers, sliding window),
 * so a model file reads the config and never the raw JSON.
 */
import { z } from 'zod';
import { InputError } from '../../core/errors.js';
import { readStructured, validate } from '../../core/load.js';
import { ARCHITECTURES, familyOf } from '../models/index.js';

/** A family of the engine's architecture registry (src/engine/models/index.ts): llama, mistral, qwen2, qwen3, smollm3, ... */
export type ArchitectureFamily = string;

/** RoPE frequency scaling: none, linear position interpolation, or Llama-3's piecewise scaling. */
export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface ModelConfig {
  family: ArchitectureFamily;
  /** HF class name, e.g. `LlamaForCausalLM`. */
  architecture: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Key/value heads (GQA); equals numHeads for plain multi-head attention. */
  numKvHeads: number;
  /** Per-head size; HF's `head_dim` when given (Qwen3), else hiddenSize / numHeads. */
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  /** Per layer: whether RoPE is applied (false only on SmolLM3's NoPE layers). */
  ropeLayers: boolean[];
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Bias on q_proj, k_proj, v_proj (Qwen2: always; Llama/Qwen3: `attention_bias`). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama/Qwen3 `attention_bias`; never in Qwen2). */
  oBias: boolean;
  /** Bias on gate/up/down_proj (Llama `mlp_bias`). */
  mlpBias: boolean;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  /** Hidden activation of the gated MLP; every supported family uses SiLU. */
  hiddenAct: 'silu';
  /** Sliding attention window in tokens when the checkpoint uses one (Mistral), else null. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  /** All end-of-sequence ids (HF allows a single id or a list). */
  eosTokenIds: number[];
  padTokenId: number | null;
  /** Storage dtype the checkpoint declares (`torch_dtype` / `dtype`), e.g. `bfloat16`; null if absent. */
  torchDtype: string | null;
}

const tokenId = z.number().int().nonnegative().nullable().optional();
const ropeScalingSchema = z
  .object({
    type: z.string().optional(),
    rope_type: z.string().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().positive().optional(),
    high_freq_factor: z.number().positive().optional(),
    original_max_position_embeddings: z.number().int().positive().optional(),
    rope_theta: z.number().positive().optional(),
  })
  .loose();

/** The fields of config.json the engine reads; everything else passes through untouched. */
export const hfConfigSchema = z
  .object({
    architectures: z.array(z.string()).min(1).optional(),
    model_type: z.string().optional(),
    hidden_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive().nullable().optional(),
    head_dim: z.number().int().positive().nullable().optional(),
    intermediate_size: z.number().int().positive(),
    vocab_size: z.number().int().positive(),
    rms_norm_eps: z.number().positive().optional(),
    rope_theta: z.number().positive().optional(),
    rope_scaling: ropeScalingSchema.nullable().optional(),
    /** transformers >= 5 keeps rope_theta and the scaling here. */
    rope_parameters: ropeScalingSchema.nullable().optional(),
    max_position_embeddings: z.number().int().positive().optional(),
    tie_word_embeddings: z.boolean().optional(),
    attention_bias: z.boolean().optional(),
    mlp_bias: z.boolean().optional(),
    hidden_act: z.string().optional(),
    sliding_window: z.number().int().positive().nullable().optional(),
    use_sliding_window: z.boolean().optional(),
    no_rope_layers: z.array(z.number().int().min(0).max(1)).nullable().optional(),
    no_rope_layer_interval: z.number().int().positive().optional(),
    bos_token_id: tokenId,
    eos_token_id: z.union([tokenId, z.array(z.number().int().nonnegative())]),
    pad_token_id: tokenId,
    torch_dtype: z.string().nullable().optional(),
    dtype: z.string().nullable().optional(),
  })
  .loose();
export type HfConfig = z.infer<typeof hfConfigSchema>;

/** Reads `<dir>/config.json` (or the given file) into a ModelConfig. */
export function loadModelConfig(fileOrDir: string): ModelConfig {
  const file = fileOrDir.endsWith('.json') ? fileOrDir : `${fileOrDir.replace(/\/$/, '')}/config.json`;
  return parseModelConfig(readStructured(file), file);
}

/** Normalizes a parsed config.json; `file` names the source in errors. */
export function parseModelConfig(raw: unknown, file = 'config.json'): ModelConfig {
  const hf = validate(file, raw, hfConfigSchema);
  const architecture = hf.architectures?.[0] ?? '';
  const family = familyOf(architecture, hf.model_type);
  if (!family) {
    const found = architecture || hf.model_type || '(none)';
    const known = Object.values(ARCHITECTURES);
    throw new InputError(
      file,
      hf.architectures ? 'architectures' : 'model_type',
      `unsupported architecture ${found}; supported: ${known.map((a) => a.hfClass).join(', ')} (model_type ${known.map((a) => a.modelType).join(', ')})`,
    );
  }
  const hiddenAct = hf.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu') throw new InputError(file, 'hidden_act', `"silu" (found "${hiddenAct}")`);

  const numHeads = hf.num_attention_heads;
  const numKvHeads = hf.num_key_value_heads ?? numHeads;
  if (numHeads % numKvHeads !== 0) {
    throw new InputError(file, 'num_key_value_heads', `a divisor of num_attention_heads ${numHeads} (found ${numKvHeads})`);
  }
  const headDim = hf.head_dim ?? hf.hidden_size / numHeads;
  if (!Number.isInteger(headDim)) {
    throw new InputError(file, 'head_dim', `hidden_size ${hf.hidden_size} divisible by num_attention_heads ${numHeads}, or an explicit head_dim`);
  }
  if (headDim % 2 !== 0) throw new InputError(file, 'head_dim', `an even head size for RoPE (found ${headDim})`);

  const ropeParams = hf.rope_parameters ?? undefined;
  const ropeTheta = hf.rope_theta ?? ropeParams?.rope_theta ?? 10000;
  const ropeScaling = parseRopeScaling(hf.rope_scaling ?? ropeParams ?? null, file, hf.rope_scaling ? 'rope_scaling' : 'rope_parameters');

  const numLayers = hf.num_hidden_layers;
  let ropeLayers = Array.from({ length: numLayers }, () => true);
  if (family === 'smollm3') {
    const interval = hf.no_rope_layer_interval ?? 4;
    // HF: no_rope_layers[i] == 1 means layer i *uses* RoPE; default drops it on every `interval`-th layer.
    const flags = hf.no_rope_layers ?? ropeLayers.map((_, i) => ((i + 1) % interval !== 0 ? 1 : 0));
    if (flags.length !== numLayers) {
      throw new InputError(file, 'no_rope_layers', `${numLayers} entries, one per layer (found ${flags.length})`);
    }
    ropeLayers = flags.map((f) => f === 1);
  }

  // Qwen2/Qwen3 record a window but only use it when use_sliding_window is set; Mistral always does.
  const windowed = family === 'mistral' || hf.use_sliding_window === true;
  const slidingWindow = windowed ? (hf.sliding_window ?? null) : null;

  const eos = hf.eos_token_id;
  return {
    family,
    architecture: architecture || `${family}`,
    hiddenSize: hf.hidden_size,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: hf.intermediate_size,
    vocabSize: hf.vocab_size,
    rmsNormEps: hf.rms_norm_eps ?? 1e-6,
    ropeTheta,
    ropeScaling,
    ropeLayers,
    maxPositionEmbeddings: hf.max_position_embeddings ?? 2048,
    tieWordEmbeddings: hf.tie_word_embeddings ?? family === 'smollm3', // transformers' per-family defaults
    qkvBias: family === 'qwen2' ? true : (hf.attention_bias ?? false),
    oBias: family === 'qwen2' ? false : (hf.attention_bias ?? false),
    mlpBias: hf.mlp_bias ?? false,
    qkNorm: family === 'qwen3',
    hiddenAct: 'silu',
    slidingWindow,
    bosTokenId: hf.bos_token_id ?? null,
    eosTokenIds: eos == null ? [] : Array.isArray(eos) ? eos : [eos],
    padTokenId: hf.pad_token_id ?? null,
    torchDtype: hf.torch_dtype ?? hf.dtype ?? null,
  };
}

function parseRopeScaling(raw: z.infer<typeof ropeScalingSchema> | null, file: string, field: string): RopeScaling {
  if (!raw) return { type: 'none' };
  const kind = raw.rope_type ?? raw.type ?? 'default';
  const need = (value: number | undefined, key: string): number => {
    if (value === undefined) throw new InputError(file, `${field}.${key}`, `a positive number for rope type "${kind}"`);
    return value;
  };
  switch (kind) {
    case 'default':
      return { type: 'none' };
    case 'linear':
      return { type: 'linear', factor: need(raw.factor, 'factor') };
    case 'llama3':
      return {
        type: 'llama3',
        factor: need(raw.factor, 'factor'),
        lowFreqFactor: need(raw.low_freq_factor, 'low_freq_factor'),
        highFreqFactor: need(raw.high_freq_factor, 'high_freq_factor'),
        originalMaxPositionEmbeddings: need(raw.original_max_position_embeddings, 'original_max_position_embeddings'),
      };
    default:
      throw new InputError(file, `${field}.rope_type`, `one of default, linear, llama3 (found "${kind}")`);
  }
}
