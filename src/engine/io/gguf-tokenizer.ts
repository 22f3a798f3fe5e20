/**
 * A GGUF file's own tokenizer as a tokenizer.json for Hugging Face's tokenizer (so GGUF and model
 * directories share one implementation): the vocabulary (tokenizer.ggml.tokens), merges, token types
 * (control tokens become special added tokens, user-defined ones plain added tokens), the
 * pre-tokenizer llama.cpp names in tokenizer.ggml.pre, BOS when add_bos_token is set, and the chat
 * template. GPT-2 style byte-level BPE (`tokenizer.ggml.model = gpt2`: Llama 3, Qwen2/3, SmolLM).
 */
import { InputError } from '../../core/errors.js';
import { LLAMA3_SPLIT_PATTERN } from './bpe-train.js';
import { ChatTemplates } from './chat-template.js';
import type { GgufFile } from './gguf-read.js';
import { TextTokenizer } from './tokenizer.js';

/** llama.cpp's token types (llama_token_type). */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

const QWEN2_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
const split = (pattern: string) => ({ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false });

/** tokenizer.json's pre_tokenizer for llama.cpp's pre-tokenizer names (the inverse of the GGUF writer's choice). */
function preTokenizer(pre: string, file: string): Record<string, unknown> {
  switch (pre) {
    case 'default':
    case 'gpt-2':
      return byteLevel(true);
    case 'llama-bpe':
    case 'llama3':
      return { type: 'Sequence', pretokenizers: [split(LLAMA3_SPLIT_PATTERN), byteLevel(false)] };
    case 'qwen2':
      return { type: 'Sequence', pretokenizers: [split(QWEN2_SPLIT_PATTERN), byteLevel(false)] };
    case 'smollm':
      return { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] };
    default:
      throw new InputError(file, 'tokenizer.ggml.pre', `a pre-tokenizer the engine knows (default, gpt-2, llama-bpe, qwen2, smollm; found "${pre}")`);
  }
}

const strings = (v: unknown): string[] | null => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : null);

/** The tokenizer a GGUF file describes in its tokenizer.* metadata. */
export function ggufTokenizer(gguf: GgufFile): TextTokenizer {
  const file = gguf.path;
  const model = gguf.get('tokenizer.ggml.model');
  if (model !== 'gpt2') throw new InputError(file, 'tokenizer.ggml.model', `"gpt2" (byte-level BPE; found ${JSON.stringify(model ?? null)})`);
  const tokens = strings(gguf.get('tokenizer.ggml.tokens'));
  if (!tokens) throw new InputError(file, 'tokenizer.ggml.tokens', 'an array of token strings');
  const merges = strings(gguf.get('tokenizer.ggml.merges'));
  if (!merges) throw new InputError(file, 'tokenizer.ggml.merges', 'an array of "left right" merge strings');
  const typesRaw = gguf.get('tokenizer.ggml.token_type');
  const types = Array.isArray(typesRaw) ? typesRaw.map(Number) : tokens.map(() => TOKEN_TYPE.NORMAL);
  if (types.length !== tokens.length) throw new InputError(file, 'tokenizer.ggml.token_type', `one type per token (${tokens.length}; found ${types.length})`);

  const vocab: Record<string, number> = {};
  const added: Record<string, unknown>[] = [];
  tokens.forEach((token, id) => {
    if (types[id] === TOKEN_TYPE.CONTROL || types[id] === TOKEN_TYPE.USER_DEFINED) {
      added.push({ id, content: token, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[id] === TOKEN_TYPE.CONTROL });
    }
    if (!(token in vocab)) vocab[token] = id;
  });
  const id = (key: string): number | null => {
    const v = gguf.get(`tokenizer.ggml.${key}`);
    return typeof v === 'number' && v >= 0 && v < tokens.length ? v : null;
  };
  const bos = id('bos_token_id');
  const addBos = gguf.get('tokenizer.ggml.add_bos_token') === true && bos !== null;
  const pre = gguf.get('tokenizer.ggml.pre');
  const json = {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: preTokenizer(typeof pre === 'string' ? pre : 'default', file),
    post_processor: addBos
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: tokens[bos], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [{ SpecialToken: { id: tokens[bos], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { [tokens[bos]]: { id: tokens[bos], ids: [bos], tokens: [tokens[bos]] } },
        }
      : byteLevel(true),
    decoder: byteLevel(true),
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
  const config: Record<string, unknown> = {};
  for (const [field, key] of [['bos_token', 'bos_token_id'], ['eos_token', 'eos_token_id'], ['unk_token', 'unknown_token_id'], ['pad_token', 'padding_token_id']]) {
    const tokenId = id(key);
    if (tokenId !== null) config[field] = tokens[tokenId];
  }
  const template = gguf.get('tokenizer.chat_template');
  const templates = typeof template === 'string' ? ChatTemplates.fromConfigValue(template, `${file}: tokenizer.chat_template`) : null;
  return TextTokenizer.fromJSON(json, config, file, templates);
}
