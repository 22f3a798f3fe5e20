import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI, { APIError } from 'openai';
import { servedUrl } from '../support/cli.js';

/** The real command: `persona-lab serve ...` in a child process; resolves with its URL, collects its stderr (the access log). */
async function serve(args: string[]): Promise<{ child: ChildProcess; url: string; log: () => string }> {
  const child = spawn(process.execPath, [resolve('bin/persona-lab.js'), '--json', 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = await servedUrl(child, () => stderr);
  return { child, url, log: () => stderr };
}

const API_KEY = 'sk-test-not-to-be-logged';
let server: Awaited<ReturnType<typeof serve>>;
let client: OpenAI;

before(async () => {
  server = await serve(['--model', 'tiny', '--name', 'tiny', '--body-limit', '65536']);
  client = new OpenAI({ baseURL: server.url, apiKey: API_KEY, maxRetries: 0 });
});
after(() => {
  server.child.kill('SIGKILL');
});

const capital = [{ role: 'user' as const, content: 'What is the capital of France?' }];

test('serve binds loopback and answers chat with the tiny model: greedy is deterministic, logprobs are real', async () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  assert.deepEqual((await client.models.list()).data.map((m) => m.id), ['tiny']);
  const ask = () => client.chat.completions.create({ model: 'tiny', messages: capital, temperature: 0, max_tokens: 16, logprobs: true, top_logprobs: 3 });
  const [a, b] = [await ask(), await ask()];
  assert.match(a.choices[0].message.content ?? '', /Paris/);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  const tokens = a.choices[0].logprobs?.content ?? [];
  assert.ok(tokens.length > 0);
  assert.equal(tokens.map((t) => t.token).join(''), a.choices[0].message.content);
  for (const t of tokens) {
    assert.ok(t.logprob <= 0 && t.top_logprobs.length === 3);
    assert.ok(t.top_logprobs[0].logprob >= t.logprob - 1e-6, 'greedy picks the most likely token');
  }
});

test('sampled replies: unseeded calls differ, seeded calls repeat, n gives n choices, first tokens are likely ones', async () => {
  const ask = (extra: { seed?: number; n?: number }) => client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Give me some advice.' }], temperature: 1, max_tokens: 12, logprobs: true, ...extra });
  const unseeded = await Promise.all([1, 2, 3, 4].map(() => ask({})));
  assert.ok(new Set(unseeded.map((r) => r.choices[0].message.content)).size > 1, 'unseeded requests are not all the same');
  const [s1, s2] = [await ask({ seed: 7, n: 3 }), await ask({ seed: 7, n: 3 })];
  assert.equal(s1.choices.length, 3);
  assert.deepEqual(s1.choices.map((c) => c.message.content), s2.choices.map((c) => c.message.content));
  // top_k (a server extension) reaches the sampler: every first token is among the model's 5 most likely
  const top = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Give me some advice.' }], temperature: 0, max_tokens: 1, logprobs: true, top_logprobs: 5 });
  const likely = new Set(top.choices[0].logprobs!.content![0].top_logprobs.map((t) => t.token));
  const topK = await Promise.all([1, 2, 3, 4, 5, 6].map(() => ask({ top_k: 5 } as { n?: number })));
  for (const r of topK) assert.ok(likely.has(r.choices[0].logprobs!.content![0].token), r.choices[0].logprobs!.content![0].token);
});

test('streaming from the engine adds up to the same reply; completions continue raw text', async () => {
  const messages = [{ role: 'user' as const, content: 'Who are you?' }];
  const whole = await client.chat.completions.create({ model: 'tiny', messages, temperature: 0, max_tokens: 24 });
  const stream = await client.chat.completions.create({ model: 'tiny', messages, temperature: 0, max_tokens: 24, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  assert.equal(text, whole.choices[0].message.content);
  assert.match(text, /AI/);
  const completion = await client.completions.create({ model: 'tiny', prompt: '<|im_start|>user\nWhat is the capital of Japan?<|im_end|>\n<|im_start|>assistant\n', max_tokens: 12, temperature: 0 });
  assert.match(completion.choices[0].text, /Tokyo/);
});

test('content as a list of text parts (as inspect_ai sends it) is the same conversation as a string', async () => {
  const plain = await client.chat.completions.create({ model: 'tiny', messages: capital, temperature: 0, max_tokens: 16 });
  const parts = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'What is the capital ' }, { type: 'text', text: 'of France?' }] }],
    temperature: 0,
    max_tokens: 16,
  });
  assert.equal(parts.choices[0].message.content, plain.choices[0].message.content);
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } }] }] }),
    (e: APIError) => e.status === 400 && /only text content parts/.test(e.message),
  );
});

test('unknown models get 404 naming the served ones; unsupported features get 400, never silence', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: capital }), (e: APIError) => e.status === 404 && /served models: tiny/.test(e.message));
  await assert.rejects(client.models.retrieve('gpt-4o'), (e: APIError) => e.status === 404);
  const refused = [
    { response_format: { type: 'json_schema' as const, json_schema: { name: 'answer', schema: { type: 'object', properties: { city: { type: 'string' } } } } } },
    { response_format: { type: 'json_object' as const } },
    { tools: [{ type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object' } } }] },
    { n: 1000 },
  ];
  for (const extra of refused) {
    await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: capital, ...extra }), (e: APIError) => e.status === 400, JSON.stringify(extra));
  }
});

test('logit_bias, penalties and stop act on the reply', async () => {
  const base = { model: 'tiny', messages: capital, temperature: 0, max_tokens: 8 } as const;
  const plain = await client.chat.completions.create(base);
  assert.match(plain.choices[0].message.content ?? '', /^The/);
  // +100 on "Paris" (id 1505) makes greedy say it first; -100 on the greedy first token ("The", id 565) forbids it
  const forced = await client.chat.completions.create({ ...base, logit_bias: { '1505': 100 } });
  assert.match(forced.choices[0].message.content ?? '', /^Paris/);
  const banned = await client.chat.completions.create({ ...base, logit_bias: { '565': -100 } });
  assert.doesNotMatch(banned.choices[0].message.content ?? '', /^The/);
  // both tokens lifted by +100: unpenalised, greedy mostly repeats the likelier one; a frequency penalty makes them take turns
  const both = { ...base, max_tokens: 16, logit_bias: { '1505': 100, '565': 100 } };
  const repeated = (await client.chat.completions.create(both)).choices[0].message.content ?? '';
  const penalised = (await client.chat.completions.create({ ...both, frequency_penalty: 2, presence_penalty: 1 })).choices[0].message.content ?? '';
  const imbalance = (text: string) => Math.abs(text.split('The').length - text.split('Paris').length);
  assert.ok(imbalance(penalised) <= 2 && imbalance(penalised) < imbalance(repeated), `${repeated} -> ${penalised}`);
  await assert.rejects(client.chat.completions.create({ ...base, logit_bias: { '999999': 1 } }), (e: APIError) => e.status === 400 && /logitBias/.test(e.message));
  const stopped = await client.chat.completions.create({ ...base, max_tokens: 16, stop: ['Paris'] });
  assert.doesNotMatch(stopped.choices[0].message.content ?? '', /Paris/);
  assert.equal(stopped.choices[0].finish_reason, 'stop');
});

test('requests beyond the context or the body limit are refused; max_tokens is clamped to the context', async () => {
  // 600 words are about 610 tokens: more than the tiny model's 512
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'word '.repeat(600) }], max_tokens: 4 }),
    (e: APIError) => e.status === 400 && e.code === 'context_length_exceeded' && /maximum context length is 512 tokens/.test(e.message),
  );
  const huge = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'word '.repeat(450) }], max_tokens: 10_000_000, temperature: 0 });
  assert.ok(huge.usage!.prompt_tokens + huge.usage!.completion_tokens <= 512, JSON.stringify(huge.usage));
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x'.repeat(70_000) }] }),
    (e: APIError) => e.status === 413,
  );
  const health = await fetch(server.url.replace(/\/v1$/, '/health'));
  assert.equal(health.status, 200);
  assert.deepEqual((await health.json()).models, ['tiny']);
});

test('one access-log line per request, without prompt text or credentials', async () => {
  await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'secret-prompt-words' }], temperature: 0, max_tokens: 2 });
  const log = server.log();
  assert.match(log, /POST \/v1\/chat\/completions 200 \d+ms model="tiny" prompt_tokens=\d+ completion_tokens=\d+/);
  assert.match(log, /POST \/v1\/chat\/completions 404 /);
  assert.doesNotMatch(log, /secret-prompt-words/);
  assert.ok(!log.includes(API_KEY));
});

test('several adapters served by name, each its own model id', async () => {
  const fixtures = resolve('test/fixtures/models');
  const multi = await serve(['--model', `${fixtures}/llama`, '--name', 'base', '--adapter', `a=${fixtures}/llama-lora-a`, '--adapter', `b=${fixtures}/llama-lora-b*0.5`]);
  try {
    const c = new OpenAI({ baseURL: multi.url, apiKey: 'unused', maxRetries: 0 });
    assert.deepEqual((await c.models.list()).data.map((m) => m.id), ['base', 'a', 'b']);
    const firstLogprobs = await Promise.all(
      ['base', 'a', 'b'].map(async (model) => {
        const r = await c.chat.completions.create({ model, messages: [{ role: 'user', content: 'hello there' }], temperature: 0, max_tokens: 1, logprobs: true, top_logprobs: 5 });
        return JSON.stringify(r.choices[0].logprobs!.content![0].top_logprobs.map((t) => t.logprob.toFixed(4)));
      }),
    );
    assert.equal(new Set(firstLogprobs).size, 3, `each adapter changes the distribution: ${firstLogprobs.join(' | ')}`);
  } finally {
    multi.child.kill('SIGKILL');
  }
});
