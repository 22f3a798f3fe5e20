/**
 * Test support: tiny random Llama-family weights and a naive float64 forward pass with Hugging Face
 * semantics (rotate-half RoPE, GQA, RMSNorm, SwiGLU, optional q/k/v bias and q/k norm). It is the
 * independent reference the GGUF tests hold llama.cpp to; the engine has its own PyTorch parity tests.
 */
import { expectedTensorShapes, type ModelConfig } from '../../../src/engine/io/index.js';

/** Deterministic weights in [-scale, scale]; norms near 1. */
export function tinyRandomWeights(config: ModelConfig, seed = 1, scale = 0.15): Map<string, Float32Array> {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const weights = new Map<string, Float32Array>();
  for (const [name, { shape, optional }] of expectedTensorShapes(config)) {
    if (optional) continue;
    const n = shape.reduce((a, b) => a * b, 1);
    weights.set(name, Float32Array.from({ length: n }, () => (name.includes('norm') ? 1 + 0.1 * rand() : scale * rand())));
  }
  return weights;
}

function matVec(w: Float32Array, x: Float64Array, rows: number, cols: number, bias?: Float32Array): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = bias ? bias[r] : 0;
    for (let c = 0; c < cols; c++) acc += w[r * cols + c] * x[c];
    out[r] = acc;
  }
  return out;
}

function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
  const inv = 1 / Math.sqrt(ms + eps);
  return x.map((v, i) => v * inv * w[i]);
}

/** HF rotate-half RoPE on one head (pairs i and i + d/2), in place. */
function rope(v: Float64Array, offset: number, d: number, pos: number, theta: number): void {
  for (let i = 0; i < d / 2; i++) {
    const angle = pos * theta ** ((-2 * i) / d);
    const [c, s] = [Math.cos(angle), Math.sin(angle)];
    const [a, b] = [v[offset + i], v[offset + i + d / 2]];
    v[offset + i] = a * c - b * s;
    v[offset + i + d / 2] = b * c + a * s;
  }
}

/** Logits for every position of `ids` (no rope scaling: tests use none). */
export function referenceLogits(config: ModelConfig, w: Map<string, Float32Array>, ids: number[]): Float64Array[] {
  const { hiddenSize: D, numHeads: H, numKvHeads: KV, headDim: hd, intermediateSize: F, vocabSize: V, rmsNormEps: eps } = config;
  const get = (name: string) => {
    const t = w.get(name);
    if (!t) throw new Error(`missing ${name}`);
    return t;
  };
  const embed = get('model.embed_tokens.weight');
  const xs = ids.map((id) => Float64Array.from(embed.subarray(id * D, (id + 1) * D)));
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    const bias = (n: string) => (config.qkvBias ? get(`${p}.self_attn.${n}.bias`) : undefined);
    const qs: Float64Array[] = [];
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    xs.forEach((x, pos) => {
      const h = rmsNorm(x, get(`${p}.input_layernorm.weight`), eps);
      const q = matVec(get(`${p}.self_attn.q_proj.weight`), h, H * hd, D, bias('q_proj'));
      const k = matVec(get(`${p}.self_attn.k_proj.weight`), h, KV * hd, D, bias('k_proj'));
      const v = matVec(get(`${p}.self_attn.v_proj.weight`), h, KV * hd, D, bias('v_proj'));
      for (let head = 0; head < H; head++) {
        if (config.qkNorm) q.set(rmsNorm(q.subarray(head * hd, (head + 1) * hd), get(`${p}.self_attn.q_norm.weight`), eps), head * hd);
        rope(q, head * hd, hd, pos, config.ropeTheta);
      }
      for (let head = 0; head < KV; head++) {
        if (config.qkNorm) k.set(rmsNorm(k.subarray(head * hd, (head + 1) * hd), get(`${p}.self_attn.k_norm.weight`), eps), head * hd);
        rope(k, head * hd, hd, pos, config.ropeTheta);
      }
      qs.push(q);
      ks.push(k);
      vs.push(v);
    });
    xs.forEach((x, pos) => {
      const attn = new Float64Array(H * hd);
      for (let head = 0; head < H; head++) {
        const kvHead = Math.floor(head / (H / KV));
        const scores = Array.from({ length: pos + 1 }, (_, t) => {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qs[pos][head * hd + i] * ks[t][kvHead * hd + i];
          return dot / Math.sqrt(hd);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((a, b) => a + b, 0);
        for (let t = 0; t <= pos; t++) for (let i = 0; i < hd; i++) attn[head * hd + i] += (e[t] / z) * vs[t][kvHead * hd + i];
      }
      const o = matVec(get(`${p}.self_attn.o_proj.weight`), attn, D, H * hd, config.oBias ? get(`${p}.self_attn.o_proj.bias`) : undefined);
      for (let i = 0; i < D; i++) x[i] += o[i];
      const h = rmsNorm(x, get(`${p}.post_attention_layernorm.weight`), eps);
      const gate = matVec(get(`${p}.mlp.gate_proj.weight`), h, F, D);
      const up = matVec(get(`${p}.mlp.up_proj.weight`), h, F, D);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      const down = matVec(get(`${p}.mlp.down_proj.weight`), act, D, F);
      for (let i = 0; i < D; i++) x[i] += down[i];
    });
  }
  const head = config.tieWordEmbeddings ? embed : get('lm_head.weight');
  return xs.map((x) => matVec(head, rmsNorm(x, get('model.norm.weight'), eps), V, D));
}

/** Greedy continuation; `minMargin` reports the smallest top-1/top-2 logit gap seen (ties make comparisons meaningless). */
export function referenceGreedy(config: ModelConfig, w: Map<string, Float32Array>, prompt: number[], steps: number): { tokens: number[]; minMargin: number } {
  const ids = [...prompt];
  const tokens: number[] = [];
  let minMargin = Infinity;
  for (let s = 0; s < steps; s++) {
    const logits = referenceLogits(config, w, ids).at(-1)!;
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    const second = Math.max(...Array.from(logits).filter((_, i) => i !== best));
    minMargin = Math.min(minMargin, logits[best] - second);
    tokens.push(best);
    ids.push(best);
  }
  return { tokens, minMargin };
}
