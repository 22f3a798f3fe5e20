/**
 * The graphs a model runs, built from the architecture (src/engine/models/) plus the heads a task
 * needs, so each returns only what is used: the last position's top-k logits and log-sum-exp for
 * sampling, log-probabilities of given targets for scoring, this step's keys/values for the cache,
 * captured activations. Full-vocabulary logits for every position are an output only when asked.
 */
import {
  END,
  Graph,
  type OpDef,
  type Tensor,
  apply,
  dimMul,
  gatherElements,
  logSoftmax,
  logSumExp,
  reduceSum,
  slice,
  squeeze,
  unsqueeze,
  mul,
  div,
  maximum,
} from '../graph/index.js';
import type { ModelConfig } from '../io/config.js';
import { type Hooks, buildHooks, hookSignature } from '../hooks/index.js';
import { type LoraSpec, loraLinear, loraSignature } from '../lora/index.js';
import { ARCHITECTURES } from '../models/index.js';

export interface GraphSpec {
  /** Read a KV cache (decode) or not (prefill, scoring). */
  cache: boolean;
  /** Outputs: per-layer keys/values of the new tokens. */
  kv?: boolean;
  /** Outputs top_values/top_ids [B, K] and lse [B] of the last position (K fed as `top_k`). */
  sample?: boolean;
  /** Outputs target_logprobs [B, T] of `targets` [B, T] (the next token at every position). */
  score?: boolean;
  /** With score: also the top-k alternatives at every position (top_values/top_ids [B, T, K]). */
  scoreTop?: boolean;
  /** Outputs logits [B, T, V] (tests, small vocabularies). */
  logits?: boolean;
  /** Outputs embedding [B, hidden]: final hidden states averaged over `pool_mask`. */
  pool?: boolean;
  hooks?: Hooks;
  lora?: LoraSpec[];
  /** RoPE from primitive ops instead of ORT's fused RotaryEmbedding (fed tables `rope_*` [R, D/2]). */
  composedRope?: boolean;
}

export const io = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  ropeCosQ: 'rope_cos_q',
  ropeSinQ: 'rope_sin_q',
  ropeCosK: 'rope_cos_k',
  ropeSinK: 'rope_sin_k',
  attentionBias: 'attention_bias',
  pastKey: (l: number) => `past_key_${l}`,
  pastValue: (l: number) => `past_value_${l}`,
  key: (l: number) => `key_${l}`,
  value: (l: number) => `value_${l}`,
  topK: 'top_k',
  topValues: 'top_values',
  topIds: 'top_ids',
  lse: 'lse',
  targets: 'targets',
  targetLogprobs: 'target_logprobs',
  logits: 'logits',
  poolMask: 'pool_mask',
  embedding: 'embedding',
};

export function specKey(s: GraphSpec): string {
  const flags = (['cache', 'kv', 'sample', 'score', 'scoreTop', 'logits', 'pool', 'composedRope'] as const).map((k) => (s[k] ? k : '')).join(',');
  return `${flags}|${hookSignature(s.hooks)}|${loraSignature(s.lora)}`;
}

/** ONNX TopK over the last axis, largest first; k is an int64 [1] input. Inference only. */
const TopK: OpDef = {
  type: 'TopK',
  shape: ([x]) => [
    { dtype: x.dtype, shape: [...x.shape.slice(0, -1), 'K'] },
    { dtype: 'int64', shape: [...x.shape.slice(0, -1), 'K'] },
  ],
  onnx: (ctx, ins, outs) => ctx.emit('TopK', ins, outs, { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } }),
};
function topK(x: Tensor, k: Tensor): [Tensor, Tensor] {
  const [values, ids] = apply(TopK, [x, k], {});
  return [values, ids];
}

export function buildGraph(config: ModelConfig, spec: GraphSpec): Graph {
  const g = new Graph(`${config.family}-${spec.cache ? 'decode' : 'forward'}`);
  const { numLayers: L, numKvHeads: KV, headDim: D, numHeads: H } = config;
  const rep = H / KV;
  const inputIds = g.input(io.inputIds, 'int64', ['B', 'T']);
  const positionIds = g.input(io.positionIds, 'int64', ['B', 'T']);
  const keys = spec.cache ? 'P+T' : 'T';
  const attentionBias = g.input(io.attentionBias, 'float32', ['B', 1, dimMul(rep, 'T'), keys]);
  const pastKeys = spec.cache ? Array.from({ length: L }, (_, l) => g.input(io.pastKey(l), 'float32', ['B', KV, D, 'P'])) : undefined;
  const pastValues = spec.cache ? Array.from({ length: L }, (_, l) => g.input(io.pastValue(l), 'float32', ['B', KV, 'P', D])) : undefined;

  const afterLayer = spec.hooks ? buildHooks(g, spec.hooks, config.hiddenSize, ['B', 'T']) : undefined;
  const project = spec.lora?.length ? loraLinear(g, spec.lora) : undefined;
  const half = config.headDim / 2;
  const table = (name: string) => g.input(name, 'float32', ['R', half]);
  const rope = spec.composedRope
    ? undefined
    : { cosQ: table(io.ropeCosQ), sinQ: table(io.ropeSinQ), cosK: table(io.ropeCosK), sinK: table(io.ropeSinK) };
  const { buildDecoder, lmHead } = ARCHITECTURES[config.family];
  const out = buildDecoder(g, config, { inputIds, positionIds, attentionBias, rope, pastKeys, pastValues }, project, afterLayer);

  if (spec.kv) {
    out.keys.forEach((k, l) => g.output(io.key(l), k));
    out.values.forEach((v, l) => g.output(io.value(l), v));
  }
  if (spec.sample) {
    const last = squeeze(slice(out.hidden, [-1], [END], [1]), [1]); // [B, hidden]
    const logits = lmHead(g, config, last); // [B, V]
    const [values, ids] = topK(logits, g.input(io.topK, 'int64', [1]));
    g.output(io.topValues, values);
    g.output(io.topIds, ids);
    g.output(io.lse, logSumExp(logits, [-1]));
  }
  if (spec.score || spec.logits) {
    const logits = lmHead(g, config, out.hidden); // [B, T, V]
    if (spec.logits) g.output(io.logits, logits);
    if (spec.score) {
      const logprobs = logSoftmax(logits, -1);
      const targets = unsqueeze(g.input(io.targets, 'int64', ['B', 'T']), [2]);
      g.output(io.targetLogprobs, squeeze(gatherElements(logprobs, targets, 2), [2]));
      if (spec.scoreTop) {
        const [values, ids] = topK(logprobs, g.input(io.topK, 'int64', [1]));
        g.output(io.topValues, values);
        g.output(io.topIds, ids);
      }
    }
  }
  if (spec.pool) {
    const mask = unsqueeze(g.input(io.poolMask, 'float32', ['B', 'T']), [2]);
    g.output(io.embedding, div(reduceSum(mul(out.hidden, mask), [1]), maximum(reduceSum(mask, [1]), 1e-9)));
  }
  return g;
}
