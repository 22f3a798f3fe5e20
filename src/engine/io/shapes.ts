/** The Hugging Face tensor names and shapes a checkpoint of a given ModelConfig must contain. */
import { InputError } from '../../core/errors.js';
import type { ModelConfig } from './config.js';

export interface ExpectedTensor {
  shape: number[];
  /** Optional tensors may be absent (a tied `lm_head.weight` some checkpoints still store). */
  optional?: boolean;
}

/** HF name -> expected shape ([out, in] for linear weights, as PyTorch stores them). */
export function expectedTensorShapes(config: ModelConfig): Map<string, ExpectedTensor> {
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

/** Buffers some exporters store that the engine recomputes. */
const IGNORED = /\.rotary_emb\.inv_freq$/;

/**
 * Checks a checkpoint's tensor names and shapes against the config: every required tensor present,
 * every shape equal, no unknown tensor. `where(name)` names the file that holds a tensor.
 */
export function checkTensorShapes(
  config: ModelConfig,
  found: Map<string, number[]>,
  where: (name: string) => string,
  configFile = 'config.json',
): void {
  const expected = expectedTensorShapes(config);
  for (const [name, { shape, optional }] of expected) {
    const actual = found.get(name);
    if (!actual) {
      if (optional) continue;
      throw new InputError(configFile, name, `tensor ${name} in the checkpoint (missing from every safetensors file)`);
    }
    if (actual.length !== shape.length || actual.some((n, i) => n !== shape[i])) {
      throw new InputError(where(name), name, `shape mismatch: file ${where(name)} tensor ${name} expected [${shape.join(',')}] found [${actual.join(',')}]`);
    }
  }
  for (const name of found.keys()) {
    if (!expected.has(name) && !IGNORED.test(name)) {
      throw new InputError(where(name), name, `a tensor of a ${config.family} model (unexpected tensor ${name})`);
    }
  }
}
