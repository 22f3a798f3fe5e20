/** The local engine as a ChatModel, through src/providers' createChatModel like every stage uses it. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createChatModel } from '../../../src/providers/index.js';
import { LocalChatModel } from '../../../src/engine/provider.js';
import { parseLocalModelRef } from '../../../src/providers/index.js';
import { modelDir } from './fixtures.js';

const dir = modelDir('llama');
const messages = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'Hello there' },
];

describe('local provider', () => {
  const local = LocalChatModel.open(parseLocalModelRef(`local:${dir}`));
  after(() => local.close());

  test('answers through createChatModel with the chat template applied', async () => {
    const chat = await createChatModel(`local:${dir}`, { noCache: true });
    try {
      const res = await chat.chat({ messages, temperature: 0, maxTokens: 6 });
      const rendered = '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n';
      const prompt = local.tokenizer.encode(rendered, { addSpecialTokens: false });
      assert.equal(res.usage.promptTokens, prompt.length);
      const [greedy] = await local.model.generate([prompt], { temperature: 0, maxTokens: 6, stopTokens: local.model.config.eosTokenIds });
      assert.equal(res.choices[0].text, local.tokenizer.decode(greedy.tokens, { skipSpecialTokens: true }));
      assert.equal(res.usage.completionTokens, greedy.tokens.length);
      assert.match(chat.id, /^local:/);
    } finally {
      await chat.close?.();
    }
  });

  test('n samples are seeded: the same seed repeats, another seed differs', async () => {
    const ask = (seed: number) => local.chat({ messages, temperature: 1, n: 3, seed, maxTokens: 8 });
    const a = await ask(1);
    const b = await ask(1);
    const c = await ask(2);
    assert.equal(a.choices.length, 3);
    assert.deepEqual(a.choices.map((x) => x.text), b.choices.map((x) => x.text));
    assert.notDeepEqual(a.choices.map((x) => x.text), c.choices.map((x) => x.text));
    assert.ok(new Set(a.choices.map((x) => x.text)).size > 1, 'three samples at temperature 1 should not all agree');
  });

  test('a stop string ends the reply before it', async () => {
    const full = await local.chat({ messages, temperature: 0, maxTokens: 12 });
    const text = full.choices[0].text;
    assert.ok(text.length > 4, `reply too short to cut: ${JSON.stringify(text)}`);
    const stop = text.slice(3, 5);
    const cut = await local.chat({ messages, temperature: 0, maxTokens: 12, stop: [stop] });
    assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(stop)));
    assert.equal(cut.choices[0].finishReason, 'stop');
    assert.ok(cut.usage.completionTokens < full.usage.completionTokens);
  });

  test('logprobs with top alternatives; greedy picks the top one', async () => {
    const res = await local.chat({ messages, temperature: 0, maxTokens: 4, logprobs: true, topLogprobs: 3 });
    const lps = res.choices[0].logprobs!;
    assert.equal(lps.length, res.usage.completionTokens);
    for (const lp of lps) {
      assert.equal(lp.top.length, 3);
      assert.equal(lp.top[0].token, lp.token);
      assert.ok(Math.abs(lp.top[0].logprob - lp.logprob) < 1e-6);
      assert.ok(lp.top[0].logprob >= lp.top[1].logprob && lp.top[1].logprob >= lp.top[2].logprob && lp.logprob <= 0);
    }
  });

  test('concurrent requests share a batch and answer as they would alone', async () => {
    const requests = [
      { messages: [{ role: 'user' as const, content: 'Hi' }], temperature: 0, maxTokens: 6 },
      { messages, temperature: 1, seed: 5, n: 2, maxTokens: 9 },
      { messages: [{ role: 'user' as const, content: 'A much longer question than the others here' }], temperature: 0.8, topK: 5, seed: 2, maxTokens: 4 },
    ];
    const alone = [];
    for (const r of requests) alone.push(await local.chat(r));
    const together = await Promise.all(requests.map((r) => local.chat(r)));
    assert.deepEqual(together.map((r) => r.choices.map((c) => c.text)), alone.map((r) => r.choices.map((c) => c.text)));
    assert.deepEqual(together.map((r) => r.usage), alone.map((r) => r.usage));
  });

  test('countTokens and embed', async () => {
    assert.equal(local.countTokens('hello'), local.tokenizer.encode('hello', { addSpecialTokens: false }).length);
    const [a, b] = await local.embed(['hello world', 'something else entirely']);
    assert.equal(a.length, 64);
    assert.notDeepEqual(a, b);
  });

  test('local refs: adapters with scales, relative paths against cwd', () => {
    const ref = parseLocalModelRef('local:models/m+ad/a*0.5+ad/b', '/base');
    assert.deepEqual(ref.adapters, [
      { path: '/base/ad/a', scale: 0.5 },
      { path: '/base/ad/b', scale: 1 },
    ]);
    assert.equal(ref.path, '/base/models/m');
  });
});
