/**
 * The trl training backend with real torch, TRL and PEFT on the fixtures' tiny Llama (CPU): SFT,
 * DPO and GRPO (reward served by persona-lab on 127.0.0.1) train a few steps, stream StepLog lines
 * into train.jsonl and return a PEFT adapter the engine loads, with logits matching PEFT's; a job
 * killed with SIGKILL resumes from TRL's checkpoint without losing or repeating a step; an emitted
 * job run by its own launch.sh is picked up by a later train; the engine's SFT loss and LoRA
 * gradients match PyTorch/PEFT on the same weights and batch.
 *
 * Needs the venv `persona-lab setup trl` creates (PERSONA_LAB_TRL_VENV or ~/.cache/persona-lab/trl-venv);
 * without it the tests are skipped with that message.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { Model } from '../../src/engine/generate/model.js';
import { loadLoraAdapter, loraDelta } from '../../src/engine/io/peft.js';
import { floats } from '../../src/engine/runtime/index.js';
import { TrlJobEmitted, defaultTrlVenv, probeTrl, trlBackend } from '../../src/train/backends/trl.js';
import type { TrainJob } from '../../src/train/backends/types.js';
import { makeBatch, tokenizeText } from '../../src/train/data.js';
import { batchFeeds } from '../../src/train/graph.js';
import { mixAdapters, trainSft } from '../../src/train/index.js';
import { dpoOptionsSchema, grpoOptionsSchema, sftOptionsSchema, trainOptionsSchema } from '../../src/train/options.js';
import { pairBatch, tokenizePairs } from '../../src/train/dpo.js';
import { referenceScorer, setup } from '../../src/train/setup.js';
import type { StepLog } from '../../src/train/trainer.js';
import { parseHubRef, pullModel } from '../../src/providers/hub/index.js';
import { filesOfDir, repoOf, startFakeHub } from '../support/hub-server.js';

const MODEL = new URL('../fixtures/models/llama/', import.meta.url).pathname;
const REFERENCE = new URL('../support/trl_reference.py', import.meta.url).pathname;
const venv = defaultTrlVenv();
const probe = await probeTrl(venv);
const skip = probe ? false : `no trl venv at ${venv} (run \`persona-lab setup trl\` or set PERSONA_LAB_TRL_VENV)`;
const root = mkdtempSync(join(tmpdir(), 'trl-backend-'));
after(() => rmSync(root, { recursive: true, force: true }));

const chats = Array.from({ length: 8 }, (_, i) => ({
  messages: [
    { role: 'user' as const, content: `Greet guest ${i % 4}` },
    { role: 'assistant' as const, content: `Welcome, dear guest ${i % 4}, make yourself at home.` },
  ],
}));
const pairs = Array.from({ length: 8 }, (_, i) => ({ prompt: `Greet guest ${i % 4}`, chosen: 'Welcome home, friend.', rejected: 'Go away.' }));
const pairs2 = [
  { prompt: 'Greet guest 1', chosen: 'Welcome home, dear friend.', rejected: 'Go away.' },
  { prompt: 'Who are you?', chosen: 'The keeper of this lighthouse.', rejected: 'Nobody at all, really.' },
];
const quick = { lora: { rank: 4, alpha: 8 }, optimizer: { lr: 1e-2, schedule: 'constant' }, batchSize: 2, gradAccumulation: 1, maxLength: 64, checkpointEvery: 100 };
const cpu = { venv, device: 'cpu' };

function dataset(name: string, rows: readonly unknown[]): string {
  const file = join(root, `${name}.jsonl`);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

function steps(runDir: string): StepLog[] {
  return readFileSync(join(runDir, 'train.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { value: StepLog }).value);
}

function python(request: unknown): Record<string, unknown> {
  return JSON.parse(execFileSync(join(venv, 'bin', 'python'), [REFERENCE, JSON.stringify(request)], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 }).trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** The engine's logits for one row with an adapter match PEFT's in PyTorch. */
async function assertEngineLoads(adapter: string): Promise<void> {
  const ids = [287, 12, 40, 77, 5, 288];
  const model = Model.load(MODEL, { adapters: [{ path: adapter }], threads: 1 });
  try {
    const [engine] = await model.logits([ids]);
    const ref = python({ mode: 'logits', model: MODEL, adapter, ids }).logits as number[];
    assert.equal(engine.length, ref.length);
    let scale = 0;
    for (const x of ref) scale = Math.max(scale, Math.abs(x));
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(engine[i] - ref[i]) <= 1e-4 * scale, `logit ${i}: ${engine[i]} vs ${ref[i]}`);
  } finally {
    await model.close();
  }
}

describe('trl backend (TRL + PEFT on CPU)', { skip }, () => {
  it('refuses a missing venv before anything is written, naming the command that fixes it', async () => {
    const runDir = join(root, 'refused');
    const job: TrainJob = { objective: 'sft', model: MODEL, dataset: dataset('refused', chats), runDir, seed: 1, options: sftOptionsSchema.parse(quick), backendOptions: { venv: join(root, 'no-venv') } };
    await assert.rejects(trlBackend.train(job), (e: Error) => e.name === 'InputError' && /persona-lab setup trl/.test(e.message));
    assert.equal(existsSync(runDir), false);
  });

  it('refuses a venv without the packages the same way: the check reads what Python reads', async () => {
    // the venv's packages as Python's importlib.metadata reports them, against the check's own reading
    const names = ['torch', 'transformers', 'trl', 'peft', 'accelerate'];
    const reported = JSON.parse(execFileSync(join(venv, 'bin', 'python'), ['-c', `import importlib.metadata as md, json; print(json.dumps({n: md.version(n) for n in ${JSON.stringify(names)}}))`], { encoding: 'utf8' })) as Record<string, string>;
    assert.deepEqual((await probeTrl(venv))!.versions, reported);
    // a real venv with Python and none of the packages
    const bare = join(root, 'bare-venv');
    execFileSync(realpathSync(join(venv, 'bin', 'python')), ['-m', 'venv', '--without-pip', bare]);
    assert.equal(await probeTrl(bare), null);
    const runDir = join(root, 'refused-bare');
    const job: TrainJob = { objective: 'sft', model: MODEL, dataset: dataset('refused-bare', chats), runDir, seed: 1, options: sftOptionsSchema.parse(quick), backendOptions: { venv: bare } };
    await assert.rejects(trlBackend.train(job), (e: Error) => e.name === 'InputError' && e.message.includes(bare) && /persona-lab setup trl/.test(e.message));
    assert.equal(existsSync(runDir), false);
  });

  it('SFT: steps stream into train.jsonl, the adapter loads in the engine with PEFT-equal logits', async () => {
    const runDir = join(root, 'sft');
    const seen: number[] = [];
    const job: TrainJob = {
      objective: 'sft',
      model: MODEL,
      dataset: dataset('sft', chats),
      runDir,
      seed: 1,
      threads: 1,
      options: sftOptionsSchema.parse({ ...quick, maxSteps: 3 }),
      backendOptions: cpu,
      onStep: (l) => seen.push(l.step),
    };
    const result = await trlBackend.train(job);
    const log = steps(runDir);
    assert.deepEqual(log.map((l) => l.step), [1, 2, 3]);
    assert.ok(log.every((l) => Number.isFinite(l.loss) && l.loss > 0 && l.tokens > 0 && l.lr > 0));
    assert.deepEqual(seen, [1, 2, 3]);
    assert.equal(result.resumedFrom, 0);
    const config = JSON.parse(readFileSync(join(result.outputDir, 'adapter_config.json'), 'utf8')) as { r: number; lora_alpha: number; base_model_name_or_path: string; revision: string | null };
    assert.deepEqual([config.r, config.lora_alpha], [4, 8]);
    // a local base is named by its absolute path, with no revision
    assert.deepEqual([config.base_model_name_or_path, config.revision], [resolve(MODEL), null]);
    await assertEngineLoads(result.outputDir);
  });

  it("a base from the Hub cache: PEFT's save records the Hub id and the snapshot's commit as revision, as the engine's adapters do", async () => {
    const hub = await startFakeHub({ 'acme/tiny-llama': repoOf(filesOfDir(MODEL), { seed: 'trl-base' }) });
    try {
      const { dir, commit } = await pullModel(parseHubRef('acme/tiny-llama'), { env: { HF_HOME: join(root, 'hf-home'), HF_ENDPOINT: hub.url } });
      const runDir = join(root, 'hub-sft');
      const options = sftOptionsSchema.parse({ ...quick, maxSteps: 1 });
      const result = await trlBackend.train({ objective: 'sft', model: dir, dataset: dataset('hub-sft', chats), runDir, seed: 1, threads: 1, options, backendOptions: cpu });
      const trl = JSON.parse(readFileSync(join(result.outputDir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual([trl.base_model_name_or_path, trl.revision], ['acme/tiny-llama', commit]);
      const loaded = loadLoraAdapter(result.outputDir).config;
      assert.deepEqual([loaded.baseModelNameOrPath, loaded.revision], ['acme/tiny-llama', commit]);
      // the engine's adapter on the same snapshot names its base the same way
      const s = await setup({ model: dir, options, seed: 1, objective: 'sft', threads: 1 });
      try {
        s.writeOutput(join(root, 'hub-engine-adapter'));
      } finally {
        await s.session.release();
      }
      const engine = JSON.parse(readFileSync(join(root, 'hub-engine-adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual([engine.base_model_name_or_path, engine.revision], [trl.base_model_name_or_path, trl.revision]);
      await assertEngineLoads(result.outputDir);
    } finally {
      await hub.close();
    }
  });

  it('DPO: sigmoid loss with NLL on chosen (TRL loss_type sigmoid+sft, weights 1 and 0.1) trains and comes back', async () => {
    const runDir = join(root, 'dpo');
    const options = dpoOptionsSchema.parse({ ...quick, maxSteps: 2 });
    const result = await trlBackend.train({ objective: 'dpo', model: MODEL, dataset: dataset('dpo', pairs), runDir, seed: 1, threads: 1, options, backendOptions: cpu });
    const job = JSON.parse(readFileSync(join(runDir, 'trl', 'job.json'), 'utf8')) as { trl: Record<string, unknown> };
    assert.deepEqual([job.trl.beta, job.trl.loss_type, job.trl.loss_weights], [0.1, ['sigmoid', 'sft'], [1, 0.1]]);
    const log = steps(runDir);
    assert.deepEqual(log.map((l) => l.step), [1, 2]);
    assert.ok(log.every((l) => Number.isFinite(l.rewardsMargins)), 'DPO metrics (rewards/margins) reach the StepLog');
    await assertEngineLoads(result.outputDir);
  });

  it("the recipe's mix (DPO 1.0 + SFT 0.25) of the TRL-trained DPO adapter and an engine-trained SFT adapter", async () => {
    const dpo = join(root, 'dpo', 'adapter');
    assert.ok(existsSync(join(dpo, 'adapter_config.json')), 'the DPO test trained it');
    // another rank and scale than TRL's (r4, alpha 8), so each part keeps its own alpha / r
    const sft = await trainSft({ model: MODEL, runDir: join(root, 'engine-sft'), threads: 1, rows: chats.slice(0, 4), options: sftOptionsSchema.parse({ ...quick, lora: { rank: 2, alpha: 8 }, maxSteps: 2 }) });
    const weights = trainOptionsSchema.parse({}).mix.weights;
    const mixed = mixAdapters([{ dir: dpo, weight: weights.dpo }, { dir: sft.outputDir, weight: weights.sft }], join(root, 'mixed'), MODEL);
    const [a, b, m] = [dpo, sft.outputDir, mixed].map((d) => loadLoraAdapter(d));
    const shared = [...a.modules.keys()].filter((k) => b.modules.has(k));
    assert.ok(shared.length > 0, 'both adapters train the same modules');
    for (const module of shared) {
      const [da, db, dm] = [a, b, m].map((x) => loraDelta(x.modules.get(module)!, false));
      let scale = 0;
      for (const x of da) scale = Math.max(scale, Math.abs(x));
      assert.ok(scale > 0, `${module}: the TRL delta is not zero`);
      dm.forEach((x, i) => assert.ok(Math.abs(x - (da[i] + 0.25 * db[i])) <= 1e-6, `${module} delta[${i}]`));
    }
    await assertEngineLoads(mixed);
  });

  it("GRPO: completions are rewarded by persona-lab's reward server on loopback", async () => {
    const runDir = join(root, 'grpo');
    const options = grpoOptionsSchema.parse({
      ...quick,
      lora: { rank: 4, alpha: 8 },
      maxSteps: 1,
      groupSize: 2,
      batchSize: 1,
      maxNewTokens: 8,
      rewards: [{ name: 'greets', weight: 1, kind: 'regex', pattern: 'welcome' }],
    });
    const result = await trlBackend.train({ objective: 'grpo', model: MODEL, dataset: dataset('grpo', chats.map((c) => ({ prompt: c.messages[0].content }))), runDir, seed: 1, threads: 1, options, backendOptions: cpu });
    const log = steps(runDir);
    assert.equal(log.length, 1);
    assert.ok(Object.keys(log[0]).some((k) => /^reward/.test(k)), `reward metrics in ${Object.keys(log[0]).join(', ')}`);
    assert.ok(existsSync(join(result.outputDir, 'adapter_model.safetensors')));
  });

  it('a job killed with SIGKILL resumes from the TRL checkpoint: every step logged once', async () => {
    const runDir = join(root, 'resume');
    const job: TrainJob = { objective: 'sft', model: MODEL, dataset: dataset('resume', chats), runDir, seed: 1, threads: 1, options: sftOptionsSchema.parse({ ...quick, maxSteps: 24, checkpointEvery: 2 }), backendOptions: cpu };
    // first run: launched by hand with the job directory the backend writes, killed after checkpoint-2
    await assert.rejects(trlBackend.train({ ...job, backendOptions: { ...cpu, emit: true } }), TrlJobEmitted);
    const child = spawn('bash', [join(runDir, 'trl', 'launch.sh')], { env: { ...process.env, ACCELERATE: join(venv, 'bin', 'accelerate'), OMP_NUM_THREADS: '1' }, stdio: 'ignore', detached: true });
    const exited = new Promise((ok) => child.on('exit', ok));
    for (let waited = 0; !existsSync(join(runDir, 'trl', 'checkpoints', 'checkpoint-2', 'trainer_state.json')); waited += 20) {
      assert.ok(waited < 300_000, 'no checkpoint-2 within 5 minutes');
      await new Promise((ok) => setTimeout(ok, 20));
    }
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    assert.equal(existsSync(join(runDir, 'trl', 'done.json')), false);
    const result = await trlBackend.train(job);
    assert.ok(result.resumedFrom >= 2);
    const log = steps(runDir);
    // enough steps after the first checkpoint that the kill lands mid-run even on a fast machine
    assert.deepEqual(log.map((l) => l.step), Array.from({ length: 24 }, (_, i) => i + 1));
    // token counts restart from the checkpoint's, not from zero: at most one batch of 2 x 64 per step
    assert.ok(log.every((l) => l.tokens > 0 && l.tokens <= 128), log.map((l) => l.tokens).join(' '));
  });

  it('an emitted job, run by its launch.sh, is picked up by a later train', async () => {
    const runDir = join(root, 'emit');
    const job: TrainJob = { objective: 'sft', model: MODEL, dataset: dataset('emit', chats), runDir, seed: 1, threads: 1, options: sftOptionsSchema.parse({ ...quick, maxSteps: 1 }), backendOptions: { ...cpu, emit: true } };
    await assert.rejects(trlBackend.train(job), TrlJobEmitted);
    for (const f of ['job.json', 'dataset.jsonl', 'accelerate.yaml', 'launch.sh']) assert.ok(existsSync(join(runDir, 'trl', f)), f);
    execFileSync('bash', [join(runDir, 'trl', 'launch.sh')], { env: { ...process.env, ACCELERATE: join(venv, 'bin', 'accelerate'), OMP_NUM_THREADS: '1' }, stdio: 'ignore' });
    const result = await trlBackend.train(job);
    assert.ok(existsSync(join(result.outputDir, 'adapter_model.safetensors')));
    assert.deepEqual(steps(runDir).map((l) => l.step), [1]);
  });

  it("one SFT step's loss and LoRA gradients: the engine matches PyTorch/PEFT within 1e-4 relative", async () => {
    const s = await setup({ model: MODEL, options: sftOptionsSchema.parse(quick), seed: 5, objective: 'sft', threads: 1 });
    try {
      // a non-zero B, so every gradient (A's too) is non-trivial
      for (const p of s.params) if (p.name.endsWith('.B')) p.data.forEach((_, i) => (p.data[i] = Math.sin(i + p.data.length) * 0.05));
      const adapter = join(root, 'equivalence-adapter');
      s.writeOutput(adapter);
      const rows = ['the keeper of the lighthouse', 'a small boat at dawn!'].map((t) => tokenizeText(s.tokenizer, t, 64));
      const length = Math.min(...rows.map((r) => r[0].ids.length));
      const seqs = rows.map((r) => ({ ids: r[0].ids.slice(0, length), lossMask: r[0].lossMask.slice(0, length) }));
      const batch = makeBatch(seqs.map((q) => [q]), 0);
      const outputs = ['loss', ...s.params.map((p) => `grad.${p.name}`)];
      const params = Object.fromEntries(s.params.map((p) => [p.name, { data: p.data, dims: p.shape }]));
      const out = await s.session.run({ ...s.constantFeeds, ...params, ...batchFeeds(batch, s.rep, null) }, outputs);
      const n = batch.targetTokens;
      const ref = python({ mode: 'sft', model: MODEL, adapter, ids: seqs.map((q) => q.ids), mask: seqs.map((q) => [...q.lossMask]) }) as { loss: number; grads: Record<string, number[]> };
      const loss = floats(out.loss)[0] / n;
      assert.ok(Math.abs(loss - ref.loss) <= 1e-4 * Math.abs(ref.loss), `loss ${loss} vs ${ref.loss}`);
      for (const t of s.trainables) {
        const expected = ref.grads[`base_model.model.${t.module}.lora_${t.factor}.default.weight`];
        assert.ok(expected, `PEFT gradient of ${t.module} ${t.factor}`);
        const got = floats(out[`grad.${t.name}`]);
        let scale = 0;
        for (const x of expected) scale = Math.max(scale, Math.abs(x));
        assert.ok(scale > 0);
        for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(got[i] / n - expected[i]) <= 1e-4 * scale, `${t.name}[${i}]: ${got[i] / n} vs ${expected[i]}`);
      }
    } finally {
      await s.session.release();
    }
  });

  it("one DPO step's loss (sigmoid + 0.1 NLL on chosen): the engine matches PyTorch/PEFT within 1e-4 relative", async () => {
    const options = dpoOptionsSchema.parse(quick);
    const s = await setup({ model: MODEL, options, seed: 5, objective: 'dpo', dpoBeta: options.beta, threads: 1 });
    try {
      for (const p of s.params) if (p.name.endsWith('.B')) p.data.forEach((_, i) => (p.data[i] = Math.sin(i + p.data.length) * 0.05));
      const adapter = join(root, 'dpo-equivalence-adapter');
      s.writeOutput(adapter);
      const { pairs } = tokenizePairs(s, pairs2, options.maxLength);
      const scorer = await referenceScorer(s, 1);
      const ref = await scorer.score(pairBatch(s, pairs, 0).feeds);
      await scorer.release();
      pairs.forEach((p, i) => (p.ref = [ref.logp[i], ref.logp[pairs.length + i]]));
      const mb = pairBatch(s, pairs, options.nllCoef);
      const params = Object.fromEntries(s.params.map((p) => [p.name, { data: p.data, dims: p.shape }]));
      const out = await s.session.run({ ...s.constantFeeds, ...params, ...mb.feeds }, ['loss']);
      const loss = floats(out.loss)[0] / mb.normaliser;
      const expected = python({
        mode: 'dpo',
        model: MODEL,
        adapter,
        beta: options.beta,
        nll: options.nllCoef,
        pairs: pairs.map((p) => ({ chosen: p.chosen.ids, chosenMask: [...p.chosen.lossMask], rejected: p.rejected.ids, rejectedMask: [...p.rejected.lossMask] })),
      }).loss as number;
      assert.ok(Math.abs(loss - expected) <= 1e-4 * Math.abs(expected), `loss ${loss} vs ${expected}`);
    } finally {
      await s.session.release();
    }
  });
});
