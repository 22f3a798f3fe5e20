/**
 * The Llama family as a graph, top to bottom: Llama 1-3 (incl. Llama-3 RoPE scaling), SmolLM2,
 * Mistral (sliding window, via the attention bias the caller builds), Qwen2 (q/k/v bias),
 * Qwen3 (per-head q/k RMSNorm before RoPE) and SmolLM3 (layers without RoPE). They differ only in the
 * flags of ModelConfig, so one file reads better than five near-copies.
 *
 * Shapes: B batch, T new tokens, P cached tokens (a fixed-capacity cache the caller fills and masks).
 * Weights keep their checkpoint names and layouts; projections are `linear` (x @ W^T, one fused node).
 * Attention groups query heads by their KV head ([B, KV, rep*T, D]) instead of repeating K/V, and
 * scores the cache and the new tokens separately so the cache is never concatenated or copied.
 */
import type { ModelConfig } from '../io/config.js';
import type { ExpectedTensor } from '../io/shapes.js';
import {
  END,
  type Graph,
  type OpDef,
  apply1,
  type Tensor,
  add,
  cast,
  concat,
  cos,
  expand,
  gather,
  linear,
  matmul,
  mul,
  reshape,
  rmsNorm,
  swiglu,
  sin,
  slice,
  softmax,
  transpose,
  unsqueeze,
} from '../graph/index.js';

/** How a projection is computed: plain `x @ W (+ b)`, or with LoRA deltas added (src/engine/lora/). */
export type Linear = (x: Tensor, module: string, inFeatures: number, outFeatures: number, bias: boolean) => Tensor;

/** A change to the residual stream leaving a layer (steering, capping, capture: src/engine/hooks/). */
export type LayerHook = (layer: number, residual: Tensor) => Tensor;

export interface DecoderInputs {
  /** int64 [B, T] */
  inputIds: Tensor;
  /** int64 [B, T]: each token's position among the real tokens of its row (left padding skipped). */
  positionIds: Tensor;
  /**
   * float32 [B, 1, rep*T, P+T] (rep = heads per KV head; rows are T query positions repeated rep
   * times): 0 where a query may attend, -1e9 where not (padding, the future, outside a window).
   */
  attentionBias: Tensor;
  /**
   * RoPE tables [positions, D/2] (ropeTables() computes them) for ORT's fused RotaryEmbedding: cos and
   * sin for keys, and the same times 1/sqrt(D) for queries. Absent: RoPE is composed of primitive
   * ops (differentiable, for training graphs).
   */
  rope?: { cosQ: Tensor; sinQ: Tensor; cosK: Tensor; sinK: Tensor };
  /** Per layer, keys [B, KV, D, P] (transposed) and values [B, KV, P, D]; absent without a cache. */
  pastKeys?: Tensor[];
  pastValues?: Tensor[];
}

export interface DecoderOutputs {
  /** The final RMSNorm'ed hidden states, [B, T, hidden]. */
  hidden: Tensor;
  /** Per layer: this step's keys [B, KV, D, T] and values [B, KV, T, D] for the caller's cache. */
  keys: Tensor[];
  values: Tensor[];
}

/** The plain projection x @ W^T (+ b), W a param named and shaped as in the checkpoint ([out, in]). */
export function plainLinear(g: Graph): Linear {
  return (x, module, inFeatures, outFeatures, bias) =>
    linear(x, g.param(`${module}.weight`, [outFeatures, inFeatures]), bias ? g.param(`${module}.bias`, [outFeatures]) : undefined);
}

/** RMSNorm over the last axis (HF: w * x / sqrt(mean(x^2) + eps), in f32). */
function norm(g: Graph, x: Tensor, weight: string, size: number, eps: number): Tensor {
  return rmsNorm(x, g.param(weight, [size]), eps);
}

/** RoPE inverse frequencies exactly as transformers computes them (incl. Llama-3 scaling). */
export function ropeInvFreq(config: ModelConfig): Float32Array {
  const half = config.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    // transformers: base ** (arange(0, dim, 2).float() / dim), in f32
    const exponent = Math.fround((2 * i) / config.headDim);
    inv[i] = Math.fround(1 / Math.fround(config.ropeTheta ** exponent));
  }
  const s = config.ropeScaling;
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  if (s.type !== 'llama3') return inv;
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f;
    if (wavelen > lowFreqWavelen) return f / s.factor;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/**
 * rotate_half as a constant [D, D] matrix (x @ R = cat(-x2, x1)): one MatMul instead of
 * Split/Neg/Concat, exact in f32 since each output sums one +-1 term.
 */
function rotateHalfMatrix(g: Graph, d: number): Tensor {
  const r = new Float32Array(d * d);
  const h = d / 2;
  for (let i = 0; i < h; i++) {
    r[(i + h) * d + i] = -1; // out[i] = -x[i + h]
    r[i * d + i + h] = 1; // out[i + h] = x[i]
  }
  return g.constant(r, [d, d]);
}

/**
 * cos and sin [B, T, 1, D] for the given positions (HF: emb = cat(freqs, freqs)), once for keys and
 * once pre-multiplied by the attention scale 1/sqrt(D) for queries (saving a Mul per layer).
 */
function rotary(g: Graph, config: ModelConfig, positionIds: Tensor) {
  const inv = ropeInvFreq(config);
  const both = new Float32Array(config.headDim);
  both.set(inv, 0);
  both.set(inv, inv.length);
  const freqs = mul(unsqueeze(cast(positionIds, 'float32'), [2, 3]), g.constant(both, [config.headDim]));
  const scale = 1 / Math.sqrt(config.headDim);
  const key = { cos: cos(freqs), sin: sin(freqs) };
  return { key, query: { cos: mul(key.cos, scale), sin: mul(key.sin, scale) } };
}

export interface RopeTables {
  cosQ: Float32Array;
  sinQ: Float32Array;
  cosK: Float32Array;
  sinK: Float32Array;
}

/** The tables the fused path reads: [positions, D/2] each, in f32 as transformers computes them. */
export function ropeTables(config: ModelConfig, positions: number): RopeTables {
  const inv = ropeInvFreq(config);
  const half = inv.length;
  const scale = Math.fround(1 / Math.sqrt(config.headDim));
  const n = positions * half;
  const t: RopeTables = { cosQ: new Float32Array(n), sinQ: new Float32Array(n), cosK: new Float32Array(n), sinK: new Float32Array(n) };
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const f = Math.fround(p * inv[i]);
      const c = Math.fround(Math.cos(f));
      const s = Math.fround(Math.sin(f));
      t.cosK[p * half + i] = c;
      t.sinK[p * half + i] = s;
      t.cosQ[p * half + i] = c * scale;
      t.sinQ[p * half + i] = s * scale;
    }
  }
  return t;
}

/** ORT's RotaryEmbedding (com.microsoft), non-interleaved (rotate_half), on [B, T, heads * D]. Inference only. */
const RotaryEmbedding: OpDef<{ heads: number }> = {
  type: 'RotaryEmbedding',
  shape: ([x]) => [{ dtype: x.dtype, shape: [...x.shape] }],
  onnx: (ctx, ins, outs, { attrs }) =>
    ctx.emit('RotaryEmbedding', ins, outs, { num_heads: { i: attrs.heads }, interleaved: { i: 0 } }, 'com.microsoft'),
};

/**
 * A projection [B, T, heads * D] as heads [B, T, heads, D], with the per-head RMSNorm (Qwen3) and
 * RoPE where the layer has them; queries also take the 1/sqrt(D) attention scale.
 */
function toHeads(
  g: Graph,
  config: ModelConfig,
  x: Tensor,
  heads: number,
  side: 'query' | 'key',
  layer: number,
  inputs: DecoderInputs,
  composed: { cos: Tensor; sin: Tensor; rot: Tensor } | null,
): Tensor {
  const D = config.headDim;
  const split = (t: Tensor) => reshape(t, [0, 0, heads, D]);
  if (config.qkNorm) x = norm(g, split(x), `model.layers.${layer}.self_attn.${side === 'query' ? 'q' : 'k'}_norm.weight`, D, config.rmsNormEps);
  if (!config.ropeLayers[layer]) return side === 'query' ? mul(split(x), 1 / Math.sqrt(D)) : split(x);
  if (inputs.rope) {
    const [c, s] = side === 'query' ? [inputs.rope.cosQ, inputs.rope.sinQ] : [inputs.rope.cosK, inputs.rope.sinK];
    const flat = config.qkNorm ? reshape(x, [0, 0, heads * D]) : x;
    return split(apply1(RotaryEmbedding, [flat, inputs.positionIds, c, s], { heads }));
  }
  const x4 = config.qkNorm ? x : split(x);
  return add(mul(x4, composed!.cos), mul(matmul(x4, composed!.rot), composed!.sin));
}

/** The decoder: embeddings, layers, final norm. The caller adds the head it needs. */
export function buildDecoder(
  g: Graph,
  config: ModelConfig,
  inputs: DecoderInputs,
  project: Linear = plainLinear(g),
  afterLayer?: LayerHook,
): DecoderOutputs {
  const { hiddenSize: d, numHeads: H, numKvHeads: KV, headDim: D, intermediateSize: ff, rmsNormEps: eps } = config;
  const composed = inputs.rope ? null : { rot: rotateHalfMatrix(g, D), ...rotary(g, config, inputs.positionIds) };

  let x = gather(g.param('model.embed_tokens.weight', [config.vocabSize, d]), inputs.inputIds);
  const keys: Tensor[] = [];
  const values: Tensor[] = [];
  // [B, 1, rep*T, P+T] -> [B, KV, rep*T, P+T] once: ORT's Add broadcasting over the KV axis took
  // ~4x a same-shape Add, in every layer (and again in the backward)
  const attentionBias = KV > 1 ? expand(inputs.attentionBias, [1, KV, 1, 1]) : inputs.attentionBias;
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    // ---- attention
    const h = norm(g, x, `${p}.input_layernorm.weight`, d, eps);
    const qp = project(h, `${p}.self_attn.q_proj`, d, H * D, config.qkvBias);
    const kp = project(h, `${p}.self_attn.k_proj`, d, KV * D, config.qkvBias);
    const q = toHeads(g, config, qp, H, 'query', i, inputs, composed && { rot: composed.rot, ...composed.query }); // [B, T, H, D]
    const k = toHeads(g, config, kp, KV, 'key', i, inputs, composed && { rot: composed.rot, ...composed.key });
    const v = transpose(reshape(project(h, `${p}.self_attn.v_proj`, d, KV * D, config.qkvBias), [0, 0, KV, D]), [0, 2, 1, 3]);
    const kT = transpose(k, [0, 2, 3, 1]); // [B, KV, D, T]: the cache keeps keys transposed
    keys.push(kT);
    values.push(v);
    // query head h uses KV head floor(h / rep): group the queries as [B, KV, rep*T, D]
    const qg = reshape(transpose(q, [0, 2, 1, 3]), [0, KV, -1, D]);
    const pastK = inputs.pastKeys?.[i];
    const pastV = inputs.pastValues?.[i];
    const newScores = matmul(qg, kT); // [B, KV, rep*T, T]
    const scores = pastK ? concat([matmul(qg, pastK), newScores], -1) : newScores;
    const probs = softmax(add(scores, attentionBias), -1); // [B, KV, rep*T, P+T]
    const attn =
      pastK && pastV
        ? add(matmul(slice(probs, [0], [pastK.shape[3]], [3]), pastV), matmul(slice(probs, [pastK.shape[3]], [END], [3]), v))
        : matmul(probs, v);
    // [B, KV, rep*T, D] -> [B, H, T, D] -> [B, T, H*D]
    const merged = reshape(transpose(reshape(attn, [0, H, -1, D]), [0, 2, 1, 3]), [0, 0, H * D]);
    x = add(x, project(merged, `${p}.self_attn.o_proj`, H * D, d, config.oBias));
    // ---- MLP: down(silu(gate(x)) * up(x))
    const m = norm(g, x, `${p}.post_attention_layernorm.weight`, d, eps);
    const gate = project(m, `${p}.mlp.gate_proj`, d, ff, config.mlpBias);
    const up = project(m, `${p}.mlp.up_proj`, d, ff, config.mlpBias);
    x = add(x, project(swiglu(gate, up), `${p}.mlp.down_proj`, ff, d, config.mlpBias));
    if (afterLayer) x = afterLayer(i, x);
  }
  return { hidden: norm(g, x, 'model.norm.weight', d, eps), keys, values };
}

/** Logits over the vocabulary for the given final hidden states (tied: the embedding matrix). */
export function lmHead(g: Graph, config: ModelConfig, hidden: Tensor): Tensor {
  const name = config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  return linear(hidden, g.params.get(name) ?? g.param(name, [config.vocabSize, config.hiddenSize]));
}

/** The family's checkpoint: Hugging Face tensor name -> shape ([out, in] for linear weights, as PyTorch stores them). */
export function weightShapes(config: ModelConfig): Map<string, ExpectedTensor> {
  const { hiddenSize: d, headDim, numHeads, numKvHeads, intermediateSize: ff, vocabSize } = config;
  const q = numHeads * headDim;
  const kv = numKvHeads * headDim;
  const out = new Map<string, ExpectedTensor>();
  const put = (name: string, shape: number[], optional = false) => out.set(name, optional ? { shape, optional } : { shape });
  put('model.embed_tokens.weight', [vocabSize, d]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    put(`${p}.input_layernorm.weight`, [d]);
    put(`${p}.self_attn.q_proj.weight`, [q, d]);
    put(`${p}.self_attn.k_proj.weight`, [kv, d]);
    put(`${p}.self_attn.v_proj.weight`, [kv, d]);
    put(`${p}.self_attn.o_proj.weight`, [d, q]);
    if (config.qkvBias) {
      put(`${p}.self_attn.q_proj.bias`, [q]);
      put(`${p}.self_attn.k_proj.bias`, [kv]);
      put(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    if (config.oBias) put(`${p}.self_attn.o_proj.bias`, [d]);
    if (config.qkNorm) {
      put(`${p}.self_attn.q_norm.weight`, [headDim]);
      put(`${p}.self_attn.k_norm.weight`, [headDim]);
    }
    put(`${p}.post_attention_layernorm.weight`, [d]);
    put(`${p}.mlp.gate_proj.weight`, [ff, d]);
    put(`${p}.mlp.up_proj.weight`, [ff, d]);
    put(`${p}.mlp.down_proj.weight`, [d, ff]);
    if (config.mlpBias) {
      put(`${p}.mlp.gate_proj.bias`, [ff]);
      put(`${p}.mlp.up_proj.bias`, [ff]);
      put(`${p}.mlp.down_proj.bias`, [d]);
    }
  }
  put('model.norm.weight', [d]);
  put('lm_head.weight', [vocabSize, d], config.tieWordEmbeddings);
  return out;
}

/** The projections LoRA can adapt: short target name -> module path within a layer, and its [in, out] sizes. */
export function loraModules(config: ModelConfig): Record<string, { path: string; inFeatures: number; outFeatures: number }> {
  const { hiddenSize: d, numHeads: H, numKvHeads: KV, headDim: D, intermediateSize: ff } = config;
  const m = (path: string, inFeatures: number, outFeatures: number) => ({ path, inFeatures, outFeatures });
  return {
    q: m('self_attn.q_proj', d, H * D),
    k: m('self_attn.k_proj', d, KV * D),
    v: m('self_attn.v_proj', d, KV * D),
    o: m('self_attn.o_proj', H * D, d),
    gate: m('mlp.gate_proj', d, ff),
    up: m('mlp.up_proj', d, ff),
    down: m('mlp.down_proj', ff, d),
  };
}

/** Hugging Face tensor name -> llama.cpp tensor name: the one table the GGUF writer and reader share. */
export { ggufTensorName } from '../io/gguf-names.js';
