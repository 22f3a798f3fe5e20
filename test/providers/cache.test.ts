/**
 * The response cache and accounting around the endpoint provider, end to end: hits on repeat, per-
 * sample reuse across n, errors never cached, --no-cache, clear, the key never on disk, accounting.
 */
import assert from 'node:assert/strict';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { Accounting, clearResponseCache, createChatModel, defaultCacheDir, ResponseCache, sampleKey, type ChatRequest } from '../../src/providers/index.js';
import { startFakeServer, type FakeServer, type FakeServerOptions } from '../support/openai-server.js';
import { env, fast, filesUnder, KEY, tempDir } from './support.js';

let cacheDir: string;
let remove: () => Promise<void>;
let server: FakeServer | undefined;
beforeEach(async () => ({ dir: cacheDir, remove } = await tempDir()));
afterEach(async () => {
  await server?.close();
  server = undefined;
  await remove();
});

async function model(options: FakeServerOptions = {}, extra: { noCache?: boolean; accounting?: Accounting; pricing?: { input: number; output: number } } = {}) {
  server ??= await startFakeServer(options);
  return createChatModel(
    { provider: 'openai', model: 'fake-model', baseURL: server.baseURL, maxAttempts: 2, ...(extra.pricing ? { pricing: extra.pricing } : {}) },
    { env, cacheDir, noCache: extra.noCache, accounting: extra.accounting, retry: fast },
  );
}

const ask = (content: string, more: Partial<ChatRequest> = {}): ChatRequest => ({ messages: [{ role: 'user', content }], temperature: 0.8, ...more });

test('a repeat is a cache hit: the server is not asked again and the result is the same', async () => {
  const m = await model();
  const first = await m.chat(ask('hello', { n: 2, logprobs: true, topLogprobs: 3 }));
  const second = await m.chat(ask('hello', { n: 2, logprobs: true, topLogprobs: 3 }));
  assert.equal(server!.requests.length, 1);
  assert.equal(first.cached, false);
  assert.equal(second.cached, true);
  assert.deepEqual(second.choices, first.choices, 'texts, finish reasons and logprobs come back as stored');
  assert.deepEqual(second.usage, first.usage);
  assert.equal(second.model, first.model);
  assert.equal((await filesUnder(cacheDir)).length, 2, 'one file per sample');
});

test('any change to messages or params misses', async () => {
  const m = await model();
  await m.chat(ask('hello'));
  for (const request of [ask('hello!'), ask('hello', { temperature: 0.7 }), ask('hello', { seed: 1 }), ask('hello', { maxTokens: 5 }), ask('hello', { stop: ['x'] }), ask('hello', { logprobs: true })]) {
    assert.equal((await m.chat(request)).cached, false);
  }
  assert.equal(server!.requests.length, 7);
});

test('n = 4 after n = 2 reuses the two cached samples and fetches two, with the seed moved on', async () => {
  const m = await model();
  const two = await m.chat(ask('q', { n: 2, seed: 7 }));
  const four = await m.chat(ask('q', { n: 4, seed: 7 }));
  assert.equal(server!.requests.length, 2);
  assert.equal(server!.requests[1].n, 2);
  assert.equal(server!.requests[1].seed, 9, 'samples 2.. are fetched with seed + 2');
  assert.deepEqual(four.choices.slice(0, 2), two.choices);
  assert.equal(four.cached, false);
  assert.equal((await m.chat(ask('q', { n: 3, seed: 7 }))).cached, true);
  assert.equal(server!.requests.length, 2);
});

test('a server that ignores n is asked again for the rest', async () => {
  const m = await model({ chat: (body) => `one sample, seed ${body.seed}` });
  const result = await m.chat(ask('q', { n: 3, seed: 100 }));
  assert.deepEqual(
    result.choices.map((c) => c.text),
    ['one sample, seed 100', 'one sample, seed 101', 'one sample, seed 102'],
  );
  assert.equal(server!.requests.length, 3);
});

test('errors are never cached: a failure, then the success is fetched and cached', async () => {
  const accounting = new Accounting();
  const m = await model({ chat: (_body, attempt) => (attempt <= 2 ? { fault: 'status', status: 500 } : 'finally') }, { accounting });
  await assert.rejects(m.chat(ask('flaky')), /HTTP 500/);
  assert.equal(server!.requests.length, 2, 'maxAttempts 2');
  assert.deepEqual(await filesUnder(cacheDir), [], 'nothing written for a failure');
  const ok = await m.chat(ask('flaky'));
  assert.equal(ok.choices[0].text, 'finally');
  assert.equal(ok.cached, false);
  assert.equal(server!.requests.length, 3, 'the failure did not shadow the success');
  assert.equal((await m.chat(ask('flaky'))).cached, true);
  assert.equal(server!.requests.length, 3);
  const usage = accounting.snapshot().models[m.id];
  assert.deepEqual([usage.calls, usage.failures, usage.cacheHits, usage.retries, usage.backendCalls], [3, 1, 1, 1, 1]);
});

test('noCache neither reads nor writes', async () => {
  const cached = await model();
  await cached.chat(ask('x'));
  const uncached = await model({}, { noCache: true });
  assert.equal((await uncached.chat(ask('x'))).cached, false);
  assert.equal((await uncached.chat(ask('y'))).cached, false);
  assert.equal(server!.requests.length, 3);
  assert.equal((await filesUnder(cacheDir)).length, 1);
});

test('clear removes the samples and nothing else; the next call misses', async () => {
  const m = await model();
  await m.chat(ask('a', { n: 3 }));
  await mkdir(join(cacheDir, 'ab'), { recursive: true });
  await writeFile(join(cacheDir, 'notes.txt'), 'mine');
  await writeFile(join(cacheDir, 'ab', 'not-a-sample.json'), '{}');
  assert.equal(await clearResponseCache({ cacheDir }), 3);
  assert.deepEqual((await filesUnder(cacheDir)).map((f) => f.path.slice(cacheDir.length)).sort(), ['/ab/not-a-sample.json', '/notes.txt']);
  assert.equal((await m.chat(ask('a', { n: 3 }))).cached, false);
  assert.equal(server!.requests.length, 2);
});

test('the API key never reaches cache files or keys', async () => {
  const m = await model({ chat: (body) => `reply to ${body.messages.at(-1)!.content}` });
  await m.chat(ask('one', { n: 2, jsonSchema: { name: 'v', schema: { type: 'object' } } }));
  await m.chat(ask('two', { logprobs: true, topLogprobs: 2 }));
  const files = await filesUnder(cacheDir);
  assert.equal(files.length, 3);
  for (const { path, text } of files) {
    assert.equal(path.includes(KEY), false);
    assert.equal(text.includes(KEY), false);
    assert.equal(text.includes('SECRET'), false);
  }
  assert.equal(m.id.includes(KEY), false);
  assert.ok(server!.authHeaders.every((h) => h === `Bearer ${KEY}`), 'the key was really in use');
});

test('a torn or foreign cache file reads as a miss and is replaced', async () => {
  const m = await model();
  const request = ask('torn');
  const key = sampleKey(m.id, request, 0);
  await mkdir(join(cacheDir, key.slice(0, 2)), { recursive: true });
  await writeFile(join(cacheDir, key.slice(0, 2), `${key}.json`), '{"v":1,"choice":{"te');
  assert.equal((await m.chat(request)).cached, false);
  assert.equal((await m.chat(request)).cached, true);
  assert.equal((await filesUnder(cacheDir)).filter((f) => f.path.endsWith('.tmp')).length, 0, 'no temp files left behind');
});

test('sample keys: canonical (property order does not matter), distinct per index and model', () => {
  const a = sampleKey('openai:m@http://h/v1', { messages: [{ role: 'user', content: 'x' }], temperature: 1, jsonSchema: { name: 'v', schema: { a: 1, b: 2 } } }, 0);
  const b = sampleKey('openai:m@http://h/v1', { jsonSchema: { schema: { b: 2, a: 1 }, name: 'v' }, temperature: 1, messages: [{ content: 'x', role: 'user' }] }, 0);
  assert.equal(a, b);
  assert.notEqual(a, sampleKey('openai:m@http://h/v1', { messages: [{ role: 'user', content: 'x' }], temperature: 1, jsonSchema: { name: 'v', schema: { a: 1, b: 2 } } }, 1));
  assert.notEqual(a, sampleKey('openai:m2@http://h/v1', { messages: [{ role: 'user', content: 'x' }], temperature: 1, jsonSchema: { name: 'v', schema: { a: 1, b: 2 } } }, 0));
});

test('default cache dir: PERSONA_LAB_CACHE_DIR, else .cache/persona-lab/responses under the cwd', () => {
  assert.equal(defaultCacheDir({}, '/work/x'), '/work/x/.cache/persona-lab/responses');
  assert.equal(defaultCacheDir({ PERSONA_LAB_CACHE_DIR: '/tmp/c' }, '/work/x'), '/tmp/c');
  assert.equal(new ResponseCache('rel').dir.startsWith('/'), true);
});

test('accounting: tokens and cost count only what the backend served', async () => {
  const accounting = new Accounting();
  const m = await model({}, { accounting, pricing: { input: 2, output: 10 } });
  const fresh = await m.chat(ask('three word prompt', { n: 2 }));
  await m.chat(ask('three word prompt', { n: 2 }));
  await m.chat(ask('three word prompt', { n: 3 }));
  const snapshot = accounting.snapshot();
  const usage = snapshot.models[m.id];
  assert.deepEqual(fresh.usage, { promptTokens: 3, completionTokens: 8 });
  assert.equal(usage.calls, 3);
  assert.equal(usage.cacheHits, 1);
  assert.equal(usage.cachedSamples, 4);
  assert.equal(usage.backendCalls, 2);
  assert.equal(usage.promptTokens, 6);
  assert.equal(usage.completionTokens, 12);
  assert.equal(usage.costUSD, (6 * 2 + 12 * 10) / 1e6);
  assert.deepEqual(snapshot.total, usage);
  assert.deepEqual(JSON.parse(JSON.stringify(snapshot)), snapshot, 'a snapshot is plain JSON for the journal');
});
