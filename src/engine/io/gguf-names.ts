/**
 * The one table of Hugging Face <-> llama.cpp (GGUF) tensor names, used by the GGUF writer and reader.
 * Per-layer tensors are `model.layers.N.<part>.(weight|bias)` <-> `blk.N.<gguf part>.(weight|bias)`.
 */

const GLOBAL: [hf: string, gguf: string][] = [
  ['model.embed_tokens.weight', 'token_embd.weight'],
  ['model.norm.weight', 'output_norm.weight'],
  ['lm_head.weight', 'output.weight'],
];

const LAYER_PARTS: [hf: string, gguf: string][] = [
  ['input_layernorm', 'attn_norm'],
  ['self_attn.q_proj', 'attn_q'],
  ['self_attn.k_proj', 'attn_k'],
  ['self_attn.v_proj', 'attn_v'],
  ['self_attn.o_proj', 'attn_output'],
  ['self_attn.q_norm', 'attn_q_norm'],
  ['self_attn.k_norm', 'attn_k_norm'],
  ['post_attention_layernorm', 'ffn_norm'],
  ['mlp.gate_proj', 'ffn_gate'],
  ['mlp.up_proj', 'ffn_up'],
  ['mlp.down_proj', 'ffn_down'],
];

const globalToGguf = new Map(GLOBAL);
const globalToHf = new Map(GLOBAL.map(([hf, gguf]) => [gguf, hf]));
const partToGguf = new Map(LAYER_PARTS);
const partToHf = new Map(LAYER_PARTS.map(([hf, gguf]) => [gguf, hf]));

/** HF tensor name -> llama.cpp tensor name (throws for a tensor GGUF has no name for). */
export function ggufTensorName(hfName: string): string {
  const global = globalToGguf.get(hfName);
  if (global) return global;
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  const part = m && partToGguf.get(m[2]);
  if (!m || !part) throw new Error(`no GGUF name for tensor ${hfName}`);
  return `blk.${m[1]}.${part}.${m[3]}`;
}

/** llama.cpp tensor name -> HF tensor name, or null for tensors the engine does not read (rope_freqs...). */
export function hfTensorName(ggufName: string): string | null {
  const global = globalToHf.get(ggufName);
  if (global) return global;
  const m = /^blk\.(\d+)\.(.+)\.(weight|bias)$/.exec(ggufName);
  const part = m && partToHf.get(m[2]);
  if (!m || !part) return null;
  return `model.layers.${m[1]}.${part}.${m[3]}`;
}
