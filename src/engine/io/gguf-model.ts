/**
 * A GGUF model file (what Ollama and LM Studio hold) opened as the engine opens a Hugging Face model
 * directory: the config rebuilt from the `<arch>.*` metadata, the weights under their Hugging Face
 * names (dequantized to float32; Llama q/k rows put back in Hugging Face's rotate-half order), the
 * tokenizer and chat template from the `tokenizer.*` metadata. Architectures: llama, qwen2, qwen3.
 */
import { InputError } from '../../core/errors.js';
import { type ModelConfig, parseModelConfig } from './config.js';
import { type GenerationDefaults, parseGenerationConfig } from './generation-config.js';
import { llama3RopeFactors, unpermuteFromLlamaRope } from './gguf.js';
import { hfTensorName } from './gguf-names.js';
import { GgufFile } from './gguf-read.js';
import { ggufTokenizer } from './gguf-tokenizer.js';
import { checkTensorShapes } from './shapes.js';
import type { TextTokenizer } from './tokenizer.js';

const ARCHITECTURES: Record<string, string> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' };

/** Whether a model reference names a GGUF file rather than a model directory. */
export const isGgufPath = (path: string): boolean => /\.gguf$/i.test(path);

/**
 * Llama 3's rope scaling as Hugging Face writes it, recovered from llama.cpp's rope_freqs tensor:
 * factor is its largest entry; low/high frequency factors 1 and 4 (every Llama 3.x); the original
 * context length from the metadata when the converter wrote it, else the power of two that
 * reproduces the tensor.
 */
function llama3Scaling(gguf: GgufFile, partial: ModelConfig): Record<string, unknown> {
  const freqs = gguf.readFloat32('rope_freqs.weight');
  const factor = Math.max(...freqs);
  const written = gguf.get(`${gguf.get('general.architecture')}.rope.scaling.original_context_length`);
  const candidates = [...(written === undefined ? [] : [Number(written)]), ...Array.from({ length: 17 }, (_, k) => 2 ** (k + 4))];
  for (const original of candidates) {
    const recomputed = llama3RopeFactors({ ...partial, ropeScaling: { type: 'llama3', factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: original } });
    if (recomputed.length === freqs.length && recomputed.every((v, i) => Math.abs(v - freqs[i]) <= 1e-4 * Math.abs(freqs[i]))) {
      return { rope_type: 'llama3', factor, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: original };
    }
  }
  throw new InputError(gguf.path, 'rope_freqs.weight', 'Llama 3 rope factors (low_freq_factor 1, high_freq_factor 4) the engine can reproduce');
}

/** Hugging Face config.json fields from the GGUF metadata. */
function configFromMetadata(gguf: GgufFile): ModelConfig {
  const arch = gguf.get('general.architecture');
  if (typeof arch !== 'string' || !ARCHITECTURES[arch]) {
    throw new InputError(gguf.path, 'general.architecture', `one of ${Object.keys(ARCHITECTURES).join(', ')} (found ${JSON.stringify(arch ?? null)})`);
  }
  const num = (key: string, fallback?: number): number | undefined => {
    const v = gguf.get(`${arch}.${key}`);
    if (v === undefined) return fallback;
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new InputError(gguf.path, `${arch}.${key}`, `a number (found ${JSON.stringify(v)})`);
    return Number(v);
  };
  const required = (key: string): number => {
    const v = num(key);
    if (v === undefined) throw new InputError(gguf.path, `${arch}.${key}`, 'a number (missing)');
    return v;
  };
  const embd = gguf.tensors.get('token_embd.weight');
  if (!embd) throw new InputError(gguf.path, 'token_embd.weight', 'the token embedding tensor (missing)');
  const tokenId = (key: string) => {
    const v = gguf.get(`tokenizer.ggml.${key}`);
    return typeof v === 'number' ? v : null;
  };
  const hf: Record<string, unknown> = {
    architectures: [ARCHITECTURES[arch]],
    hidden_size: required('embedding_length'),
    num_hidden_layers: required('block_count'),
    num_attention_heads: required('attention.head_count'),
    num_key_value_heads: num('attention.head_count_kv'),
    head_dim: num('attention.key_length'),
    intermediate_size: required('feed_forward_length'),
    vocab_size: embd.shape[0],
    rms_norm_eps: num('attention.layer_norm_rms_epsilon'),
    rope_theta: num('rope.freq_base', 10000),
    max_position_embeddings: num('context_length'),
    tie_word_embeddings: !gguf.tensors.has('output.weight'),
    attention_bias: arch !== 'qwen2' && gguf.tensors.has('blk.0.attn_q.bias'),
    bos_token_id: tokenId('bos_token_id'),
    eos_token_id: tokenId('eos_token_id'),
    pad_token_id: tokenId('padding_token_id'),
  };
  const scalingType = gguf.get(`${arch}.rope.scaling.type`);
  if (scalingType === 'linear') hf.rope_scaling = { rope_type: 'linear', factor: num('rope.scaling.factor') };
  else if (scalingType !== undefined && scalingType !== 'none') throw new InputError(gguf.path, `${arch}.rope.scaling.type`, `"linear" or none (found ${JSON.stringify(scalingType)})`);
  const config = parseModelConfig(hf, gguf.path);
  if (gguf.tensors.has('rope_freqs.weight')) return parseModelConfig({ ...hf, rope_scaling: llama3Scaling(gguf, config) }, gguf.path);
  return config;
}

export interface GgufModel {
  path: string;
  config: ModelConfig;
  gguf: GgufFile;
  /** Hugging Face name -> GGUF name of every weight the engine reads. */
  names: Map<string, string>;
  /** One weight as float32 under its Hugging Face name and layout. */
  readFloat32(hfName: string): Float32Array;
  tokenizer(): TextTokenizer;
  generation(): GenerationDefaults;
  close(): void;
}

/** Opens a GGUF file, checking every tensor's name and shape against the config read from it. */
export function openGgufModel(path: string): GgufModel {
  const gguf = GgufFile.open(path);
  try {
    const config = configFromMetadata(gguf);
    const names = new Map<string, string>();
    const shapes = new Map<string, number[]>();
    for (const [name, info] of gguf.tensors) {
      if (name === 'rope_freqs.weight') continue;
      const hfName = hfTensorName(name);
      if (!hfName) throw new InputError(path, name, `a tensor of a ${config.family} model (unexpected tensor ${name})`);
      names.set(hfName, name);
      shapes.set(hfName, info.shape);
    }
    checkTensorShapes(config, shapes, () => path, path);
    const permuted = config.family === 'llama';
    const readFloat32 = (hfName: string): Float32Array => {
      const name = names.get(hfName);
      if (!name) throw new Error(`${path}: no tensor ${hfName}`);
      const data = gguf.readFloat32(name);
      const qk = /self_attn\.([qk])_proj\.(weight|bias)$/.exec(hfName);
      if (!permuted || !qk) return data;
      const shape = shapes.get(hfName)!;
      return unpermuteFromLlamaRope(data, qk[1] === 'q' ? config.numHeads : config.numKvHeads, shape.length === 2 ? shape[1] : 1);
    };
    return {
      path,
      config,
      gguf,
      names,
      readFloat32,
      tokenizer: () => ggufTokenizer(gguf),
      generation: () => {
        const eos = config.eosTokenIds;
        return parseGenerationConfig({ bos_token_id: config.bosTokenId, eos_token_id: eos, pad_token_id: config.padTokenId }, null);
      },
      close: () => gguf.close(),
    };
  } catch (error) {
    gguf.close();
    throw error;
  }
}
