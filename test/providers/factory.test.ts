/** The factory: model references resolved, keys required where they must be, the local engine loaded lazily. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { InputError } from '../../src/core/errors.js';
import { Accounting, createChatModel, isLocalURL, loadLocalEngine, publicURL, resolveModelRef } from '../../src/providers/index.js';
import { startFakeServer } from '../support/openai-server.js';
import { tempDir } from './support.js';

test('short strings and objects resolve with defaults', () => {
  assert.deepEqual(resolveModelRef('openai:gpt-4o-mini', {}).ref, { provider: 'openai', model: 'gpt-4o-mini', baseURL: 'https://api.openai.com/v1', apiKeyEnv: 'OPENAI_API_KEY', concurrency: 8, maxAttempts: 5, timeoutMs: 120000 });
  assert.equal(resolveModelRef('openai:qwen', { OPENAI_BASE_URL: 'http://gpu-box:8000/v1' }).ref.baseURL, 'http://gpu-box:8000/v1');
  const ollama = resolveModelRef('openai:llama3.1:8b@http://127.0.0.1:11434/v1', {}).ref;
  assert.deepEqual([ollama.model, ollama.baseURL], ['llama3.1:8b', 'http://127.0.0.1:11434/v1']);
  const object = resolveModelRef({ provider: 'openai', model: 'm', apiKeyEnv: 'ROUTER_KEY', concurrency: 2 }, {});
  assert.equal(object.provider, 'openai');
  assert.deepEqual([object.ref.apiKeyEnv, object.ref.concurrency, object.ref.maxAttempts], ['ROUTER_KEY', 2, 5]);
  assert.throws(() => resolveModelRef({ provider: 'openai', model: 'm', baseURL: 'not a url' }, {}), InputError);
  assert.deepEqual(resolveModelRef('openai:name@with-at', {}).ref, { provider: 'openai', model: 'name@with-at', baseURL: 'https://api.openai.com/v1', apiKeyEnv: 'OPENAI_API_KEY', concurrency: 8, maxAttempts: 5, timeoutMs: 120000 });
  assert.throws(() => resolveModelRef('anthropic:claude' as never, {}), /expected "openai:<model>\[@<baseURL>\]"/);
  assert.throws(() => resolveModelRef({ provider: 'anthropic', model: 'claude' }, {}), /one of openai, local, hf, steered, vllm/);
});

test('local and steered references: paths absolute from the working directory, capabilities from the registry', () => {
  const local = resolveModelRef('local:models/base+runs/a/adapter*0.5', {}, '/work');
  assert.deepEqual(local.ref, { provider: 'local', path: '/work/models/base', adapters: [{ path: '/work/runs/a/adapter', scale: 0.5 }], concurrency: 1 });
  assert.equal(local.entry.capabilities.train, true);
  assert.equal(resolveModelRef('tiny', {}).provider, 'local');
  assert.equal(resolveModelRef({ provider: 'local', path: 'models/x' }, {}).provider, 'local');
  const steered = resolveModelRef('steered(local:models/base):runs/x/vector.safetensors@4*-2.5', {}, '/work');
  assert.deepEqual(steered.ref, { provider: 'steered', base: { provider: 'local', path: '/work/models/base', adapters: [], concurrency: 1 }, steer: { vector: '/work/runs/x/vector.safetensors', layer: 4, coef: -2.5, positions: 'all' } });
  assert.deepEqual(resolveModelRef('capped(tiny):runs/x/steer/capping.json', {}, '/work').ref.cap, { calibration: '/work/runs/x/steer/capping.json' });
  assert.equal(steered.entry.capabilities.train, false);
  assert.equal(resolveModelRef('openai:m', {}).entry.capabilities.steer, false);
  assert.throws(() => resolveModelRef('steered(openai:m):v.json', {}), /with a local base/);
});

test('a missing key for a remote endpoint is an error naming the variable', async () => {
  await assert.rejects(createChatModel('openai:gpt-4o-mini', { env: {} }), (error: Error) => {
    assert.ok(error instanceof InputError);
    assert.equal(error.message, 'environment: OPENAI_API_KEY: an API key for model "gpt-4o-mini" at https://api.openai.com/v1 (the variable is not set)');
    return true;
  });
  await assert.rejects(createChatModel({ provider: 'openai', model: 'x', baseURL: 'https://openrouter.ai/api/v1', apiKeyEnv: 'OPENROUTER_API_KEY' }, { env: {} }), /OPENROUTER_API_KEY/);
});

test('a loopback server needs no key: a placeholder is sent', async (t) => {
  const server = await startFakeServer();
  t.after(() => server.close());
  const model = await createChatModel(`openai:fake@${server.baseURL}`, { env: {}, noCache: true });
  assert.equal((await model.chat({ messages: [{ role: 'user', content: 'hi' }] })).choices[0].text, 'echo(0): hi');
  assert.deepEqual(server.authHeaders, ['Bearer sk-no-key-required']);
  assert.deepEqual(
    ['http://localhost:8000/v1', 'http://127.0.0.1:1/v1', 'http://[::1]:8080/v1', 'http://192.168.1.20:8000/v1', 'http://10.0.0.5/v1', 'https://api.openai.com/v1', 'http://172.32.0.1/v1'].map(isLocalURL),
    [true, true, true, true, true, false, false],
  );
});

test('ids carry no credentials', () => {
  assert.equal(publicURL('https://user:hunter2@proxy.example/v1?api-key=abc#x'), 'https://proxy.example/v1');
});

test('local refs without the engine: a clear "local engine not available" error', async () => {
  await assert.rejects(loadLocalEngine('../../engine/absent-provider.js'), /local engine not available/);
  if (!existsSync('src/engine/provider.ts')) await assert.rejects(createChatModel('tiny', { env: {} }), /local engine not available/);
});

const engine = existsSync('src/engine/provider.ts');

test('local models get the cache and accounting too; a retrained adapter is not served stale samples', { skip: !engine && 'no engine provider in this checkout' }, async (t) => {
  const { dir, remove } = await tempDir();
  t.after(remove);
  await cp('test/fixtures/models/llama', join(dir, 'base'), { recursive: true });
  await cp('test/fixtures/models/llama-lora-a', join(dir, 'adapter'), { recursive: true });
  const accounting = new Accounting();
  const open = () => createChatModel(`local:${dir}/base+${dir}/adapter`, { env: {}, cacheDir: join(dir, 'cache'), accounting });
  const request = { messages: [{ role: 'user' as const, content: 'hi' }], maxTokens: 3, temperature: 0.7, seed: 3, n: 2 };
  const model = await open();
  const first = await model.chat(request);
  const again = await model.chat(request);
  assert.equal(first.cached, false);
  assert.equal(again.cached, true);
  assert.deepEqual(again.choices, first.choices);
  await model.close?.();
  await utimes(join(dir, 'adapter', 'adapter_model.safetensors'), new Date(), new Date(Date.now() + 5000));
  const retrained = await open();
  assert.equal((await retrained.chat(request)).cached, false, 'the adapter file changed: new cache keys');
  await retrained.close?.();
  const usage = accounting.snapshot().models[model.id];
  assert.deepEqual([usage.calls, usage.cacheHits, usage.backendCalls], [3, 1, 2]);
});

test('endpoint-only use never loads onnxruntime (nor the engine)', () => {
  const script = `
    import { createRequire } from 'node:module';
    const { createChatModel } = await import('./src/providers/index.ts');
    await createChatModel('openai:m@http://127.0.0.1:9/v1', { env: {}, noCache: true });
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify({ onnx: loaded.filter((p) => p.includes('onnxruntime')).length, stringify: loaded.some((p) => p.includes('fast-json-stable-stringify')) }));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)!), { onnx: 0, stringify: true }, 'the check sees CommonJS modules (fast-json-stable-stringify is one; onnxruntime-node is another)');
});
