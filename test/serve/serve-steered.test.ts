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
import { saveVectors } from '../../src/steer/vectors.js';
import { runCli, servedUrl } from '../support/cli.js';

test('steered and capped variants are model ids of their own: they answer, and differ from the plain model at the same seed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'persona-lab-serve-steered-'));
  // A fixed direction in the tiny model's residual stream (hidden size 128), added at layer 1.
  const vector = join(dir, 'vector.json');
  const direction = Array.from({ length: 128 }, (_, i) => Math.sin(1.7 * i));
  writeFileSync(vector, JSON.stringify({ kind: 'persona', trait: 'test direction', modelId: 'tiny', layers: [1], vectors: [direction], nPositive: 1, nNegative: 1, meta: {} }));
  // A capping calibration whose floors on that axis (as the assistant axis) lie far above any projection: capping lifts every one.
  const norm = Math.hypot(...direction);
  saveVectors(join(dir, 'assistant-axis.safetensors'), { kind: 'assistantAxis', trait: 'assistant', modelId: 'tiny', layers: [2], vectors: [Float32Array.from(direction, (x) => x / norm)], nPositive: 1, nNegative: 1, meta: {} });
  writeFileSync(join(dir, 'capping.json'), JSON.stringify({ layers: [1, 2], axisLayer: 2, floors: [40, 40], observed: 1, percentile: 25 }));
  const variants = ['--steered', `tiny-steered=steered(tiny):${vector}@1*6`, '--steered', `tiny-capped=capped(tiny):${join(dir, 'capping.json')}`];
  const child = spawn(process.execPath, [resolve('bin/persona-lab.js'), '--json', 'serve', '--port', '0', '--model', 'tiny', '--name', 'tiny', ...variants], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  try {
    const client = new OpenAI({ baseURL: await servedUrl(child, () => stderr), apiKey: 'unused', maxRetries: 0 });
    assert.deepEqual((await client.models.list()).data.map((m) => m.id), ['tiny', 'tiny-steered', 'tiny-capped']);
    const ask = async (model: string, temperature: number) => {
      const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Give me some advice.' }], temperature, seed: 11, max_tokens: 16 });
      assert.equal(r.model, model);
      return r.choices[0].message.content ?? '';
    };
    for (const temperature of [0, 1]) {
      const plain = await ask('tiny', temperature);
      for (const variant of ['tiny-steered', 'tiny-capped']) {
        const [reply, again] = [await ask(variant, temperature), await ask(variant, temperature)];
        assert.ok(reply.length > 0, `${variant} answers`);
        assert.equal(again, reply, `${variant} repeats itself at the same seed`);
        assert.notEqual(reply, plain, `${variant} changes the reply at temperature ${temperature}`);
      }
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
