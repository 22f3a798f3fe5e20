/**
 * GGUF v3 writer for llama.cpp / Ollama: a base model (F32 or F16) with its tokenizer and chat
 * template, and LoRA adapters (general.type = adapter). Layout, per the GGUF spec:
 * magic "GGUF", version, tensor count, KV count, KV pairs, tensor infos (name, dims innermost first,
 * ggml type, offset), padding to general.alignment (32), tensor data each aligned to 32.
 *
 * Llama-architecture checkpoints (llama, mistral) get the row permutation llama.cpp's converter applies
 * to q_proj/k_proj: Hugging Face orders each head's rows as [first halves | second halves] for its
 * rotate-half RoPE, llama.cpp's "normal" RoPE rotates adjacent pairs, so row j*(d/2)+i of a head moves
 * to row 2i+j. Qwen2/Qwen3 use llama.cpp's NeoX RoPE and keep the HF layout.
 */
import { writeFileInPieces } from '../../core/files.js';
import type { ModelConfig } from './config.js';
import { f32ToF16Bits } from './dtype.js';
import { GGML_TYPES } from './ggml-quants.js';
import { GGUF_VALUE_TYPE } from './gguf-read.js';
import { type LoraAdapter, loraScale } from './peft.js';
import { expectedTensorShapes } from './shapes.js';
import { ARCHITECTURES, architectureOf } from '../models/index.js';
import type { TextTokenizer } from './tokenizer.js';

const ALIGNMENT = 32;

const ValueType = GGUF_VALUE_TYPE;
type ValueType = (typeof ValueType)[keyof typeof ValueType];

export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'str'; value: string }
  | { type: 'str[]'; value: string[] }
  | { type: 'i32[]'; value: number[] }
  | { type: 'f32[]'; value: number[] };

export interface GgufTensor {
  name: string;
  /** Shape as PyTorch writes it (outermost first); GGUF stores it reversed. */
  shape: number[];
  type: 'F32' | 'F16';
  /** Produces the row-major float32 data when the writer reaches this tensor (one tensor in memory at a time). */
  data: () => Float32Array;
}

/** Little-endian byte builder for the header. */
class Bytes {
  private chunks: Buffer[] = [];
  length = 0;
  private push(b: Buffer) {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number | bigint) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  raw(b: Buffer) {
    this.push(b);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writeValue(out: Bytes, v: GgufValue): void {
  const array = (itemType: ValueType, n: number) => {
    out.u32(ValueType.ARRAY);
    out.u32(itemType);
    out.u64(n);
  };
  switch (v.type) {
    case 'u32':
      out.u32(ValueType.UINT32);
      out.u32(v.value);
      return;
    case 'f32':
      out.u32(ValueType.FLOAT32);
      out.f32(v.value);
      return;
    case 'bool':
      out.u32(ValueType.BOOL);
      out.raw(Buffer.from([v.value ? 1 : 0]));
      return;
    case 'str':
      out.u32(ValueType.STRING);
      out.str(v.value);
      return;
    case 'str[]':
      array(ValueType.STRING, v.value.length);
      for (const s of v.value) out.str(s);
      return;
    case 'i32[]':
      array(ValueType.INT32, v.value.length);
      for (const n of v.value) out.i32(n);
      return;
    case 'f32[]':
      array(ValueType.FLOAT32, v.value.length);
      for (const n of v.value) out.f32(n);
      return;
  }
}

const pad = (n: number) => (ALIGNMENT - (n % ALIGNMENT)) % ALIGNMENT;
const bytesOf = (t: GgufTensor) => t.shape.reduce((a, b) => a * b, 1) * (t.type === 'F32' ? 4 : 2);

/** Writes a GGUF v3 file atomically (temporary file, then rename). */
export function writeGguf(path: string, metadata: [string, GgufValue][], tensors: GgufTensor[]): void {
  const header = new Bytes();
  header.raw(Buffer.from('GGUF', 'ascii'));
  header.u32(3);
  header.u64(tensors.length);
  header.u64(metadata.length);
  for (const [key, value] of metadata) {
    header.str(key);
    writeValue(header, value);
  }
  let offset = 0;
  for (const t of tensors) {
    header.str(t.name);
    header.u32(t.shape.length);
    for (const n of [...t.shape].reverse()) header.u64(n);
    header.u32(GGML_TYPES[t.type]);
    header.u64(offset);
    offset += bytesOf(t);
    offset += pad(offset);
  }
  header.raw(Buffer.alloc(pad(header.length)));

  writeFileInPieces(path, (put) => {
    put(header.toBuffer());
    for (const t of tensors) {
      const data = t.data();
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (data.length !== n) throw new Error(`GGUF tensor ${t.name}: ${data.length} values for shape [${t.shape.join(',')}]`);
      let bytes: Uint8Array;
      if (t.type === 'F32') bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      else {
        const half = new Uint16Array(n);
        for (let i = 0; i < n; i++) half[i] = f32ToF16Bits(data[i]);
        bytes = new Uint8Array(half.buffer);
      }
      put(bytes);
      put(new Uint8Array(pad(bytes.byteLength)));
    }
  });
}


/** llama.cpp's architecture name for a config's family (Mistral and SmolLM2 are plain llama to it). */
function ggufArchitecture(config: ModelConfig): string {
  const arch = architectureOf(config).gguf.architecture;
  if (arch === null) {
    const exportable = Object.entries(ARCHITECTURES).filter(([, a]) => a.gguf.architecture !== null).map(([family]) => family);
    throw new Error(`GGUF export supports ${exportable.join(', ')} checkpoints, not ${config.family}`);
  }
  return arch;
}

/** Whether q/k rows need llama.cpp's RoPE permutation (its llama architecture only). */
const permutesQK = (config: ModelConfig) => architectureOf(config).gguf.permutesQK;

/** Moves each head's q/k row j*(d/2)+i (HF rotate-half) to 2i+j (llama.cpp interleaved), or back. */
function moveRopeRows(data: Float32Array, heads: number, cols: number, toLlamaCpp: boolean): Float32Array {
  const rows = data.length / cols;
  const half = rows / heads / 2;
  if (!Number.isInteger(half)) throw new Error(`cannot permute ${rows} rows into ${heads} heads of even size`);
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const hf = (h * 2 * half + j * half + i) * cols;
        const cpp = (h * 2 * half + 2 * i + j) * cols;
        const [from, to] = toLlamaCpp ? [hf, cpp] : [cpp, hf];
        out.set(data.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

/**
 * Reorders the rows of a q_proj/k_proj weight, bias, or LoRA B ([rows, cols] row-major) from HF's
 * rotate-half layout to llama.cpp's interleaved layout: per head, row j*(d/2)+i -> row 2i+j.
 */
export const permuteForLlamaRope = (data: Float32Array, heads: number, cols: number): Float32Array => moveRopeRows(data, heads, cols, true);

/** The inverse of permuteForLlamaRope: llama.cpp's interleaved q/k rows back to HF's rotate-half order. */
export const unpermuteFromLlamaRope = (data: Float32Array, heads: number, cols: number): Float32Array => moveRopeRows(data, heads, cols, false);

/** How llama.cpp must split text before BPE, read off tokenizer.json's pre_tokenizer. */
function ggufPreTokenizer(json: Record<string, unknown>): string {
  const pre = json.pre_tokenizer as { type?: string; use_regex?: boolean; pretokenizers?: { type?: string; pattern?: { Regex?: string }; individual_digits?: boolean }[] } | null;
  if (pre?.type === 'ByteLevel' && pre.use_regex !== false) return 'gpt-2';
  const steps = pre?.type === 'Sequence' ? (pre.pretokenizers ?? []) : [];
  const regex = steps.find((s) => s.type === 'Split')?.pattern?.Regex ?? '';
  if (regex.includes('\\p{N}{1,3}')) return 'llama-bpe';
  if (regex.startsWith("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|")) return 'qwen2';
  if (steps.some((s) => s.type === 'Digits' && s.individual_digits) && steps.some((s) => s.type === 'ByteLevel')) return 'smollm';
  throw new Error('cannot tell which llama.cpp pre-tokenizer matches this tokenizer.json; pass `pre` (e.g. gpt-2, llama-bpe, qwen2, smollm)');
}

/** tokenizer.ggml.* keys (and the chat template) for a tokenizer, padded to the model's vocabulary size. */
export function ggufTokenizerMetadata(tokenizer: TextTokenizer, vocabSize: number, options: { pre?: string } = {}): [string, GgufValue][] {
  const json = tokenizer.tokenizerJson;
  const model = json.model as { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean };
  if (model.type !== 'BPE' || !model.vocab) throw new Error(`GGUF export supports BPE tokenizers (found ${model.type})`);
  if (tokenizer.vocabSize > vocabSize) throw new Error(`tokenizer has ${tokenizer.vocabSize} ids but the model only ${vocabSize} embedding rows`);
  const tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const types: number[] = Array.from({ length: vocabSize }, () => 5); // UNUSED
  for (const [token, id] of Object.entries(model.vocab)) {
    tokens[id] = token;
    types[id] = 1; // NORMAL
  }
  for (const t of tokenizer.addedTokens) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? 3 : 4; // CONTROL : USER_DEFINED
  }
  const metadata: [string, GgufValue][] = [];
  const sentencePiece = model.byte_fallback === true;
  if (sentencePiece) {
    // llama.cpp's SentencePiece tokenizer merges the adjacent pair whose result has the highest score:
    // score = -(rank), so later merges lose to earlier ones, as in BPE.
    const scores = tokens.map((_, id) => -id);
    tokens.forEach((t, id) => {
      if (/^<0x[0-9A-F]{2}>$/.test(t)) types[id] = 6; // BYTE
    });
    if (tokenizer.unk) types[tokenizer.unk.id] = 2; // UNKNOWN
    metadata.push(['tokenizer.ggml.model', { type: 'str', value: 'llama' }]);
    metadata.push(['tokenizer.ggml.tokens', { type: 'str[]', value: tokens }]);
    metadata.push(['tokenizer.ggml.scores', { type: 'f32[]', value: scores }]);
    metadata.push(['tokenizer.ggml.token_type', { type: 'i32[]', value: types }]);
  } else {
    metadata.push(['tokenizer.ggml.model', { type: 'str', value: 'gpt2' }]);
    metadata.push(['tokenizer.ggml.pre', { type: 'str', value: options.pre ?? ggufPreTokenizer(json) }]);
    metadata.push(['tokenizer.ggml.tokens', { type: 'str[]', value: tokens }]);
    metadata.push(['tokenizer.ggml.token_type', { type: 'i32[]', value: types }]);
    metadata.push(['tokenizer.ggml.merges', { type: 'str[]', value: (model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m)) }]);
  }
  if (tokenizer.bos) metadata.push(['tokenizer.ggml.bos_token_id', { type: 'u32', value: tokenizer.bos.id }]);
  if (tokenizer.eos) metadata.push(['tokenizer.ggml.eos_token_id', { type: 'u32', value: tokenizer.eos.id }]);
  if (tokenizer.unk) metadata.push(['tokenizer.ggml.unknown_token_id', { type: 'u32', value: tokenizer.unk.id }]);
  if (tokenizer.pad) metadata.push(['tokenizer.ggml.padding_token_id', { type: 'u32', value: tokenizer.pad.id }]);
  metadata.push(['tokenizer.ggml.add_bos_token', { type: 'bool', value: tokenizer.addsBos() }]);
  metadata.push(['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }]);
  const template = tokenizer.chatTemplates?.templates.get('default') ?? tokenizer.chatTemplates?.templates.values().next().value;
  if (template) metadata.push(['tokenizer.chat_template', { type: 'str', value: template }]);
  return metadata;
}

/** llama.cpp's per-frequency divisors for Llama-3 rope scaling (the rope_freqs.weight tensor). */
export function llama3RopeFactors(config: ModelConfig): Float32Array {
  const s = config.ropeScaling;
  if (s.type !== 'llama3') throw new Error('llama3RopeFactors needs llama3 rope scaling');
  const dim = config.headDim;
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return Float32Array.from({ length: dim / 2 }, (_, k) => {
    const freq = 1 / config.ropeTheta ** ((2 * k) / dim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) return 1;
    if (wavelen > lowWavelen) return s.factor;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return 1 / ((1 - smooth) / s.factor + smooth);
  });
}

function architectureMetadata(config: ModelConfig): [string, GgufValue][] {
  const arch = ggufArchitecture(config);
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const out: [string, GgufValue][] = [
    [`${arch}.context_length`, u32(config.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, u32(config.hiddenSize)],
    [`${arch}.block_count`, u32(config.numLayers)],
    [`${arch}.feed_forward_length`, u32(config.intermediateSize)],
    [`${arch}.attention.head_count`, u32(config.numHeads)],
    [`${arch}.attention.head_count_kv`, u32(config.numKvHeads)],
    [`${arch}.rope.freq_base`, { type: 'f32', value: config.ropeTheta }],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: 'f32', value: config.rmsNormEps }],
    [`${arch}.vocab_size`, u32(config.vocabSize)],
    [`${arch}.rope.dimension_count`, u32(config.headDim)],
  ];
  if (config.headDim * config.numHeads !== config.hiddenSize) {
    out.push([`${arch}.attention.key_length`, u32(config.headDim)], [`${arch}.attention.value_length`, u32(config.headDim)]);
  }
  if (config.ropeScaling.type === 'linear') {
    out.push([`${arch}.rope.scaling.type`, { type: 'str', value: 'linear' }], [`${arch}.rope.scaling.factor`, { type: 'f32', value: config.ropeScaling.factor }]);
  }
  return out;
}

export interface GgufModelOptions {
  /** Storage of 2-D weights; norms and biases stay F32 as llama.cpp's converter keeps them. */
  dtype?: 'F32' | 'F16';
  name?: string;
  /** llama.cpp pre-tokenizer name when it cannot be read off tokenizer.json. */
  pre?: string;
}

/**
 * Writes a base model as GGUF. `read(hfName)` returns each HF tensor as float32 (e.g.
 * SafetensorsModel.readFloat32), called once per tensor while writing.
 */
export function writeGgufModel(path: string, config: ModelConfig, read: (hfName: string) => Float32Array, tokenizer: TextTokenizer, options: GgufModelOptions = {}): void {
  const arch = ggufArchitecture(config);
  if (!config.ropeLayers.every(Boolean)) throw new Error('GGUF export does not support NoPE layers');
  const dtype = options.dtype ?? 'F32';
  const tensors: GgufTensor[] = [];
  for (const [hfName, { shape, optional }] of expectedTensorShapes(config)) {
    if (optional) continue; // a tied lm_head: llama.cpp reuses token_embd when output.weight is absent
    let data = () => read(hfName);
    if (permutesQK(config) && /self_attn\.[qk]_proj\.(weight|bias)$/.test(hfName)) {
      const heads = hfName.includes('q_proj') ? config.numHeads : config.numKvHeads;
      const cols = shape.length === 2 ? shape[1] : 1;
      const source = data;
      data = () => permuteForLlamaRope(source(), heads, cols);
    }
    tensors.push({ name: architectureOf(config).gguf.tensorName(hfName), shape, type: shape.length === 2 && dtype === 'F16' ? 'F16' : 'F32', data });
  }
  if (config.ropeScaling.type === 'llama3') {
    tensors.push({ name: 'rope_freqs.weight', shape: [config.headDim / 2], type: 'F32', data: () => llama3RopeFactors(config) });
  }
  const metadata: [string, GgufValue][] = [
    ['general.architecture', { type: 'str', value: arch }],
    ['general.type', { type: 'str', value: 'model' }],
    ['general.name', { type: 'str', value: options.name ?? 'persona-lab model' }],
    ['general.file_type', { type: 'u32', value: dtype === 'F16' ? 1 : 0 }],
    ...architectureMetadata(config),
    ...ggufTokenizerMetadata(tokenizer, config.vocabSize, { pre: options.pre }),
  ];
  writeGguf(path, metadata, tensors);
}

/**
 * Writes a LoRA adapter as a llama.cpp adapter GGUF: tensors `blk.N.attn_q.weight.lora_a` [r, in]
 * and `.lora_b` [out, r] (GGUF dims reversed). llama.cpp scales by alpha / rank; when modules differ
 * in scale (rank_pattern, rsLoRA) each module's scale is folded into its B and alpha is written as 0,
 * which llama.cpp reads as "no further scaling".
 */
export function writeGgufLora(path: string, adapter: LoraAdapter, config: ModelConfig, options: { dtype?: 'F32' | 'F16'; name?: string } = {}): void {
  const arch = ggufArchitecture(config);
  const modules = [...adapter.modules].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const uniform = !adapter.config.useRslora && modules.every(([, m]) => m.rank === adapter.config.r && m.alpha === adapter.config.loraAlpha);
  const dtype = options.dtype ?? 'F32';
  const tensors: GgufTensor[] = [];
  for (const [module, m] of modules) {
    const name = architectureOf(config).gguf.tensorName(`${module}.weight`);
    const fold = uniform ? 1 : loraScale(m, adapter.config.useRslora);
    let B = fold === 1 ? m.B : m.B.map((x) => x * fold);
    if (permutesQK(config) && /self_attn\.[qk]_proj$/.test(module)) {
      B = permuteForLlamaRope(B, module.endsWith('q_proj') ? config.numHeads : config.numKvHeads, m.rank);
    }
    const finalB = B;
    tensors.push({ name: `${name}.lora_a`, shape: [m.rank, m.inFeatures], type: dtype, data: () => m.A });
    tensors.push({ name: `${name}.lora_b`, shape: [m.outFeatures, m.rank], type: dtype, data: () => finalB });
  }
  writeGguf(path, [
    ['general.architecture', { type: 'str', value: arch }],
    ['general.type', { type: 'str', value: 'adapter' }],
    ['general.name', { type: 'str', value: options.name ?? 'persona-lab adapter' }],
    ['adapter.type', { type: 'str', value: 'lora' }],
    ['adapter.lora.alpha', { type: 'f32', value: uniform ? adapter.config.loraAlpha : 0 }],
  ], tensors);
}
