import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';

// The real command: `persona-lab serve --model tiny` in a child process, driven by the openai SDK.
let child: ChildProcess;
let client: OpenAI;

before(async () => {
  child = spawn(process.execPath, [resolve('bin/persona-lab.js'), '--json', 'serve', '--model', 'tiny', '--port', '0', '--name', 'tiny'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((done, fail) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /"url": "([^"]+)"/.exec(out);
      if (m) done(m[1]);
    });
    child.on('exit', (code) => fail(new Error(`serve exited ${code}`)));
  });
  client = new OpenAI({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
});
after(() => {
  child.kill('SIGTERM');
});

test('serve binds loopback and answers chat with the tiny model: greedy is deterministic, logprobs are real', async () => {
  assert.deepEqual((await client.models.list()).data.map((m) => m.id), ['tiny']);
  const ask = () =>
    client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'What is the capital of France?' }], temperature: 0, max_tokens: 16, logprobs: true, top_logprobs: 3 });
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
