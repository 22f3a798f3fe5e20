import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI, { APIError } from 'openai';
import { serveModels, type ServeHandle } from '../../src/providers/server.js';
import type { ChatModel, ChatRequest, CompletionRequest } from '../../src/providers/types.js';

/** Answers by reversing the last message's words, so every field that reaches it is visible in the reply. */
const reverser: ChatModel & { seen: (ChatRequest | CompletionRequest)[] } = {
  id: 'reverser',
  seen: [],
  async chat(request) {
    this.seen.push(request);
    const words = request.messages.at(-1)!.content.split(' ').reverse();
    return {
      model: 'reverser',
      cached: false,
      usage: { promptTokens: 3, completionTokens: words.length },
      choices: Array.from({ length: request.n ?? 1 }, (_, i) => ({
        text: `${words.join(' ')} #${i}`,
        finishReason: 'stop' as const,
        logprobs: request.logprobs ? [...words, `#${i}`].map((w, j) => ({ token: (j ? ' ' : '') + w, logprob: -j / 10, top: [{ token: 'x', logprob: -3 }].slice(0, request.topLogprobs ?? 0) })) : undefined,
      })),
    };
  },
  async complete(request) {
    this.seen.push(request);
    return { model: 'reverser', cached: false, usage: { promptTokens: 1, completionTokens: 2 }, choices: [{ text: ' done.', finishReason: 'length', logprobs: [{ token: ' done', logprob: -0.5, top: [] }, { token: '.', logprob: -0.25, top: [] }] }] };
  },
  async embed(texts) {
    return texts.map((t) => [t.length, 1]);
  },
};

let server: ServeHandle;
let client: OpenAI;
before(async () => {
  server = await serveModels({ reverser }, { accessLog: false });
  client = new OpenAI({ baseURL: server.url, apiKey: 'unused', maxRetries: 0 });
});
after(() => server.close());

test('binds to 127.0.0.1 by default and lists its models', async () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['reverser']);
});

test('chat completions pass sampling parameters and return n choices with logprobs', async () => {
  const reply = await client.chat.completions.create({
    model: 'reverser',
    messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'one two three' }],
    n: 2,
    temperature: 0.3,
    top_p: 0.9,
    max_tokens: 7,
    seed: 11,
    stop: ['END'],
    logprobs: true,
    top_logprobs: 1,
  });
  assert.deepEqual(reply.choices.map((c) => c.message.content), ['three two one #0', 'three two one #1']);
  assert.equal(reply.choices[0].logprobs?.content?.[1].token, ' two');
  assert.equal(reply.choices[0].logprobs?.content?.[1].top_logprobs[0].token, 'x');
  assert.equal(reply.usage?.completion_tokens, 3);
  const seen = reverser.seen.at(-1) as ChatRequest;
  assert.deepEqual([seen.temperature, seen.topP, seen.maxTokens, seen.seed, seen.stop, seen.messages[0].role], [0.3, 0.9, 7, 11, ['END'], 'system']);
});

test('streaming sends the reply as chunks that add up to the whole text', async () => {
  const stream = await client.chat.completions.create({ model: 'reverser', messages: [{ role: 'user', content: 'a b c' }], stream: true });
  let text = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, 'c b a #0');
  assert.equal(finish, 'stop');
});

test('completions and embeddings', async () => {
  const completion = await client.completions.create({ model: 'reverser', prompt: 'Once', max_tokens: 2, logprobs: 1 });
  assert.equal(completion.choices[0].text, ' done.');
  assert.deepEqual(completion.choices[0].logprobs?.text_offset, [0, 5]);
  const embedding = await client.embeddings.create({ model: 'reverser', input: ['abc', 'hello'] });
  assert.deepEqual(embedding.data.map((d) => d.embedding), [[3, 1], [5, 1]]);
});

test('bad requests get OpenAI-shaped 400 errors naming the field', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'reverser', messages: [], temperature: 0 }),
    (error: APIError) => error.status === 400 && /messages/.test(error.message),
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'reverser', messages: [{ role: 'user', content: 'x' }], temperature: 5 }),
    (error: APIError) => error.status === 400 && /temperature/.test(error.message),
  );
});

test('a full queue answers 503 with Retry-After; a request past its deadline gets 504 and leaves the queue', async () => {
  // a model that answers only when told to, so the queue state is known exactly
  const waiting: (() => void)[] = [];
  const held: ChatModel = {
    id: 'held',
    chat: () => new Promise((done) => waiting.push(() => done({ model: 'held', cached: false, usage: { promptTokens: 1, completionTokens: 1 }, choices: [{ text: 'ok', finishReason: 'stop' }] }))),
  };
  const lines: string[] = [];
  const small = await serveModels({ held }, { concurrency: 1, maxQueue: 1, timeoutMs: 60_000, accessLog: (line) => lines.push(line) });
  const c = new OpenAI({ baseURL: small.url, apiKey: 'unused', maxRetries: 0 });
  try {
    const ask = () => c.chat.completions.create({ model: 'held', messages: [{ role: 'user', content: 'x' }] });
    const first = ask(); // running
    const second = ask(); // waiting
    const health = async () => (await fetch(small.url.replace(/\/v1$/, '/health'))).json();
    while ((await health()).waiting < 1) await new Promise((r) => setTimeout(r, 5));
    await assert.rejects(ask(), (e: APIError) => e.status === 503 && e.headers?.get('retry-after') === '1');
    waiting.shift()!();
    assert.equal((await first).choices[0].message.content, 'ok');
    while (waiting.length < 1) await new Promise((r) => setTimeout(r, 5));
    waiting.shift()!();
    assert.equal((await second).choices[0].message.content, 'ok');
    assert.equal(lines.filter((l) => / 503 /.test(l)).length, 1);
  } finally {
    await small.close();
  }
  const never: ChatModel = { id: 'never', chat: () => new Promise(() => undefined) };
  const slow = await serveModels({ never }, { timeoutMs: 200, accessLog: false });
  try {
    const c2 = new OpenAI({ baseURL: slow.url, apiKey: 'unused', maxRetries: 0 });
    await assert.rejects(c2.chat.completions.create({ model: 'never', messages: [{ role: 'user', content: 'x' }] }), (e: APIError) => e.status === 504);
  } finally {
    await slow.close();
  }
});

test('text content parts are joined; tools, json_object, unknown models and oversized bodies are refused', async () => {
  await client.chat.completions.create({ model: 'reverser', messages: [{ role: 'user', content: [{ type: 'text', text: 'one ' }, { type: 'text', text: 'two' }] }] });
  assert.equal((reverser.seen.at(-1) as ChatRequest).messages[0].content, 'one two');
  const json = { name: 'v', schema: { type: 'object' } };
  await client.chat.completions.create({ model: 'reverser', messages: [{ role: 'user', content: 'a' }], response_format: { type: 'json_schema', json_schema: json } });
  assert.deepEqual((reverser.seen.at(-1) as ChatRequest).jsonSchema, json, 'json_schema is passed to the model, which honours or refuses it');
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'a' }] }), (e: APIError) => e.status === 404 && /served models: reverser/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model: 'reverser', messages: [{ role: 'user', content: 'a' }], tools: [{ type: 'function', function: { name: 'f' } }] }),
    (e: APIError) => e.status === 400 && /tool calling is not supported/.test(e.message),
  );
  await assert.rejects(client.chat.completions.create({ model: 'reverser', messages: [{ role: 'user', content: 'x'.repeat(2 * 1024 * 1024) }] }), (e: APIError) => e.status === 413);
  const response = await fetch(server.url + '/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
  assert.equal(response.status, 400);
  assert.equal(typeof (await response.json()).error.message, 'string');
});
