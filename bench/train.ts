/**
 * Training benchmark, on demand (not in CI):
 *
 *   npx tsx bench/train.ts [--threads 2] [--steps 4] [--rank 8] [--batch 8] [--micro 8] [--length 256] [--feed] [--no-arena] [--no-prepacking] [--checkpointing attention|layers|off] [--base float32|int8] [--profile]
 *
 * --micro R splits the batch into session calls of R rows (gradient accumulation: same step, less
 * activation memory); --feed passes weights as feeds instead of baking them in; --no-arena turns
 * ORT's memory arena off; --no-prepacking stops ORT pre-packing baked-in weights; --profile prints
 * kernel time per ONNX op type. By default the step runs side by side in every activation-
 * checkpointing mode with float32 base weights, and in 'attention' and 'off' with int8 base weights
 * (--checkpointing M, --base float32|int8: only those).
 *
 * LoRA SFT (rank 8 on q, k, v, o; generic autodiff over the engine's graph) on a random model shaped
 * like SmolLM2-135M (d 576, 30 layers, 9 heads, 3 KV heads, FFN 1536, vocabulary 49,152, tied
 * embeddings), batch 8 x 256. One optimizer step = one session call (loss and every LoRA gradient)
 * plus clipping and AdamW in TypeScript. Each variant trains in a child process so its peak resident
 * memory is its own (the training steps' peak, reset after the session is created, and creation's
 * own); ORT's big-MatMul rate is measured before, between and after them in the parent, and the
 * load average is printed: other processes' load hits both, so the ratios (model-FLOPs utilisation,
 * fraction of the MatMul-rate bound) are the result, absolute tokens/s are contaminated on a shared
 * machine.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Graph } from '../src/engine/graph/index.js';
import { parseModelConfig } from '../src/engine/io/config.js';
import { type Feed, Session, floats } from '../src/engine/runtime/index.js';
import { makeBatch } from '../src/train/data.js';
import { type CheckpointMode, batchFeeds, buildTrainGraph, int8Weights } from '../src/train/graph.js';
import { AdamW, GradAccumulator, clipGradNorm } from '../src/train/optim.js';
import { Rng } from '../src/train/rng.js';
import { initLora } from '../src/train/setup.js';
import { measureMatmulGflops } from './engine-ops.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const threads = arg('threads', 2);
const steps = arg('steps', 4);
const rank = arg('rank', 8);
const batch = arg('batch', 8);
const length = arg('length', 256);
const micro = arg('micro', batch);
const arena = !process.argv.includes('--no-arena');
const feedWeights = process.argv.includes('--feed');
const option = (name: string): string | null => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : null;
};
const onlyMode = option('checkpointing') as CheckpointMode | null;
const onlyBase = option('base') as BaseWeights | null;
const profile = process.argv.includes('--profile');
const profilePrefix = `bench-train-profile-${process.pid}`;

const shape = { d: 576, layers: 30, heads: 9, kv: 3, ff: 1536, vocab: 49152 };
const headDim = shape.d / shape.heads;

const config = parseModelConfig({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: shape.d,
  intermediate_size: shape.ff,
  num_hidden_layers: shape.layers,
  num_attention_heads: shape.heads,
  num_key_value_heads: shape.kv,
  vocab_size: shape.vocab,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  max_position_embeddings: 8192,
  tie_word_embeddings: true,
  torch_dtype: 'float32',
});

function randomWeights(): Map<string, Float32Array> {
  const rng = Rng.seeded(1);
  const t = (n: number, std: number) => rng.fillUniform(new Float32Array(n), -std * Math.sqrt(3), std * Math.sqrt(3));
  const ones = (n: number) => new Float32Array(n).fill(1);
  const { d, ff, kv, vocab } = shape;
  const w = new Map<string, Float32Array>([['model.embed_tokens.weight', t(vocab * d, 0.02)], ['model.norm.weight', ones(d)]]);
  for (let l = 0; l < shape.layers; l++) {
    const p = `model.layers.${l}`;
    w.set(`${p}.input_layernorm.weight`, ones(d));
    w.set(`${p}.post_attention_layernorm.weight`, ones(d));
    w.set(`${p}.self_attn.q_proj.weight`, t(d * d, 0.04));
    w.set(`${p}.self_attn.k_proj.weight`, t(kv * headDim * d, 0.04));
    w.set(`${p}.self_attn.v_proj.weight`, t(kv * headDim * d, 0.04));
    w.set(`${p}.self_attn.o_proj.weight`, t(d * d, 0.04));
    w.set(`${p}.mlp.gate_proj.weight`, t(ff * d, 0.04));
    w.set(`${p}.mlp.up_proj.weight`, t(ff * d, 0.04));
    w.set(`${p}.mlp.down_proj.weight`, t(d * ff, 0.025));
  }
  return w;
}

/**
 * Model FLOPs of one training step, the usual convention (PaLM's MFU): 6 x matmul parameters per token
 * (forward, backward to activations, backward to weights) plus attention, whatever is trained. A LoRA
 * step executes about 2/3 of that (frozen weights get no gradient), reported beside it.
 */
function stepFlops(tokens: number, context: number): { model: number; executed: number; recomputed: Record<CheckpointMode, number> } {
  const { d, layers, kv, ff, vocab } = shape;
  const matmulParams = layers * (2 * d * d + 2 * d * kv * headDim + 3 * d * ff) + vocab * d;
  const attention = layers * 2 * 2 * context * d; // scores and weighted values, per token
  const forward = tokens * (2 * matmulParams + attention);
  // what the backward recomputes: the forward values gradient rules read (q, k, v and attention for
  // 'attention'; plus gate and up for 'layers'; never o, down or the head, whose outputs no rule reads)
  const attentionBlock = tokens * (layers * 2 * d * (d + 2 * kv * headDim) + attention);
  const withMlp = attentionBlock + tokens * layers * 2 * d * 2 * ff;
  return { model: 3 * forward, executed: 2 * forward, recomputed: { attention: attentionBlock, layers: withMlp, off: 0 } };
}

/** Time per ONNX op type per step from an ORT profile (Chrome trace), largest first. */
function summariseProfile(path: string, runs: number): string {
  const events = JSON.parse(readFileSync(path, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const byOp = new Map<string, number>();
  for (const e of events) if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) byOp.set(e.args!.op_name!, (byOp.get(e.args!.op_name!) ?? 0) + e.dur);
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  const rows = [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 25);
  return [`profile ${path}: kernel time per step ${(total / runs / 1000).toFixed(0)} ms`, ...rows.map(([op, us]) => `  ${op.padEnd(28)} ${(us / runs / 1000).toFixed(1).padStart(8)} ms  ${((100 * us) / total).toFixed(1)}%`)].join('\n');
}

/** The child: builds the graph and session, runs `steps` optimizer steps, prints JSON. */
async function child(): Promise<void> {
  const g = new Graph('bench-train');
  const built = performance.now();
  const tg = buildTrainGraph(g, { config, lora: { rank, alpha: 2 * rank, targets: ['q', 'k', 'v', 'o'] }, objective: 'sft', checkpointing: onlyMode ?? 'attention', baseWeights: onlyBase ?? 'float32' });
  let weights: Map<string, Float32Array | Int8Array> | null = onlyBase === 'int8' ? int8Weights(randomWeights(), config) : randomWeights();
  const session = await Session.create(g, { weights, weightsAs: feedWeights ? 'feed' : 'initializer', threads, arena, prepacking: !process.argv.includes('--no-prepacking'), ...(profile && { profilePrefix: join(tmpdir(), profilePrefix) }) });
  if (!feedWeights) weights = null; // baked into the session: let the JS copy go
  const createMs = performance.now() - built;
  const params = initLora(tg.trainables, Rng.seeded(2));
  const optimizer = new AdamW(params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
  const rng = Rng.seeded(3);
  const rows = Array.from({ length: batch }, () => [{ ids: Array.from({ length }, () => rng.int(0, shape.vocab - 1)), lossMask: new Uint8Array(length).fill(1) }]);
  const constant: Record<string, Feed> = {
    lora_scale_0: { data: new Float32Array([2]), dims: [] },
    ...Object.fromEntries(params.map((p) => [p.name, { data: p.data, dims: p.shape }])),
  };
  const micros: Record<string, Feed>[] = [];
  for (let r = 0; r < batch; r += micro) micros.push({ ...constant, ...batchFeeds(makeBatch(rows.slice(r, r + micro), 0), shape.heads / shape.kv, null) });
  const outputs = ['loss', ...params.map((p) => `grad.${p.name}`)];
  const accumulator = new GradAccumulator(params.map((p) => p.data.length));
  const createPeakMiB = process.resourceUsage().maxRSS / 1024;
  writeFileSync('/proc/self/clear_refs', '5'); // reset the peak (VmHWM): the training steps' own peak is read below
  const times: number[] = [];
  let cpu = process.cpuUsage();
  for (let s = 0; s <= steps; s++) {
    if (s === 1) cpu = process.cpuUsage();
    const t0 = performance.now();
    for (const feeds of micros) {
      const out = await session.run(feeds, outputs);
      accumulator.add(params.map((p) => floats(out[`grad.${p.name}`])), floats(out.loss)[0], micro * (length - 1));
    }
    const { grads } = accumulator.mean();
    clipGradNorm(grads, 1);
    optimizer.update(grads, 1e-4);
    accumulator.reset();
    if (s > 0) times.push(performance.now() - t0); // step 0 warms up
  }
  cpu = process.cpuUsage(cpu);
  const sorted = [...times].sort((x, y) => x - y);
  const peakMiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
  console.log(JSON.stringify({ createPeakMiB, userMs: cpu.user / 1000 / steps, systemMs: cpu.system / 1000 / steps, stepMs: sorted[Math.floor(sorted.length / 2)], minMs: sorted[0], createMs, peakMiB, nodes: session.compiled.nodeCount }));
  void weights;
  if (profile) {
    await session.ort.endProfiling(); // writes the trace; onnxruntime-node does not return its path
    const path = readdirSync(tmpdir()).filter((f) => f.startsWith(profilePrefix)).sort().pop()!;
    console.error(summariseProfile(join(tmpdir(), path), steps + 1));
  }
  await session.release();
}

interface ChildResult {
  createPeakMiB: number;
  userMs: number;
  systemMs: number;
  stepMs: number;
  minMs: number;
  createMs: number;
  peakMiB: number;
  nodes: number;
}

type BaseWeights = 'float32' | 'int8';

/** The variants run side by side (each in its own child), with the command line's other flags. */
const VARIANTS: { mode: CheckpointMode; base: BaseWeights }[] = [
  { mode: 'attention', base: 'float32' },
  { mode: 'layers', base: 'float32' },
  { mode: 'off', base: 'float32' },
  { mode: 'attention', base: 'int8' },
  { mode: 'off', base: 'int8' },
];

async function main(): Promise<void> {
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const tokens = batch * length;
  const picked = (a: string) => a === '--checkpointing' || a === '--base';
  const passed = process.argv.slice(2).filter((a, i, all) => !picked(a) && !picked(all[i - 1]));
  const variants = VARIANTS.filter((v) => (onlyMode ?? v.mode) === v.mode && (onlyBase ?? v.base) === v.base);
  console.log(`LoRA SFT rank ${rank} on q,k,v,o; random SmolLM2-135M-shaped model; batch ${batch} x ${length} in session calls of ${micro} rows; threads ${threads}; weights as ${feedWeights ? 'feeds' : 'initializers'}; arena ${arena ? 'on' : 'off'}`);
  console.log(`load average at start ${load()} (the machine has ${(await import('node:os')).cpus().length} cores)`);
  const matmulRates = [await measureMatmulGflops({ threads, rounds: 3 })];
  const results: ChildResult[] = [];
  for (const { mode, base } of variants) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', ...passed, '--checkpointing', mode, '--base', base], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`training child (checkpointing ${mode}, base ${base}) failed: ${r.stderr}`);
    if (r.stderr) console.log(`checkpointing ${mode}, base ${base}:\n${r.stderr}`);
    results.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult);
    matmulRates.push(await measureMatmulGflops({ threads, rounds: 3 }));
  }
  const matmul = matmulRates.reduce((a, b) => a + b, 0) / matmulRates.length;
  const flops = stepFlops(tokens, length / 2);
  const rate = (f: number, ms: number) => f / (ms / 1000) / 1e9;
  console.log(`\nORT big MatMul 2048^3, GFLOP/s, before/between/after the variants: ${matmulRates.map((r) => r.toFixed(1)).join(' / ')} (mean ${matmul.toFixed(1)})`);
  const perToken = flops.executed / tokens;
  console.log(`executed work per token: ${(perToken / 1e6).toFixed(0)} MFLOP (forward + backward to activations), plus what checkpointing recomputes`);
  console.log(`the target, 800 tokens/s, needs ${((800 * perToken) / 1e9).toFixed(0)} GFLOP/s executed: ${((800 * perToken) / 1e9 / matmul).toFixed(2)}x this machine's big-MatMul rate`);
  variants.forEach(({ mode, base }, i) => {
    const res = results[i];
    const executed = flops.executed + flops.recomputed[mode];
    const bound = (matmul * 1e9) / (executed / tokens);
    const isDefault = mode === 'attention' && base === 'float32';
    console.log(`\ncheckpointing '${mode}', base ${base}${isDefault ? ' (the defaults)' : ''}: ${res.nodes} ONNX nodes, session created in ${(res.createMs / 1000).toFixed(1)} s`);
    console.log(`  step (median of ${steps})   ${res.stepMs.toFixed(0).padStart(8)} ms   best ${res.minMs.toFixed(0)} ms; CPU user ${res.userMs.toFixed(0)} ms, system ${res.systemMs.toFixed(0)} ms`);
    console.log(`  tokens/s            ${(tokens / (res.stepMs / 1000)).toFixed(0).padStart(8)}      best ${(tokens / (res.minMs / 1000)).toFixed(0)}; at most ${bound.toFixed(0)} if every executed FLOP ran at the big-MatMul rate (${((tokens / (res.stepMs / 1000)) / bound).toFixed(2)} of it)`);
    console.log(`  model GFLOP/s (6N)  ${rate(flops.model, res.stepMs).toFixed(1).padStart(8)}      MFU vs big MatMul ${(rate(flops.model, res.stepMs) / matmul).toFixed(2)}x (LoRA executes 4N, not 6N)`);
    console.log(`  executed GFLOP/s    ${rate(executed, res.stepMs).toFixed(1).padStart(8)}      ${(rate(executed, res.stepMs) / matmul).toFixed(2)}x of big MatMul`);
    console.log(`  peak RSS, training  ${res.peakMiB.toFixed(0).padStart(8)} MiB  (target <= 4096); creating the session: ${res.createPeakMiB.toFixed(0)} MiB`);
  });
  console.log(`\nload average at end ${load()}: absolute figures are contaminated by other processes on a shared machine; the ratios much less so`);
}

if (process.argv.includes('--child')) await child();
else if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
