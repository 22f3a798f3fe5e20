import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { InputError } from '../../../src/core/errors.js';
import { CHATML_TEMPLATE, ChatTemplates, TextTokenizer, byteLevelAlphabet, loadGenerationConfig, parseGenerationConfig, trainBpeTokenizer, writeTokenizerFiles } from '../../../src/engine/io/index.js';

const FIXTURES = 'test/fixtures/tokenizers';
const scratch = mkdtempSync(join(tmpdir(), 'tokenizer-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Expected {
  encodings: { text: string; addSpecialTokens: boolean; ids: number[]; tokens: string[]; decoded: string; decodedSkippingSpecial: string }[];
  chats: { messages: { role: string; content: string }[]; addGenerationPrompt: boolean; tools?: unknown[]; rendered: string; ids: number[] }[];
}
const expected = (name: string): Expected => JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8'));

for (const name of ['chatml', 'llama3', 'mistral']) {
  describe(`tokenizer fixture ${name} (expectations from the Rust reference)`, () => {
    const tokenizer = TextTokenizer.load(join(FIXTURES, name));
    const { encodings, chats } = expected(name);

    test('encodes every sample exactly as the reference, with and without special tokens', () => {
      for (const e of encodings) {
        const got = tokenizer.encodeWithTokens(e.text, { addSpecialTokens: e.addSpecialTokens });
        assert.deepEqual(got.tokens, e.tokens, `tokens of ${JSON.stringify(e.text)}`);
        assert.deepEqual(got.ids, e.ids, `ids of ${JSON.stringify(e.text)}`);
      }
    });

    test('decodes as the reference does, keeping or skipping special tokens', () => {
      for (const e of encodings) {
        assert.equal(tokenizer.decode(e.ids), e.decoded, `decode of ${JSON.stringify(e.text)}`);
        assert.equal(tokenizer.decode(e.ids, { skipSpecialTokens: true }), e.decodedSkippingSpecial, `decode (skip) of ${JSON.stringify(e.text)}`);
      }
    });

    test('renders the chat template to the hand-written expected text and encodes it like the reference', () => {
      for (const chat of chats) {
        const rendered = tokenizer.applyChatTemplate(chat.messages, { addGenerationPrompt: chat.addGenerationPrompt, tools: chat.tools });
        assert.equal(rendered, chat.rendered);
        assert.deepEqual(tokenizer.encodeChat(chat.messages, { addGenerationPrompt: chat.addGenerationPrompt, tools: chat.tools }), chat.ids);
      }
    });
  });
}

describe('tokenizer loading', () => {
  test('resolves special tokens from tokenizer_config.json to ids and knows which ids are special', () => {
    const chatml = TextTokenizer.load(join(FIXTURES, 'chatml'));
    assert.deepEqual(chatml.eos, { content: '<|im_end|>', id: 419 });
    assert.equal(chatml.tokenToId('<|im_start|>'), 418);
    assert.equal(chatml.idToToken(417), '<|endoftext|>');
    assert.ok(chatml.isSpecial(419));
    assert.ok(!chatml.isSpecial(100));
    assert.equal(chatml.vocabSize, 420);
    assert.deepEqual(chatml.addedTokens.map((t) => t.content), ['<|endoftext|>', '<|im_start|>', '<|im_end|>']);
    const mistral = TextTokenizer.load(join(FIXTURES, 'mistral'));
    assert.deepEqual([mistral.bos, mistral.eos, mistral.unk, mistral.pad], [{ content: '<s>', id: 1 }, { content: '</s>', id: 2 }, { content: '<unk>', id: 0 }, null]);
  });

  test('a round trip through encode and decode is exact for every fixture on mixed text', () => {
    const text = 'Zoë said: "I\'m   fine!"\n\tnext line — 3.14159 ✓ 🙂 日本';
    for (const name of ['chatml', 'llama3', 'mistral']) {
      const tokenizer = TextTokenizer.load(join(FIXTURES, name));
      assert.equal(tokenizer.decode(tokenizer.encode(text), { skipSpecialTokens: true }), text, name);
    }
  });

  test('missing or broken files are InputErrors naming the file', () => {
    assert.throws(() => TextTokenizer.load(scratch), (e: unknown) => e instanceof InputError && e.message.includes(join(scratch, 'tokenizer.json')));
    writeFileSync(join(scratch, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'NoSuchModel' }, added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null }));
    assert.throws(() => TextTokenizer.load(scratch), /tokenizer\.json: a tokenizer @huggingface\/tokenizers supports/);
    cpSync(join(FIXTURES, 'chatml', 'tokenizer.json'), join(scratch, 'tokenizer.json'));
    writeFileSync(join(scratch, 'tokenizer_config.json'), JSON.stringify({ eos_token: { content: '<|nope|>' } }));
    assert.throws(() => TextTokenizer.load(scratch), /tokenizer_config\.json: eos_token: a token of tokenizer\.json \(found "<\|nope\|>"/);
    writeFileSync(join(scratch, 'tokenizer_config.json'), JSON.stringify({ eos_token: { content: '<|im_end|>' } }));
    const base = TextTokenizer.load(scratch);
    assert.equal(base.eos?.id, 419);
    assert.throws(() => base.applyChatTemplate([{ role: 'user', content: 'x' }]), /chat_template: a chat template \(this model has none/);
  });
});

describe('chat templates', () => {
  test('chat_template.jinja wins over tokenizer_config.json, as in transformers', () => {
    const dir = join(scratch, 'jinja');
    cpSync(join(FIXTURES, 'chatml'), dir, { recursive: true });
    writeFileSync(join(dir, 'chat_template.jinja'), '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{{ eos_token }}');
    const tokenizer = TextTokenizer.load(dir);
    assert.equal(tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }]), '[user]hi<|im_end|>');
  });

  test('named templates: default, tool_use when tools are given, an explicit name, unknown names listed', () => {
    const templates = ChatTemplates.fromConfigValue([
      { name: 'default', template: 'D{{ messages[0].content }}' },
      { name: 'tool_use', template: 'T{{ tools | length }}' },
      { name: 'rag', template: 'R' },
    ]);
    assert.ok(templates);
    const messages = [{ role: 'user', content: 'q' }];
    assert.equal(templates.render(messages), 'Dq');
    assert.equal(templates.render(messages, { tools: [{}, {}] }), 'T2');
    assert.equal(templates.render(messages, { templateName: 'rag' }), 'R');
    assert.throws(() => templates.render(messages, { templateName: 'x' }), /a template named "x" \(available: default, tool_use, rag\)/);
  });

  test('raise_exception in a template becomes an InputError; a template that does not parse is named', () => {
    const mistral = TextTokenizer.load(join(FIXTURES, 'mistral'));
    assert.throws(
      () => mistral.applyChatTemplate([{ role: 'assistant', content: 'first' }]),
      (e: unknown) => e instanceof InputError && /Conversation roles must alternate/.test(e.message) && e.message.includes('tokenizer_config.json'),
    );
    assert.throws(() => ChatTemplates.fromConfigValue('{% for x in %}', 'cfg.json'), /cfg\.json: chat_template: a Jinja template/);
    assert.throws(() => ChatTemplates.fromConfigValue(42, 'cfg.json'), /chat_template: a template string or a list/);
  });

  test('extra variables reach the template (e.g. enable_thinking)', () => {
    const templates = ChatTemplates.fromConfigValue("{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>{% endif %}ok");
    assert.equal(templates?.render([], { variables: { enable_thinking: false } }), '<think>\n\n</think>ok');
    assert.equal(templates?.render([]), 'ok');
  });
});

describe('generation_config.json', () => {
  test('reads sampling defaults and eos lists; absent values are transformers defaults', () => {
    const g = loadGenerationConfig(join(FIXTURES, 'chatml'));
    assert.deepEqual(
      { ...g, source: null },
      { doSample: true, temperature: 0.7, topP: 0.8, topK: 20, minP: null, repetitionPenalty: 1.05, maxNewTokens: null, maxLength: null, bosTokenId: 1, eosTokenIds: [2, 0], padTokenId: null, source: null },
    );
    assert.equal(loadGenerationConfig(join(FIXTURES, 'mistral')).eosTokenIds[0], 2);
    const none = loadGenerationConfig(scratch);
    assert.deepEqual([none.doSample, none.temperature, none.topP, none.topK, none.source], [false, 1, 1, 50, null]);
    assert.throws(() => parseGenerationConfig({ top_p: 2 }, 'g.json'), /g\.json: top_p/);
  });
});

describe('BPE trainer', () => {
  const corpus = ['the cat sat on the mat. the cat ate.', 'a hat, a cat, the mat!', 'that thin thing'];

  test('byte-level: learns the most frequent merges first and covers all 256 bytes', () => {
    const json = trainBpeTokenizer(corpus, { style: 'byte-level', vocabSize: 262, specialTokens: ['<|endoftext|>'] });
    assert.equal(byteLevelAlphabet().length, 256);
    assert.equal(new Set(byteLevelAlphabet()).size, 256);
    assert.equal(json.model.vocab['Ġ'], 32);
    // "at" occurs 9 times (cat x3, sat, mat x2, ate, hat, that), "th" 7 times, "Ġt" 5 times.
    assert.deepEqual(json.model.merges.slice(0, 2), [['a', 't'], ['t', 'h']]);
    assert.equal(Object.keys(json.model.vocab).length, 262);
    assert.deepEqual(json.added_tokens.map((t) => [t.id, t.content, t.special]), [[261, '<|endoftext|>', true]]);
    const tokenizer = TextTokenizer.fromJSON(json);
    const ids = tokenizer.encode('the cat');
    assert.ok(ids.length < 'the cat'.length, `merges applied (${ids.length} ids)`);
    assert.equal(tokenizer.decode(tokenizer.encode('unseen ✓ bytes 🙂')), 'unseen ✓ bytes 🙂');
    assert.deepEqual(tokenizer.encode('<|endoftext|>'), [261]);
    // Merging stops when no pair occurs twice, short of the requested size.
    const small = trainBpeTokenizer(corpus, { style: 'byte-level', vocabSize: 1000 });
    assert.ok(Object.keys(small.model.vocab).length < 1000);
  });

  test('metaspace: byte fallback for unseen characters, BOS from the post-processor', () => {
    const json = trainBpeTokenizer(corpus, { style: 'metaspace', vocabSize: 300, specialTokens: ['<unk>', '<s>', '</s>'], bosToken: '<s>' });
    assert.equal(json.model.vocab['<0x41>'], 3 + 0x41);
    const tokenizer = TextTokenizer.fromJSON(json);
    const ids = tokenizer.encode('the cat Ω');
    assert.equal(ids[0], 1);
    assert.deepEqual(ids.slice(-2), [3 + 0xce, 3 + 0xa9]);
    assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), 'the cat Ω');
  });

  test('training is deterministic', () => {
    const a = trainBpeTokenizer(corpus, { style: 'byte-level', vocabSize: 280 });
    const b = trainBpeTokenizer([...corpus], { style: 'byte-level', vocabSize: 280 });
    assert.deepEqual(a, b);
  });

  test('a trained tokenizer written with the ChatML template loads as a complete chat tokenizer', () => {
    const dir = join(scratch, 'tiny-model-tokenizer');
    const json = trainBpeTokenizer(corpus, { style: 'byte-level', vocabSize: 264, specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] });
    writeTokenizerFiles(dir, json, { eos_token: '<|im_end|>', pad_token: '<|endoftext|>', chat_template: CHATML_TEMPLATE });
    const tokenizer = TextTokenizer.load(dir);
    const text = tokenizer.applyChatTemplate([{ role: 'user', content: 'the cat' }], { addGenerationPrompt: true });
    assert.equal(text, '<|im_start|>user\nthe cat<|im_end|>\n<|im_start|>assistant\n');
    const ids = tokenizer.encodeChat([{ role: 'user', content: 'the cat' }], { addGenerationPrompt: true });
    assert.equal(ids[0], tokenizer.tokenToId('<|im_start|>'));
    assert.equal(tokenizer.decode(ids), text);
  });
});

describe('tokenizer.json variants', () => {
  test('merges written as "a b" strings (older files) encode like [a, b] pairs', () => {
    const json = JSON.parse(readFileSync(join(FIXTURES, 'llama3', 'tokenizer.json'), 'utf8'));
    const pairs = TextTokenizer.fromJSON(json);
    const strings = TextTokenizer.fromJSON({ ...json, model: { ...json.model, merges: json.model.merges.map((m: string[]) => m.join(' ')) } });
    for (const e of expected('llama3').encodings) assert.deepEqual(strings.encode(e.text), pairs.encode(e.text));
  });
});

