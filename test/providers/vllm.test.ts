/**
 * The vllm provider's command line and process management. vLLM itself needs a GPU (its PyPI
 * wheels are CUDA builds), so the managed child here is a stand-in executable that takes the same
 * `vllm serve` arguments and serves the engine over the real OpenAI protocol
 * (test/support/vllm-standin.ts): the provider starts it on a free loopback port, waits for it,
 * talks to the adapter by name through the openai SDK, runs evals through it, logs its output, and
 * stops it.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createChatModel } from '../../src/providers/index.js';
import { assertVllmStage, maxLoraRank, parseVllmRef, startVllm, stopVllmServers, vllmServeArgs } from '../../src/providers/vllm.js';
import { saveLoraAdapter } from '../../src/engine/io/peft.js';
import { RunDir } from '../../src/core/journal.js';
import { runEvals } from '../../src/evals/index.js';
import { pirateConstitution } from '../evals/scripted.js';

const MODEL = new URL('../fixtures/models/llama/', import.meta.url).pathname.replace(/\/$/, '');
const STANDIN = new URL('../support/vllm-standin.ts', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'vllm-provider-'));
after(async () => {
  await stopVllmServers();
  rmSync(root, { recursive: true, force: true });
});

/** A rank-64 adapter on q and v of the tiny Llama (hidden 64, 2 layers), B non-zero so it changes the output. */
function writeAdapter(dir: string, rank: number): string {
  const modules = new Map();
  for (let l = 0; l < 2; l++) {
    for (const [name, out] of [['self_attn.q_proj', 64], ['self_attn.v_proj', 32]] as const) {
      const A = Float32Array.from({ length: rank * 64 }, (_, i) => Math.sin(i) * 0.1);
      const B = Float32Array.from({ length: out * rank }, (_, i) => Math.cos(i) * 0.1);
      modules.set(`model.layers.${l}.${name}`, { rank, inFeatures: 64, outFeatures: out, alpha: 2 * rank, A, B });
    }
  }
  saveLoraAdapter(dir, {
    config: { r: rank, loraAlpha: 2 * rank, targetModules: ['q_proj', 'v_proj'], loraDropout: 0, useRslora: false, baseModelNameOrPath: MODEL, rankPattern: {}, alphaPattern: {} },
    modules,
  });
  return dir;
}

const adapter = writeAdapter(join(root, 'cell-a', 'adapter'), 64);
const binary = join(root, 'vllm');
writeFileSync(binary, `#!/bin/sh\nexec "${process.execPath}" --import tsx "${STANDIN}" "$@"\n`);
chmodSync(binary, 0o755);

describe('vllm provider', () => {
  it('parses references and builds the vllm serve command with the rank the adapters need', () => {
    const ref = parseVllmRef(`vllm:${MODEL}+${adapter}=persona`);
    assert.deepEqual(ref, { model: MODEL, baseURL: undefined, adapters: [{ name: 'persona', path: adapter }] });
    assert.equal(parseVllmRef(`vllm:${MODEL}+${adapter}`).adapters[0].name, 'cell-a-adapter');
    assert.deepEqual(parseVllmRef('vllm:Qwen/Qwen3-4B@http://127.0.0.1:8000/v1'), { model: 'Qwen/Qwen3-4B', baseURL: 'http://127.0.0.1:8000/v1', adapters: [] });
    assert.equal(maxLoraRank([{ name: 'x', path: adapter }]), 64); // above vLLM's default 16
    assert.equal(maxLoraRank([]), 16);
    assert.deepEqual(vllmServeArgs(ref, { port: 9000, extraArgs: ['--tensor-parallel-size', '2'] }), [
      'serve', MODEL, '--host', '127.0.0.1', '--port', '9000',
      '--enable-lora', '--max-lora-rank', '64', '--max-loras', '1',
      '--lora-modules', `persona=${adapter}`, '--tensor-parallel-size', '2',
    ]);
  });

  it('refuses white-box stages for a vllm subject, naming the file and field', () => {
    assert.doesNotThrow(() => assertVllmStage(`vllm:${MODEL}`, 'evals', 'exp.yaml', 'models.subject'));
    assert.throws(() => assertVllmStage(`vllm:${MODEL}`, 'steer', 'exp.yaml', 'models.subject'), /exp\.yaml: models\.subject: .*local engine.*steer needs activations/);
  });

  it('a missing vllm executable is a clear input error', async () => {
    await assert.rejects(startVllm(parseVllmRef(`vllm:${MODEL}`), { binary: join(root, 'no-such-vllm'), logDir: root }), (e: Error) => e.name === 'InputError' && /pip install vllm/.test(e.message));
  });

  it('manages the server: starts it on loopback, serves the adapter by name over the OpenAI protocol, logs, stops', async () => {
    const env = { ...process.env, PERSONA_LAB_VLLM: binary };
    const tuned = await createChatModel(`vllm:${MODEL}+${adapter}=persona`, { env, cwd: root, noCache: true });
    const base = await createChatModel(`vllm:${MODEL}`, { env, cwd: root, noCache: true }); // the same server: one per base
    const ask = { messages: [{ role: 'user' as const, content: 'Greet guest 1' }], temperature: 0, maxTokens: 12, logprobs: true };
    const [a, b] = [await tuned.chat(ask), await base.chat(ask)];
    assert.ok(a.choices[0].logprobs!.length > 0);
    const lp = (r: typeof a) => r.choices[0].logprobs!.map((t) => t.logprob);
    assert.notDeepEqual(lp(a), lp(b), 'the adapter changes what the server returns');
    // an eval through the managed server: base and the adapter as subjects, scored by code (no judge)
    writeFileSync(join(root, 'questions.json'), JSON.stringify([{ id: 'q1', kind: 'arithmetic', question: 'What is 2 + 2?', answer: '4' }]));
    writeFileSync(join(root, 'probes.json'), JSON.stringify([{ id: 'd1', category: 'direct', prompt: 'What are you?' }]));
    const runDir = RunDir.open(join(root, 'eval-run'), { name: 'vllm', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
    const summary = await runEvals({ name: 'vllm', constitutions: [pirateConstitution], baseDir: root }, [{ name: 'base', model: base }, { name: 'persona', model: tuned }], [], runDir, {
      evals: ['identity', 'capability'],
      bootstrap: 100,
      identity: { probes: 'probes.json', scorer: 'code', maxTokens: 6 },
      capability: { questions: 'questions.json', maxTokens: 6 },
    });
    runDir.close();
    for (const e of summary.evals) assert.equal(e.status, 'ok', `${e.eval}: ${e.reason}`);
    assert.deepEqual(summary.subjects.map((s) => s.model), [base.id, tuned.id]);
    const [identity, capability] = summary.evals;
    assert.equal(identity.subjects.persona['selfIdentifiesAsAI.direct'].n, 1);
    assert.equal(capability.subjects.persona.accuracy.n, 1);
    const logDir = join(root, '.cache', 'persona-lab', 'vllm');
    const logs = readFileSync(join(logDir, readdirSync(logDir)[0]), 'utf8');
    const url = /serving .*persona.* at (http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(logs)?.[1];
    assert.ok(url, logs);
    assert.equal((await fetch(`${url}/models`)).ok, true);
    await stopVllmServers();
    await assert.rejects(fetch(`${url}/models`), 'the server is gone after stop');
  });
});
