/**
 * tokenizer.json through Hugging Face's own JavaScript tokenizer (`@huggingface/tokenizers`), with the
 * special tokens of tokenizer_config.json resolved to ids, and the chat template attached.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { InputError } from '../../core/errors.js';
import { readStructured } from '../../core/load.js';
import { type TemplateMessage, ChatTemplates, type RenderOptions } from './chat-template.js';

export interface SpecialToken {
  content: string;
  id: number;
}

export interface AddedTokenInfo {
  id: number;
  content: string;
  special: boolean;
}

/** tokenizer_config.json writes special tokens as a string or as an AddedToken object. */
function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return null;
}

export class TextTokenizer {
  readonly bos: SpecialToken | null;
  readonly eos: SpecialToken | null;
  readonly pad: SpecialToken | null;
  readonly unk: SpecialToken | null;
  /** Number of ids (model vocabulary plus added tokens): the embedding needs at least this many rows. */
  readonly vocabSize: number;
  readonly addedTokens: AddedTokenInfo[];
  private readonly specialIds: Set<number>;

  private constructor(
    private readonly tokenizer: Tokenizer,
    /** The parsed tokenizer.json (the GGUF writer exports its vocabulary and merges). */
    readonly tokenizerJson: Record<string, unknown>,
    readonly config: Record<string, unknown>,
    readonly chatTemplates: ChatTemplates | null,
    readonly source: string,
  ) {
    const resolve = (field: string): SpecialToken | null => {
      const content = tokenContent(config[field]);
      if (content === null) return null;
      const id = tokenizer.token_to_id(content);
      if (id === undefined) throw new InputError(join(source, 'tokenizer_config.json'), field, `a token of tokenizer.json (found "${content}", not in the vocabulary)`);
      return { content, id };
    };
    this.bos = resolve('bos_token');
    this.eos = resolve('eos_token');
    this.pad = resolve('pad_token');
    this.unk = resolve('unk_token');
    this.addedTokens = [...tokenizer.get_added_tokens_decoder()].map(([id, t]) => ({ id, content: t.content, special: t.special }));
    this.specialIds = new Set(this.addedTokens.filter((t) => t.special).map((t) => t.id));
    const vocab = tokenizer.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
  }

  /**
   * Loads tokenizer.json, tokenizer_config.json (optional) and the chat template (tokenizer_config's
   * `chat_template`, or `chat_template.jinja`) from a model directory.
   */
  static load(dir: string): TextTokenizer {
    const file = join(dir, 'tokenizer.json');
    if (!existsSync(file)) throw new InputError(file, '', 'file not found (the engine needs a fast tokenizer: tokenizer.json)');
    const configFile = join(dir, 'tokenizer_config.json');
    const config = existsSync(configFile) ? readStructured(configFile) : {};
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new InputError(configFile, '', 'a JSON object');
    return TextTokenizer.fromJSON(readStructured(file), config as Record<string, unknown>, dir, ChatTemplates.load(dir, config as Record<string, unknown>));
  }

  /** Builds a tokenizer from parsed tokenizer.json / tokenizer_config.json objects; `source` names them in errors. */
  static fromJSON(tokenizerJson: unknown, config: Record<string, unknown> = {}, source = '.', chatTemplates: ChatTemplates | null = null): TextTokenizer {
    const file = join(source, 'tokenizer.json');
    const json = tokenizerJson as { model?: unknown; added_tokens?: unknown };
    if (typeof json !== 'object' || json === null || typeof json.model !== 'object' || json.model === null) {
      throw new InputError(file, 'model', 'a tokenizer model object (is this a tokenizer.json?)');
    }
    let tokenizer: Tokenizer;
    try {
      // Decoding must invert encoding unless the model's config asks otherwise (the package defaults to cleaning up spaces).
      tokenizer = new Tokenizer({ added_tokens: [], ...json }, { ...config, clean_up_tokenization_spaces: config.clean_up_tokenization_spaces ?? false });
    } catch (error) {
      throw new InputError(file, '', `a tokenizer @huggingface/tokenizers supports (${(error as Error).message})`);
    }
    return new TextTokenizer(tokenizer, json as Record<string, unknown>, config, chatTemplates, source);
  }

  /** Token ids of `text`; the post-processor adds BOS etc. unless addSpecialTokens is false. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Ids and the token strings they stand for. */
  encodeWithTokens(text: string, options: { addSpecialTokens?: boolean } = {}): { ids: number[]; tokens: string[] } {
    const { ids, tokens } = this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true });
    return { ids, tokens };
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /** Whether encode() puts BOS in front (the post-processor's job in tokenizer.json). */
  addsBos(): boolean {
    if (!this.bos) return false;
    return this.encode('a')[0] === this.bos.id && this.encode('a', { addSpecialTokens: false })[0] !== this.bos.id;
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Renders the chat template (see ChatTemplates.render) with this tokenizer's special tokens. */
  applyChatTemplate(messages: TemplateMessage[], options: RenderOptions = {}): string {
    if (!this.chatTemplates) throw new InputError(join(this.source, 'tokenizer_config.json'), 'chat_template', 'a chat template (this model has none; it is not a chat model)');
    const specials: Record<string, string> = {};
    for (const field of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const content = tokenContent(this.config[field]);
      if (content !== null) specials[field] = content;
    }
    return this.chatTemplates.render(messages, { ...options, variables: { ...specials, ...options.variables } });
  }

  /**
   * Token ids of a rendered conversation. As in transformers, the template writes BOS itself, so the
   * text is encoded without adding special tokens.
   */
  encodeChat(messages: TemplateMessage[], options: RenderOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }
}
