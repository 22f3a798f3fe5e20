/**
 * `persona-lab serve --steered name=<ref>`: a steered model served beside the plain one, each its own
 * model id, through the real command and the official openai SDK.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { runCli, servedUrl } from '../support/cli.js';

test('a steered variant is its own model id: it answers, and differs from the plain model at the same seed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'persona-lab-serve-steered-'));
  // A fixed direction in the tiny model's residual stream (hidden size 128), added at layer 1.
  const vector = join(dir, 'vector.json');
  const direction = Array.from({ length: 128 }, (_, i) => Math.sin(1.7 * i));
  writeFileSync(vector, JSON.stringify({ kind: 'persona', trait: 'test direction', modelId: 'tiny', layers: [1], vectors: [direction], nPositive: 1, nNegative: 1, meta: {} }));
  const child = spawn(process.execPath, [resolve('bin/persona-lab.js'), '--json', 'serve', '--port', '0', '--model', 'tiny', '--name', 'tiny', '--steered', `tiny-steered=steered(tiny):${vector}@1*6`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  try {
    const client = new OpenAI({ baseURL: await servedUrl(child, () => stderr), apiKey: 'unused', maxRetries: 0 });
    assert.deepEqual((await client.models.list()).data.map((m) => m.id), ['tiny', 'tiny-steered']);
    const ask = async (model: string, temperature: number) => {
      const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Give me some advice.' }], temperature, seed: 11, max_tokens: 16 });
      assert.equal(r.model, model);
      return r.choices[0].message.content ?? '';
    };
    for (const temperature of [0, 1]) {
      const [plain, steered, again] = [await ask('tiny', temperature), await ask('tiny-steered', temperature), await ask('tiny-steered', temperature)];
      assert.ok(steered.length > 0, 'the steered model answers');
      assert.equal(again, steered, 'the steered model repeats itself at the same seed');
      assert.notEqual(steered, plain, `steering changes the reply at temperature ${temperature}`);
    }
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--steered takes only steered or capped references, each under a new name (exit 2)', async () => {
  for (const bad of ['x=tiny', '=steered(tiny):v.json', 'steered(tiny):v.json']) {
    const r = await runCli(['serve', '--port', '0', '--model', 'tiny', '--steered', bad]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--steered: name=steered\(<base>\)/);
  }
});
