/**
 * The endpoint provider through the real `openai` SDK against the real loopback server: request and
 * result mapping, the retry policy on every injected fault, bounded attempts, clear errors without
 * the key, the per-endpoint concurrency limit.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, afterEach, before, describe, test } from 'node:test';
import { ProviderError } from '../../src/core/errors.js';
import { Accounting, createChatModel, EndpointUnreachableError, type ChatModel } from '../../src/providers/index.js';
import { backoffMs, defaultRetryPolicy, retryAfterMs } from '../../src/providers/retry.js';
import { startFakeServer, type FakeServer, type FakeServerOptions } from '../support/openai-server.js';
import { env, fast, KEY } from './support.js';

const user = (content: string) => [{ role: 'user' as const, content }];

/** Servers of the running test, closed after it even when an assertion fails (else the file would hang). */
const open: FakeServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});
async function serve(options: FakeServerOptions = {}): Promise<FakeServer> {
  const server = await startFakeServer(options);
  open.push(server);
  return server;
}

/** A fresh server and a model on it (no cache: these tests are about the wire). */
async function setup(options: FakeServerOptions, ref: Record<string, unknown> = {}, accounting?: Accounting) {
  const server = await serve(options);
  const model = await createChatModel({ provider: 'openai', model: 'fake-model', baseURL: server.baseURL, ...ref }, { env, noCache: true, retry: fast, accounting });
  return { server, model };
}

describe('request and result mapping', () => {
  let server: FakeServer;
  let model: ChatModel;
  before(async () => {
    server = await startFakeServer(); // shared by the block's tests, so not in `open`
    model = await createChatModel(`openai:fake-model@${server.baseURL}`, { env, noCache: true, retry: fast });
  });
  after(() => server.close());

  test('texts, n, usage, finish reasons and the sampling params on the wire', async () => {
    const result = await model.chat({ messages: user('hello there'), n: 3, temperature: 0.7, topP: 0.9, maxTokens: 50, seed: 11, stop: ['\n\n'], topK: 5, minP: 0.1, logitBias: { '42': -100 }, presencePenalty: 0.5, frequencyPenalty: 0.25 });
    assert.deepEqual(
      result.choices.map((c) => c.text),
      ['echo(0): hello there', 'echo(1): hello there', 'echo(2): hello there'],
    );
    assert.deepEqual(
      result.choices.map((c) => c.finishReason),
      ['stop', 'stop', 'stop'],
    );
    assert.equal(result.cached, false);
    assert.equal(result.model, 'fake-model');
    assert.deepEqual(result.usage, { promptTokens: 2, completionTokens: 9 });
    const sent = server.requests.at(-1)!;
    assert.equal(sent.n, 3);
    assert.equal(sent.temperature, 0.7);
    assert.equal(sent.top_p, 0.9);
    assert.equal(sent.max_tokens, 50, 'non-OpenAI servers get max_tokens');
    assert.equal(sent.seed, 11);
    assert.deepEqual(sent.stop, ['\n\n']);
    assert.equal('top_k' in sent, false, 'top_k is the engine’s; OpenAI rejects unknown params');
    assert.equal('min_p' in sent, false, 'min_p too');
    assert.deepEqual(sent.logit_bias, { '42': -100 });
    assert.equal(sent.presence_penalty, 0.5);
    assert.equal(sent.frequency_penalty, 0.25);
    assert.equal(sent.logprobs, undefined);
    assert.ok(server.authHeaders.includes(`Bearer ${KEY}`), 'the key goes in the Authorization header');
  });

  test('logprobs with top alternatives and a JSON-schema response format', async () => {
    const schema = { type: 'object', properties: { score: { type: 'number' } }, required: ['score'] };
    const result = await model.chat({ messages: user('x'), logprobs: true, topLogprobs: 5, jsonSchema: { name: 'my verdict', schema } });
    const sent = server.requests.at(-1)!;
    assert.equal(sent.logprobs, true);
    assert.equal(sent.top_logprobs, 5);
    assert.deepEqual(sent.response_format, { type: 'json_schema', json_schema: { name: 'my_verdict', schema } });
    assert.deepEqual(
      result.choices[0].logprobs!.map((t) => t.token),
      ['echo(0): ', 'x'],
    );
    assert.equal(result.choices[0].logprobs![0].logprob, -0.1);
  });

  test('embeddings through /v1/embeddings, in input order', async () => {
    assert.deepEqual(await model.embed!(['abc', 'hello']), [
      [3, 1, 1],
      [5, 2, 1],
    ]);
  });
});

test('scripted logprobs and finish reasons come back as sent', async () => {
  const top = [
    { token: '7', logprob: -0.2 },
    { token: '8', logprob: -1.9 },
  ];
  const { model } = await setup({ chat: () => ({ texts: ['7'], logprobs: [[{ token: '7', logprob: -0.2, top }]], finishReason: 'length' }) });
  const result = await model.chat({ messages: user('score'), logprobs: true, topLogprobs: 2 });
  assert.deepEqual(result.choices[0], { text: '7', finishReason: 'length', logprobs: [{ token: '7', logprob: -0.2, top }] });
});

describe('retries', () => {
  test('429 with Retry-After (seconds): the retry comes no earlier than asked', async () => {
    const hits: number[] = [];
    const { model } = await setup({
      chat: (_body, attempt) => {
        hits.push(performance.now());
        return attempt === 1 ? { fault: 'status', status: 429, retryAfter: 1 } : 'fine';
      },
    });
    const result = await model.chat({ messages: user('rate me') });
    assert.equal(result.choices[0].text, 'fine');
    assert.equal(hits.length, 2);
    assert.ok(hits[1] - hits[0] >= 999, `waited ${hits[1] - hits[0]} ms for Retry-After: 1`);
  });

  test('429 with retry-after-ms: honoured over the backoff', async () => {
    const hits: number[] = [];
    const { model } = await setup({
      chat: (_body, attempt) => {
        hits.push(performance.now());
        return attempt === 1 ? { fault: 'status', status: 429, headers: { 'retry-after-ms': '300' } } : 'fine';
      },
    });
    assert.equal((await model.chat({ messages: user('rate me') })).choices[0].text, 'fine');
    assert.ok(hits[1] - hits[0] >= 299, `waited ${hits[1] - hits[0]} ms for retry-after-ms: 300`);
  });

  test('a 429 with Retry-After holds off the whole endpoint, not only the call that got it', async () => {
    const hits: { content: string; at: number }[] = [];
    const accounting = new Accounting();
    const { model } = await setup(
      {
        chat: (body) => {
          hits.push({ content: body.messages[0].content, at: Date.now() });
          return hits.length === 1 ? { fault: 'status', status: 429, headers: { 'retry-after-ms': '400' } } : 'ok';
        },
      },
      {},
      accounting,
    );
    const first = model.chat({ messages: user('a') });
    // Issue the second call once the client has taken in the 429 (its retry is counted then).
    while (accounting.snapshot().total.retries === 0) await new Promise((r) => setTimeout(r, 5));
    await Promise.all([first, model.chat({ messages: user('b') })]);
    const b = hits.find((h) => h.content === 'b')!;
    assert.ok(b.at - hits[0].at >= 399, `the other call went out ${b.at - hits[0].at} ms after the 429`);
  });

  test('Retry-After parsing: seconds, HTTP-date, retry-after-ms, garbage', () => {
    const now = Date.parse('2026-11-23T03:00:00Z');
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '3' }), now), 3000);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'Mon, 23 Nov 2026 03:00:05 GMT' }), now), 5000);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'Mon, 23 Nov 2026 02:00:00 GMT' }), now), 0);
    assert.equal(retryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now), 250);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'soon' }), now), undefined);
    assert.equal(retryAfterMs(new Headers(), now), undefined);
  });

  test('full-jitter backoff stays under the exponential ceiling and the cap', () => {
    const policy = { ...defaultRetryPolicy, baseDelayMs: 100, maxDelayMs: 1000 };
    assert.equal(backoffMs(policy, 1, () => 0.999999) < 100, true);
    assert.equal(Math.round(backoffMs(policy, 3, () => 1)), 400);
    assert.equal(backoffMs(policy, 10, () => 1), 1000);
    assert.equal(backoffMs(policy, 4, () => 0), 0);
  });

  test('a Retry-After beyond the allowed wait fails at once', async () => {
    const { server, model } = await setup({ chat: () => ({ fault: 'status', status: 429, retryAfter: 3600 }) });
    await assert.rejects(model.chat({ messages: user('x') }), /asks to wait 3600 s/);
    assert.equal(server.requests.length, 1);
  });

  test('500 then success', async () => {
    const accounting = new Accounting();
    const { server, model } = await setup({ chat: (_b, attempt) => (attempt === 1 ? { fault: 'status', status: 500 } : 'recovered') }, {}, accounting);
    assert.equal((await model.chat({ messages: user('x') })).choices[0].text, 'recovered');
    assert.equal(server.requests.length, 2);
    const usage = accounting.snapshot().models[model.id];
    assert.equal(usage.retries, 1);
    assert.equal(usage.failures, 0);
    assert.equal(usage.calls, 1);
  });

  test('a stalled response hits the per-attempt timeout and is retried', async () => {
    const { server, model } = await setup({ chat: (_b, attempt) => (attempt === 1 ? { fault: 'stall', ms: 1000 } : 'awake') }, { timeoutMs: 300 });
    assert.equal((await model.chat({ messages: user('x') })).choices[0].text, 'awake', 'the stalled attempt was abandoned and retried');
    assert.ok(server.requests.length >= 2);
  });

  test('a malformed body is retried', async () => {
    const { server, model } = await setup({ chat: (_b, attempt) => (attempt === 1 ? { fault: 'malformed' } : 'whole') });
    assert.equal((await model.chat({ messages: user('x') })).choices[0].text, 'whole');
    assert.equal(server.requests.length, 2);
  });

  test('a body without choices is retried', async () => {
    const { server, model } = await setup({ chat: (_b, attempt) => (attempt === 1 ? { fault: 'status', status: 200, body: '{"object":"chat.completion"}' } : 'whole') });
    assert.equal((await model.chat({ messages: user('x') })).choices[0].text, 'whole');
    assert.equal(server.requests.length, 2);
  });

  test('a connection reset is retried', async () => {
    const { server, model } = await setup({ chat: (_b, attempt) => (attempt === 1 ? { fault: 'reset' } : 'reconnected') });
    assert.equal((await model.chat({ messages: user('x') })).choices[0].text, 'reconnected');
    assert.equal(server.requests.length, 2);
  });

  test('attempts are bounded: maxAttempts hits, then a clear error', async () => {
    const accounting = new Accounting();
    const { server, model } = await setup({ chat: () => ({ fault: 'status', status: 503 }) }, { maxAttempts: 3 }, accounting);
    await assert.rejects(model.chat({ messages: user('x') }), (error: Error) => {
      assert.ok(error instanceof ProviderError);
      assert.match(error.message, /model "fake-model" at http:\/\/127\.0\.0\.1:\d+\/v1: HTTP 503/);
      assert.match(error.message, /gave up after 3 attempts/);
      return true;
    });
    assert.equal(server.requests.length, 3);
    const usage = accounting.snapshot().models[model.id];
    assert.deepEqual([usage.retries, usage.failures, usage.calls], [2, 1, 1]);
  });
});

describe('errors that are not retried', () => {
  test('a 4xx other than 408/409/429 fails at once, names endpoint and model, never the key', async () => {
    const body = JSON.stringify({ error: { message: `Incorrect API key provided: ${KEY}`, type: 'invalid_request_error' } });
    const { server, model } = await setup({ chat: () => ({ fault: 'status', status: 401, body }) });
    await assert.rejects(model.chat({ messages: user('x') }), (error: Error) => {
      assert.ok(error instanceof ProviderError);
      assert.equal((error as ProviderError).status, 401);
      assert.match(error.message, /model "fake-model" at http:\/\/127\.0\.0\.1:\d+\/v1: HTTP 401/);
      assert.equal(error.message.includes(KEY), false, 'the key is redacted even when the server echoes it');
      assert.equal(String(error.stack).includes(KEY), false);
      return true;
    });
    assert.equal(server.requests.length, 1);
  });

  for (const status of [408, 409]) {
    test(`${status} is retried`, async () => {
      const { server, model } = await setup({ chat: (_b, attempt) => (attempt === 1 ? { fault: 'status', status } : 'ok') });
      assert.equal((await model.chat({ messages: user('x') })).choices[0].text, 'ok');
      assert.equal(server.requests.length, 2);
      });
  }

  test('an unreachable endpoint fails at once with a clear error', async () => {
    const dead = await startFakeServer();
    // Closed at once: nothing listens on its port any more.
    const baseURL = dead.baseURL;
    await dead.close();
    const model = await createChatModel(`openai:fake-model@${baseURL}`, { env, noCache: true, retry: fast });
    await assert.rejects(model.chat({ messages: user('x') }), (error: Error) => {
      assert.ok(error instanceof EndpointUnreachableError);
      assert.match(error.message, /cannot reach model "fake-model" at http:\/\/127\.0\.0\.1:\d+\/v1 \(ECONNREFUSED\)/);
      return true;
    });
  });

  test('the max-tokens field switches once when the server names the one sent', async () => {
    const { server, model } = await setup({
      chat: (body) =>
        body.max_tokens !== undefined
          ? { fault: 'status', status: 400, body: JSON.stringify({ error: { message: "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead." } }) }
          : 'ok',
    });
    assert.equal((await model.chat({ messages: user('x'), maxTokens: 9 })).choices[0].text, 'ok');
    assert.equal((await model.chat({ messages: user('y'), maxTokens: 9 })).choices[0].text, 'ok');
    assert.deepEqual(
      server.requests.map((r) => [r.max_tokens, r.max_completion_tokens]),
      [
        [9, undefined],
        [undefined, 9],
        [undefined, 9],
      ],
    );
  });

  test('an aborted call stops at once and is not retried', async () => {
    const controller = new AbortController();
    const { server, model } = await setup({
      chat: () => {
        controller.abort(new Error('user gave up')); // while the request is in flight
        return { fault: 'stall', ms: 300 };
      },
    });
    await assert.rejects(model.chat({ messages: user('x') }, { signal: controller.signal }), /user gave up/);
    await new Promise((r) => setTimeout(r, 50)); // room for a retry that must not come
    assert.equal(server.requests.length, 1);
  });
});

describe('per-endpoint concurrency limit', () => {
  test('in-flight requests never exceed the limit, shared by models of the same endpoint and key', async () => {
    const server = await serve({
      chat: async (body) => {
        await new Promise((r) => setTimeout(r, 50));
        return `ok ${body.model}`;
      },
    });
    const ref = { provider: 'openai' as const, baseURL: server.baseURL, concurrency: 3 };
    const a = await createChatModel({ ...ref, model: 'model-a' }, { env, noCache: true });
    const b = await createChatModel({ ...ref, model: 'model-b' }, { env, noCache: true });
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).chat({ messages: user(`q${i}`) })));
    assert.equal(results.length, 16);
    assert.equal(server.requests.length, 16);
    assert.ok(server.maxInFlight <= 3, `max in flight ${server.maxInFlight}`);
    assert.equal(server.maxInFlight, 3, 'the limit is reached, so the test could have failed');
  });
});
