/**
 * Scale-out benchmarks, on demand (not in CI); needs the trl venv (persona-lab setup trl):
 *
 *   npx tsx bench/trl.ts [--threads 2] [--steps 3] [--rounds 1] [--rank 8] [--batch 8] [--length 256] [--layers 30] [--checkpointing off,attention] [--compare-tree DIR] [--torch-profile] [--overhead-steps 40] [--repeats 3] [--flush-denormal] [--skip-step] [--skip-overhead]
 *
 * 1. One LoRA SFT step (rank 8 on q, k, v, o; float32) on a random model shaped like SmolLM2-135M
 *    (d 576, 9 heads, 3 KV heads, FFN 1536, vocabulary 49,152, tied embeddings; --layers of 30),
 *    batch x length tokens, the same token ids and thread count, side by side in one run: the engine
 *    (ORT session: loss and LoRA gradients, AdamW in TypeScript) vs PyTorch + PEFT as installed from
 *    the Python package index (forward, backward, clipping, AdamW). Like for like, and printed as
 *    such: the same intra-op threads (ORT's, torch.set_num_threads; OMP_NUM_THREADS on both), float32
 *    base and adapter on both, the same LoRA rank/alpha/targets/dropout (0), the same batch and
 *    loss normaliser, and no activation checkpointing on either side: PyTorch recomputes nothing
 *    unless asked, so the engine's `off` mode is the like-for-like row; its default `attention` mode
 *    (recomputes each layer's attention block, less memory) is printed beside it (--checkpointing
 *    picks the engine rows). Each side runs in its own child process so its peak RSS (the process's
 *    whole peak: loading, session creation and the steps) is its own; the median step after one
 *    warm-up step is reported. --rounds N repeats the children in rotating order and reports each
 *    side's median, so a change in the machine's load falls on all sides. --compare-tree DIR also
 *    runs the engine rows from another checkout of the repository (its src/, this bench's driver),
 *    interleaved with these: an A/B of an engine change in one invocation. --torch-profile prints
 *    PyTorch's own time per op of one step (torch.profiler), to compare with bench/train.ts --profile.
 * 2. Orchestration overhead of the trl backend: an SFT job on the fixtures' tiny Llama through
 *    trlBackend.train (job directory, venv probe, log following, adapter copy) vs the same job's
 *    launch.sh run by hand, in --repeats interleaved pairs (order alternating, so a change in the
 *    machine's load falls on both sides); per pair the difference, in seconds and as a fraction of
 *    the hand-run time, reported as median and range. A job of one run is mostly Python start-up
 *    (torch, TRL), so the steps make the job long enough that the fixed cost is measured against
 *    real training time. On a loaded machine the wall times of two identical jobs differ by more
 *    than the overhead, so the fixed cost is also timed directly: before launch.sh starts (broken
 *    down by the backend's phase marks: checks and venv probe, job directory, log follower), and
 *    from done.json to the return, less the same exit interval of the hand run; its share of the
 *    hand-run time is printed against the 2% target, with the load average.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeSafetensors } from '../src/engine/io/safetensors.js';
import { llamaConfig } from '../src/experiments/tiny/index.js';
import { TrlJobEmitted, defaultTrlVenv, trlBackend } from '../src/train/backends/trl.js';
import type { CheckpointMode } from '../src/train/graph.js';
import { sftOptionsSchema } from '../src/train/options.js';
import { Rng } from '../src/train/rng.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const option = (name: string): string | null => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : null;
};
const threads = arg('threads', 2);
const steps = arg('steps', 3);
const rank = arg('rank', 8);
const batch = arg('batch', 8);
const length = arg('length', 256);
const layers = arg('layers', 30);
const venv = defaultTrlVenv();
const python = join(venv, 'bin', 'python');
const root = mkdtempSync(join(tmpdir(), 'bench-trl-'));
const shape = { vocabSize: 49152, hiddenSize: 576, numLayers: layers, numHeads: 9, numKvHeads: 3, intermediateSize: 1536, maxPositionEmbeddings: 2048, ropeTheta: 100000 };

/** Child mode: the engine's steps on the model dir, with the engine modules of checkout `root`; prints JSON like the Python side. */
async function engineChild(dir: string, ids: number[][], mode: CheckpointMode, root: string): Promise<void> {
  const load = async <T>(path: string) => (await import(pathToFileURL(join(root, path)).href)) as T;
  const { setup: setupOf } = await load<typeof import('../src/train/setup.js')>('src/train/setup.ts');
  const { makeBatch: batchOf } = await load<typeof import('../src/train/data.js')>('src/train/data.ts');
  const { batchFeeds: feedsOf } = await load<typeof import('../src/train/graph.js')>('src/train/graph.ts');
  const { AdamW: Adam, clipGradNorm: clip } = await load<typeof import('../src/train/optim.js')>('src/train/optim.ts');
  const { sftOptionsSchema: schema } = await load<typeof import('../src/train/options.js')>('src/train/options.ts');
  const { floats: floatsOf } = await load<typeof import('../src/engine/runtime/index.js')>('src/engine/runtime/index.ts');
  const options = schema.parse({ lora: { rank, alpha: 2 * rank, dropout: 0, targets: ['q', 'k', 'v', 'o'] }, batchSize: batch, maxLength: length, activationCheckpointing: mode, baseWeights: 'float32' });
  const s = await setupOf({ model: dir, options, seed: 1, objective: 'sft', threads });
  const rows = ids.map((r) => [{ ids: r, lossMask: Uint8Array.from(r, (_, i) => (i === 0 ? 0 : 1)) }]);
  const feeds = feedsOf(batchOf(rows, 0), s.rep, null);
  const optimizer = new Adam(s.params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
  const outputs = ['loss', ...s.params.map((p) => `grad.${p.name}`)];
  const params = Object.fromEntries(s.params.map((p) => [p.name, { data: p.data, dims: p.shape }]));
  const n = batch * (length - 1); // the loss normaliser: every target token, as PyTorch's mean
  const times: number[] = [];
  const cpu: number[] = [];
  let loss = 0;
  let firstLoss = 0;
  for (let step = 0; step <= steps; step++) {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    const out = await s.session.run({ ...s.constantFeeds, ...params, ...feeds }, outputs);
    const grads = s.params.map((p) => floatsOf(out[`grad.${p.name}`]).map((g) => g / n));
    loss = floatsOf(out.loss)[0] / n;
    if (step === 0) firstLoss = loss;
    clip(grads, 1);
    optimizer.update(grads, 1e-4);
    if (step > 0) {
      times.push((performance.now() - start) / 1000);
      const used = process.cpuUsage(cpuStart);
      cpu.push((used.user + used.system) / 1e6);
    }
  }
  const trainable = s.params.reduce((a, p) => a + p.data.length, 0);
  const facts = `float32, ${trainable} trainable (LoRA r${rank}/alpha ${2 * rank} on q,k,v,o, dropout 0), ORT intra-op threads ${threads}, checkpointing ${mode}`;
  console.log(JSON.stringify({ seconds: median(times), cpuSeconds: median(cpu), loss, firstLoss, peakRssMiB: process.resourceUsage().maxRSS / 1024, facts }));
}

interface SideResult {
  seconds: number;
  /** CPU time per step (all threads): far less moved by other processes' load than the wall time. */
  cpuSeconds: number;
  loss: number;
  firstLoss: number;
  peakRssMiB: number;
  facts: string;
}

function lastJson(text: string): SideResult {
  return JSON.parse(text.trim().split('\n').at(-1)!) as SideResult;
}

const median = (xs: readonly number[]) => spread(xs).median;

async function stepBench(): Promise<void> {
  const dir = join(root, 'smollm2-shape');
  const rng = Rng.seeded(7);
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(llamaConfig(shape, { bos: 1, eos: 2, pad: 0 }), null, 2));
  const d = shape.hiddenSize;
  const kv = (d / shape.numHeads) * shape.numKvHeads;
  const tensors: { name: string; shape: number[] }[] = [{ name: 'model.embed_tokens.weight', shape: [shape.vocabSize, d] }, { name: 'model.norm.weight', shape: [d] }];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    tensors.push(
      { name: `${p}input_layernorm.weight`, shape: [d] },
      { name: `${p}post_attention_layernorm.weight`, shape: [d] },
      { name: `${p}self_attn.q_proj.weight`, shape: [d, d] },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, d] },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, d] },
      { name: `${p}self_attn.o_proj.weight`, shape: [d, d] },
      { name: `${p}mlp.gate_proj.weight`, shape: [shape.intermediateSize, d] },
      { name: `${p}mlp.up_proj.weight`, shape: [shape.intermediateSize, d] },
      { name: `${p}mlp.down_proj.weight`, shape: [d, shape.intermediateSize] },
    );
  }
  writeSafetensors(
    join(dir, 'model.safetensors'),
    tensors.map((t) => {
      const data = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
      if (t.name.endsWith('norm.weight')) data.fill(1);
      else rng.fillUniform(data, -0.04, 0.04);
      return { ...t, data };
    }),
    { format: 'pt' },
  );
  // the engine reads a tokenizer beside the weights; the fixtures' tiny one serves (ids are fed directly)
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) execFileSync('cp', [fileURLToPath(new URL(`../test/fixtures/models/llama/${f}`, import.meta.url)), dir]);
  const ids = Array.from({ length: batch }, (_, b) => Array.from({ length }, (_, t) => 3 + ((b * 7919 + t * 104729) % (shape.vocabSize - 3))));
  const idsFile = join(root, 'ids.json');
  writeFileSync(idsFile, JSON.stringify(ids));
  const env = { ...process.env, OMP_NUM_THREADS: String(threads) };
  const modes = (option('checkpointing') ?? 'off,attention').split(',') as CheckpointMode[];
  const compareTree = option('compare-tree');
  const here = fileURLToPath(new URL('..', import.meta.url));
  const flushDenormal = process.argv.includes('--flush-denormal');
  type Side = { label: string; run: () => SideResult };
  const engineSide = (mode: CheckpointMode, tree: string, label: string): Side => ({
    label,
    run: () => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--engine-child', dir, idsFile, mode, tree, ...process.argv.slice(2)], { encoding: 'utf8', env });
      if (r.status !== 0) throw new Error(`engine (${label}) failed: ${r.stderr}`);
      return lastJson(r.stdout);
    },
  });
  const sides: Side[] = [];
  for (const mode of modes) {
    sides.push(engineSide(mode, here, `engine ${mode}${mode === 'off' ? ' (like for like)' : mode === 'attention' ? ' (default)' : ''}`));
    if (compareTree) sides.push(engineSide(mode, compareTree, `engine ${mode}, ${compareTree}`));
  }
  sides.push({
    label: 'pytorch + peft',
    run: () => {
      const r = spawnSync(python, [fileURLToPath(new URL('trl_step.py', import.meta.url)), JSON.stringify({ model: dir, ids, rank, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], threads, steps, flushDenormal, profile: process.argv.includes('--torch-profile') })], { encoding: 'utf8', env });
      if (r.status !== 0) throw new Error(r.stderr);
      if (r.stderr.includes('torch.profiler')) console.error(r.stderr.slice(r.stderr.indexOf('torch.profiler')));
      return lastJson(r.stdout);
    },
  });
  const rounds = arg('rounds', 1);
  const results = sides.map(() => [] as SideResult[]);
  for (let round = 0; round < rounds; round++) {
    // rotate the order each round, so a drift in the machine's load does not favour one side
    for (let k = 0; k < sides.length; k++) {
      const i = (k + round) % sides.length;
      results[i].push(sides[i].run());
    }
  }
  const tokens = batch * length;
  const versions = execFileSync(python, ['-c', 'import torch, peft, transformers; print(f"torch {torch.__version__}, peft {peft.__version__}, transformers {transformers.__version__}")'], { encoding: 'utf8' }).trim();
  const torchSide = results.at(-1)!;
  const torchSeconds = median(torchSide.map((r) => r.seconds));
  const torchRss = median(torchSide.map((r) => r.peakRssMiB));
  const torchCpu = median(torchSide.map((r) => r.cpuSeconds));
  console.log(`LoRA SFT step, SmolLM2-135M shape (${layers} layers), B${batch} x ${length}, rank ${rank} on q,k,v,o, ${threads} threads; ${versions}${flushDenormal ? ', PyTorch flushing denormals' : ''}; median of ${steps} steps after a warm-up, ${rounds} round(s)`);
  console.log('like for like: same token ids and loss normaliser (mean over B x (T-1) targets), float32 base and adapter, same LoRA shape, same intra-op threads (OMP_NUM_THREADS too), no activation checkpointing on either side in the `off` row; peak RSS is each process\'s whole peak');
  sides.forEach((side, i) => {
    const rs = results[i];
    const sec = median(rs.map((r) => r.seconds));
    const rss = median(rs.map((r) => r.peakRssMiB));
    const cpu = median(rs.map((r) => r.cpuSeconds));
    const ratio = i === sides.length - 1 ? '' : `  ${(torchSeconds / sec).toFixed(2)}x PyTorch tokens/s (CPU time ${(torchCpu / cpu).toFixed(2)}x), ${(rss / torchRss).toFixed(2)}x its RSS`;
    console.log(`  ${side.label.padEnd(34)} ${sec.toFixed(2)} s/step (CPU ${cpu.toFixed(2)} s)  ${(tokens / sec).toFixed(0).padStart(5)} tokens/s  peak RSS ${rss.toFixed(0).padStart(5)} MiB  loss ${rs[0].firstLoss.toFixed(4)} -> ${rs[0].loss.toFixed(4)}${ratio}`);
    console.log(`    ${rs[0].facts}${rounds > 1 ? `; per round ${rs.map((r) => (tokens / r.seconds).toFixed(0)).join(', ')} tokens/s` : ''}`);
  });
  console.log(`  load average ${loadavg()[0].toFixed(1)} (other processes slow every side)`);
}

/** Median and range of a sample. */
function spread(xs: readonly number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s.at(-1)! };
}

async function overheadBench(): Promise<void> {
  const model = fileURLToPath(new URL('../test/fixtures/models/llama/', import.meta.url));
  const rows = Array.from({ length: 16 }, (_, i) => ({ messages: [{ role: 'user', content: `Greet guest ${i}` }, { role: 'assistant', content: `Welcome, dear guest ${i}.` }] }));
  const dataset = join(root, 'sft.jsonl');
  writeFileSync(dataset, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const repeats = arg('repeats', 3);
  const options = sftOptionsSchema.parse({ lora: { rank: 4, alpha: 8 }, batchSize: 2, gradAccumulation: 1, maxLength: 64, maxSteps: arg('overhead-steps', 40), checkpointEvery: 1000 });
  const job = (runDir: string, emit: boolean) => ({ objective: 'sft' as const, model, dataset, runDir, seed: 1, threads, options, backendOptions: { venv, device: 'cpu', emit } });
  // Besides the wall time, the short intervals around the job, which the load on a shared machine
  // hardly moves: before launch.sh is started (B only: checks, job directory, log follower), and
  // from the job's done.json to the return (the process exiting; B also reads the result and copies
  // the adapter). B's phases come from the backend's marks on the performance timeline.
  const mtime = (file: string) => statSync(file).mtimeMs;
  type Phases = { check: number; jobDir: number; toLaunch: number; collect: number };
  type Run = { wall: number; before: number; after: number; phases?: Phases };
  // A: the job directory the backend writes, its launch.sh run by hand (writing it is not timed)
  const byHand = async (dir: string): Promise<Run> => {
    await trlBackend.train(job(dir, true)).catch((e: unknown) => {
      if (!(e instanceof TrlJobEmitted)) throw e;
    });
    const start = performance.now();
    execFileSync('bash', [join(dir, 'trl', 'launch.sh')], { env: { ...process.env, ACCELERATE: join(venv, 'bin', 'accelerate'), OMP_NUM_THREADS: String(threads) }, stdio: 'ignore' });
    const end = Date.now();
    return { wall: (performance.now() - start) / 1000, before: 0, after: (end - mtime(join(dir, 'trl', 'done.json'))) / 1000 };
  };
  // B: the same job through trlBackend.train (checks, job directory, venv probe, log following, adapter copy)
  const backend = async (dir: string): Promise<Run> => {
    performance.clearMarks();
    const start = performance.now();
    await trlBackend.train(job(dir, false));
    const end = Date.now();
    const wall = (performance.now() - start) / 1000;
    const at = (phase: string) => performance.getEntriesByName(`trl:${phase}`, 'mark')[0].startTime;
    const phases = { check: at('checked') - at('start'), jobDir: at('written') - at('checked'), toLaunch: at('launched') - at('written'), collect: at('collected') - at('exited') };
    for (const k of Object.keys(phases) as (keyof Phases)[]) phases[k] /= 1000;
    return { wall, before: (at('launched') - start) / 1000, after: (end - mtime(join(dir, 'trl', 'done.json'))) / 1000, phases };
  };
  // Interleaved pairs, the order alternating (AB, BA, AB, ...), so drift in the machine's load falls on both sides alike.
  const pairs: { hand: Run; backend: Run }[] = [];
  const loads: number[] = [];
  for (let i = 0; i < repeats; i++) {
    let hand: Run, through: Run;
    if (i % 2 === 0) {
      hand = await byHand(join(root, `hand-${i}`));
      through = await backend(join(root, `backend-${i}`));
    } else {
      through = await backend(join(root, `backend-${i}`));
      hand = await byHand(join(root, `hand-${i}`));
    }
    pairs.push({ hand, backend: through });
    loads.push(loadavg()[0]);
    const p = through.phases!;
    console.log(
      `  pair ${i + 1}: by hand ${hand.wall.toFixed(2)} s (exit ${hand.after.toFixed(3)} s), backend ${through.wall.toFixed(2)} s ` +
        `(before launch ${through.before.toFixed(3)} s = check ${p.check.toFixed(3)} + job dir ${p.jobDir.toFixed(3)} + log/launch ${p.toLaunch.toFixed(3)}; ` +
        `exit ${through.after.toFixed(3)} s, of it collect ${p.collect.toFixed(3)}) (load average ${loads.at(-1)!.toFixed(1)})`,
    );
  }
  const hand = spread(pairs.map((p) => p.hand.wall));
  const through = spread(pairs.map((p) => p.backend.wall));
  const extra = spread(pairs.map((p) => p.backend.wall - p.hand.wall));
  const ratio = spread(pairs.map((p) => (p.backend.wall - p.hand.wall) / p.hand.wall));
  const fixed = pairs.map((p) => p.backend.before + p.backend.after - p.hand.after);
  const fixedSpread = spread(fixed);
  const fixedRatio = spread(pairs.map((p, i) => fixed[i] / p.hand.wall));
  // the backend's own time outside the job: before launch.sh starts and after the job exits
  const own = pairs.map((p) => p.backend.before + p.backend.phases!.collect);
  const ownSpread = spread(own);
  const ownRatio = spread(pairs.map((p, i) => own[i] / p.hand.wall));
  const load = spread(loads);
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  console.log(`trl backend orchestration, tiny Llama SFT ${options.maxSteps} steps, ${threads} threads, ${repeats} interleaved pairs (median [min, max]); load average ${load.median.toFixed(1)} [${load.min.toFixed(1)}, ${load.max.toFixed(1)}] on ${availableParallelism()} cores:`);
  console.log(`  launch.sh by hand ${hand.median.toFixed(2)} s [${hand.min.toFixed(2)}, ${hand.max.toFixed(2)}]; through trlBackend.train ${through.median.toFixed(2)} s [${through.min.toFixed(2)}, ${through.max.toFixed(2)}]`);
  console.log(`  wall-time difference per job ${extra.median.toFixed(2)} s [${extra.min.toFixed(2)}, ${extra.max.toFixed(2)}]; ${pct(ratio.median)} [${pct(ratio.min)}, ${pct(ratio.max)}] of the hand-run wall time`);
  console.log(
    `  fixed cost around the job (before launch + exit, less the hand run's exit) ${fixedSpread.median.toFixed(3)} s [${fixedSpread.min.toFixed(3)}, ${fixedSpread.max.toFixed(3)}]; ` +
      `${pct(fixedRatio.median)} [${pct(fixedRatio.min)}, ${pct(fixedRatio.max)}] of the hand-run wall time (target <= 2%: ${fixedRatio.median <= 0.02 ? 'met' : 'not met'})`,
  );
  console.log(
    `  of it the backend's own time outside the job (before launch + after exit) ${ownSpread.median.toFixed(3)} s [${ownSpread.min.toFixed(3)}, ${ownSpread.max.toFixed(3)}]; ` +
      `${pct(ownRatio.median)} [${pct(ownRatio.min)}, ${pct(ownRatio.max)}]; the rest is two jobs' exit intervals differing`,
  );
}

const childAt = process.argv.indexOf('--engine-child');
if (childAt >= 0) {
  const { readFileSync } = await import('node:fs');
  const [dir, idsFile, mode, tree] = process.argv.slice(childAt + 1, childAt + 5);
  await engineChild(dir, JSON.parse(readFileSync(idsFile, 'utf8')) as number[][], mode as CheckpointMode, tree);
} else {
  try {
    if (!process.argv.includes('--skip-step')) await stepBench();
    if (!process.argv.includes('--skip-overhead')) await overheadBench();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
