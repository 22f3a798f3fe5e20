/**
 * A small BPE trainer that emits a Hugging Face tokenizer.json, for the project's own tiny models and
 * the tokenizer fixtures. Two styles, both as the Hub ships them:
 * - `byte-level` (GPT-2 / Llama-3 / SmolLM / Qwen): text -> UTF-8 bytes shown as GPT-2's printable
 *   byte alphabet, merges over those; every string is encodable.
 * - `metaspace` (Llama-2 / Mistral, SentencePiece converted): spaces become '▁', merges over characters,
 *   characters outside the vocabulary fall back to <0xNN> byte tokens.
 * Training is plain BPE: repeatedly merge the most frequent adjacent pair within pre-tokenized words.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** GPT-2's pre-tokenization pattern (what the ByteLevel pre-tokenizer applies with use_regex). */
const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
/** Llama-3's split pattern, as its tokenizer.json writes it (Oniguruma syntax, for the Split pre-tokenizer). */
export const LLAMA3_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's byte -> printable character table (bytes_to_unicode). */
export function byteLevelAlphabet(): string[] {
  const table: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table.push(String.fromCodePoint(printable ? b : 256 + extra++));
  }
  return table;
}

export interface BpeTrainOptions {
  /** Target vocabulary size including base symbols and special tokens. */
  vocabSize: number;
  style: 'byte-level' | 'metaspace';
  /** Special tokens: appended after the vocabulary (byte-level) or placed first (metaspace, e.g. <unk> <s> </s>). */
  specialTokens?: string[];
  /** A pair must occur at least this often to be merged (default 2). */
  minFrequency?: number;
  /** Byte-level only: GPT-2's built-in regex, or Llama-3's Split pattern in front of ByteLevel. */
  preTokenizer?: 'gpt2' | 'llama3';
  /** A special token the post-processor puts in front of every encoding (Llama's BOS). */
  bosToken?: string;
  /** Metaspace: the unknown token (must be one of specialTokens; default '<unk>'). */
  unkToken?: string;
}

/** The parts of tokenizer.json this module writes; the file format is Hugging Face's. */
export interface TokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: { id: number; content: string; single_word: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean; special: boolean }[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: string | null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}

interface Word {
  symbols: number[];
  count: number;
}

/** Trains a BPE tokenizer on `texts` and returns its tokenizer.json. Deterministic for a given input. */
export function trainBpeTokenizer(texts: Iterable<string>, options: BpeTrainOptions): TokenizerJson {
  const specials = options.specialTokens ?? [];
  const symbols: string[] = [];
  const counts = new Map<string, number>();
  const addWord = (w: string) => counts.set(w, (counts.get(w) ?? 0) + 1);

  if (options.style === 'byte-level') {
    const alphabet = byteLevelAlphabet();
    symbols.push(...alphabet);
    const encoder = new TextEncoder();
    for (const text of texts) {
      for (const m of text.matchAll(GPT2_PATTERN)) addWord([...encoder.encode(m[0])].map((b) => alphabet[b]).join(''));
    }
  } else {
    // SentencePiece order: specials, the 256 byte-fallback tokens, then characters by frequency.
    symbols.push(...specials);
    for (let b = 0; b < 256; b++) symbols.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    for (const text of texts) {
      for (const m of ('▁' + text.replaceAll(' ', '▁')).matchAll(/▁?[^▁]+|▁/gu)) addWord(m[0]);
    }
    const chars = new Map<string, number>();
    for (const [w, n] of counts) for (const c of w) chars.set(c, (chars.get(c) ?? 0) + n);
    const budget = options.vocabSize - symbols.length;
    const byFrequency = [...chars].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([c]) => c);
    symbols.push(...byFrequency.slice(0, Math.max(0, budget)));
  }

  const index = new Map(symbols.map((s, i) => [s, i]));
  const words: Word[] = [...counts].map(([w, count]) => ({
    count,
    // Characters outside the kept alphabet (metaspace) stay as -1 and never take part in a merge.
    symbols: [...w].map((c) => index.get(c) ?? -1),
  }));
  const extraSpecials = options.style === 'byte-level' ? specials.length : 0;
  const merges = learnMerges(words, symbols, options.vocabSize - extraSpecials, options.minFrequency ?? 2);

  const vocab: Record<string, number> = {};
  symbols.forEach((s, i) => (vocab[s] = i));
  const specialIds = options.style === 'byte-level' ? specials.map((_, i) => symbols.length + i) : specials.map((_, i) => i);
  const added_tokens = specials.map((content, i) => ({
    id: specialIds[i],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  // Metaspace specials are already in `symbols` (SentencePiece keeps control tokens in the vocabulary).
  if (options.style === 'byte-level') specials.forEach((s, i) => (vocab[s] = specialIds[i]));

  const bos = options.bosToken;
  if (bos !== undefined && !specials.includes(bos)) throw new Error(`bosToken ${bos} must be one of specialTokens`);
  const bosProcessor = bos === undefined ? null : {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [bos]: { id: bos, ids: [vocab[bos]], tokens: [bos] } },
  };
  const model = (unk: string | null, byteFallback: boolean): TokenizerJson['model'] => ({
    type: 'BPE',
    dropout: null,
    unk_token: unk,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: byteFallback,
    byte_fallback: byteFallback,
    ignore_merges: false,
    vocab,
    merges,
  });

  if (options.style === 'byte-level') {
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    const llama3 = options.preTokenizer === 'llama3';
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens,
      normalizer: null,
      pre_tokenizer: llama3
        ? { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: LLAMA3_SPLIT_PATTERN }, behavior: 'Isolated', invert: false }, { ...byteLevel, use_regex: false }] }
        : byteLevel,
      post_processor: bosProcessor ? { type: 'Sequence', processors: [{ ...byteLevel, trim_offsets: false }, bosProcessor] } : byteLevel,
      decoder: byteLevel,
      model: model(null, false),
    };
  }
  const unk = options.unkToken ?? '<unk>';
  if (!specials.includes(unk)) throw new Error(`metaspace tokenizers need the unknown token ${unk} among specialTokens`);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: bosProcessor,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: model(unk, true),
  };
}

/**
 * Merges the most frequent adjacent pair until `symbols` reaches `targetSize` or no pair occurs
 * `minFrequency` times. Pair counts are updated incrementally, touching only words that contain the
 * merged pair; ties go to the pair whose strings sort first, so training is deterministic.
 */
function learnMerges(words: Word[], symbols: string[], targetSize: number, minFrequency: number): [string, string][] {
  const key = (a: number, b: number) => a * 2 ** 21 + b;
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const count = (word: Word, wordIndex: number, sign: 1 | -1) => {
    const s = word.symbols;
    for (let i = 0; i + 1 < s.length; i++) {
      if (s[i] < 0 || s[i + 1] < 0) continue;
      const k = key(s[i], s[i + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * word.count);
      if (sign > 0) {
        let set = pairWords.get(k);
        if (!set) pairWords.set(k, (set = new Set()));
        set.add(wordIndex);
      }
    }
  };
  words.forEach((w, i) => count(w, i, 1));

  const merges: [string, string][] = [];
  while (symbols.length < targetSize) {
    let best = -1;
    let bestCount = 0;
    for (const [k, n] of pairCount) {
      if (n > bestCount || (n === bestCount && n > 0 && comparePairs(k, best) < 0)) {
        best = k;
        bestCount = n;
      }
    }
    if (best < 0 || bestCount < minFrequency) break;
    const a = Math.floor(best / 2 ** 21);
    const b = best % 2 ** 21;
    const merged = symbols.length;
    symbols.push(symbols[a] + symbols[b]);
    merges.push([symbols[a], symbols[b]]);
    for (const wi of pairWords.get(best) ?? []) {
      const word = words[wi];
      count(word, wi, -1);
      const out: number[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === a && word.symbols[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(word.symbols[i]);
      }
      word.symbols = out;
      count(word, wi, 1);
    }
    pairCount.delete(best);
    pairWords.delete(best);
  }
  return merges;

  function comparePairs(k1: number, k2: number): number {
    const [a1, b1, a2, b2] = [Math.floor(k1 / 2 ** 21), k1 % 2 ** 21, Math.floor(k2 / 2 ** 21), k2 % 2 ** 21];
    const x = symbols[a1] + '\u0000' + symbols[b1];
    const y = symbols[a2] + '\u0000' + symbols[b2];
    return x < y ? -1 : x > y ? 1 : 0;
  }
}

/** ChatML as SmolLM2/Qwen write it, without a default system prompt: a template for the project's own models. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/**
 * Writes tokenizer.json and tokenizer_config.json into a model directory, e.g. for a trained
 * tokenizer: `writeTokenizerFiles(dir, json, { eos_token: '<|im_end|>', chat_template: CHATML_TEMPLATE })`.
 */
export function writeTokenizerFiles(dir: string, tokenizer: TokenizerJson, tokenizerConfig: Record<string, unknown> = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer) + '\n');
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ clean_up_tokenization_spaces: false, ...tokenizerConfig }, null, 2) + '\n');
}
