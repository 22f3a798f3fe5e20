/**
 * Engine op benchmarks, on demand (not in CI):
 *
 *   npx tsx bench/engine-ops.ts [--threads 2] [--rounds 5] [--skip-ce]
 *
 * Side by side in one run, variants interleaved round by round (medians) so that other processes'
 * load hits all of them alike:
 *  - ORT's big-MatMul GFLOP/s: the reference rate other engine benchmarks compare against; import
 *    measureMatmulGflops() to measure it in the same run as your own figures;
 *  - cost per graph node: a chain of N tiny Adds vs one;
 *  - `linear` lowerings, the weight fed and baked in (see linearVariants);
 *  - residual add + RMSNorm: one SkipSimplifiedLayerNormalization vs Add + SimplifiedLayerNormalization;
 *  - the loss head (vocabulary projection + cross-entropy, forward and d h) over a 49,152-wide
 *    vocabulary: linearCrossEntropy (row chunks) vs linear + crossEntropy (fused) vs a naive
 *    log-softmax/one-hot composition (time, and peak resident memory in a child process each).
 * Absolute numbers depend on the machine's load; ratios measured in one run are the result.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as G from '../src/engine/graph/index.js';
import { Session } from '../src/engine/runtime/index.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

function randomFloats(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeRuns(fn: () => Promise<unknown>, minMs = 300, minRuns = 3): Promise<number> {
  await fn(); // warm-up
  const start = performance.now();
  let runs = 0;
  while (runs < minRuns || performance.now() - start < minMs) {
    await fn();
    runs++;
  }
  return (performance.now() - start) / runs;
}

/**
 * ORT's MatMul rate on this machine: [n, n] @ [n, n] float32, the weight as an initializer.
 * Returns GFLOP/s (median of `rounds` timings).
 */
export async function measureMatmulGflops(opts: { threads?: number; n?: number; rounds?: number } = {}): Promise<number> {
  const n = opts.n ?? 2048;
  const g = new G.Graph('bigmatmul');
  const a = g.input('a', 'float32', [n, n]);
  g.output('y', G.matmul(a, g.param('b', [n, n])));
  const s = await Session.create(g, { threads: opts.threads, weights: new Map([['b', randomFloats(n * n, 2)]]) });
  const feeds = { a: { data: randomFloats(n * n, 3), dims: [n, n] } };
  const times: number[] = [];
  for (let r = 0; r < (opts.rounds ?? 3); r++) times.push(await timeRuns(() => s.run(feeds), 500));
  await s.release();
  return (2 * n ** 3) / (median(times) / 1000) / 1e9;
}

/** Microseconds per graph node: a chain of `nodes` Adds on a [1, 16] tensor, minus one Add. */
async function nodeOverhead(threads: number, rounds: number): Promise<{ perNode: number; single: number }> {
  const build = (count: number) => {
    const g = new G.Graph(`chain${count}`);
    let x = g.input('x', 'float32', [1, 16]);
    for (let i = 0; i < count; i++) x = G.add(x, i + 1); // distinct constants: no CSE folding
    g.output('y', x);
    return Session.create(g, { threads, optimization: 'basic' });
  };
  const one = await build(1);
  const many = await build(500);
  const feeds = { x: { data: new Float32Array(16), dims: [1, 16] } };
  const t1: number[] = [];
  const tn: number[] = [];
  for (let r = 0; r < rounds; r++) {
    t1.push(await timeRuns(() => one.run(feeds), 200));
    tn.push(await timeRuns(() => many.run(feeds), 200));
  }
  return { perNode: ((median(tn) - median(t1)) / 499) * 1000, single: median(t1) * 1000 };
}

/**
 * linear lowerings, weight fed per run and baked in: `linear` (Transpose + MatMul, which ORT turns
 * into FusedMatMul(transB) for a fed weight and a folded, prepacked MatMul for an initializer),
 * FusedMatMul(transB) written directly, and a MatMul on a pre-transposed weight.
 */
async function linearVariants(threads: number, rounds: number): Promise<Record<string, number>> {
  const rows = 2048;
  const k = 576;
  const n = 1536;
  const w = randomFloats(n * k, 4);
  const wT = new Float32Array(k * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) wT[j * n + i] = w[i * k + j];
  const x = { data: randomFloats(rows * k, 5), dims: [rows, k] };
  const FusedT: G.OpDef = {
    type: 'FusedT',
    shape: ([a, b]) => [{ dtype: a.dtype, shape: [a.shape[0], b.shape[0]] }],
    onnx: (ctx, ins, outs) => ctx.emit('FusedMatMul', ins, outs, { transB: { i: 1 } }, 'com.microsoft'),
  };
  const make = async (variant: string, weightsAs: 'feed' | 'initializer') => {
    const g = new G.Graph(`linear_${variant.replace(/\W/g, '')}`);
    const xi = g.input('x', 'float32', ['N', k]);
    const y =
      variant === 'pre-transposed MatMul' ? G.matmul(xi, g.param('w', [k, n]))
      : variant === 'FusedMatMul(transB)' ? G.apply1(FusedT, [xi, g.param('w', [n, k])], {})
      : G.linear(xi, g.param('w', [n, k]));
    g.output('y', y);
    const weights = new Map([['w', variant === 'pre-transposed MatMul' ? wT : w]]);
    return Session.create(g, { threads, weights, weightsAs });
  };
  const names = ['linear', 'FusedMatMul(transB)', 'pre-transposed MatMul'].flatMap((v) => [`${v}, feed`, `${v}, initializer`]);
  const sessions: Session[] = [];
  for (const name of names) sessions.push(await make(name.split(', ')[0], name.endsWith('feed') ? 'feed' : 'initializer'));
  const times: Record<string, number[]> = Object.fromEntries(names.map((v) => [v, []]));
  for (let r = 0; r < rounds; r++) {
    const order = [...names.keys()].map((i) => (i + r) % names.length); // rotate the order each round
    for (const i of order) times[names[i]].push(await timeRuns(() => sessions[i].run({ x }), 300));
  }
  const flops = 2 * rows * k * n;
  return Object.fromEntries(names.map((v) => [v, flops / (median(times[v]) / 1000) / 1e9]));
}

/** Residual add + RMSNorm, 60 times (a 30-layer decoder's norms) at decode shape [8, 576]: fused vs not. */
async function addNormVariants(threads: number, rounds: number): Promise<Record<string, number>> {
  const build = async (fused: boolean) => {
    const g = new G.Graph(fused ? 'addnorm_fused' : 'addnorm_plain');
    let x = g.input('x', 'float32', ['B', 576]);
    const w = g.param('w', [576]);
    let acc = x;
    for (let i = 0; i < 60; i++) {
      if (fused) {
        const { sum, normed } = G.addRmsNorm(acc, x, w, 1e-5, { kernel: 'skip' });
        [acc, x] = [sum, normed];
      } else {
        acc = G.add(acc, x);
        x = G.rmsNorm(acc, w, 1e-5);
      }
    }
    g.output('y', x);
    return Session.create(g, { threads, weights: new Map([['w', randomFloats(576, 9)]]) });
  };
  const variants: [string, Session][] = [
    ['add + rmsNorm', await build(false)],
    ['SkipSimplifiedLayerNorm', await build(true)],
  ];
  const feeds = { x: { data: randomFloats(8 * 576, 10), dims: [8, 576] } };
  const times: Record<string, number[]> = { 'add + rmsNorm': [], SkipSimplifiedLayerNorm: [] };
  for (let r = 0; r < rounds; r++) {
    // alternate the order so drift in others' load hits both alike
    for (const [k, s] of r % 2 ? [...variants].reverse() : variants) times[k].push(await timeRuns(() => s.run(feeds), 200));
  }
  return Object.fromEntries(Object.entries(times).map(([k, t]) => [k, median(t) * 1000]));
}

/**
 * One loss-head variant in this process: logits = h @ w^T over V=49152 for N=2048 positions
 * (B8 x T256, d=576), loss and d h (as LoRA training needs); ms per forward+backward, peak RSS.
 */
async function lossHeadChild(variant: string, threads: number): Promise<void> {
  const N = 2048;
  const K = 576;
  const V = 49152;
  const g = new G.Graph(`head_${variant}`);
  const h = g.input('h', 'float32', ['N', K]);
  const w = g.param('w', [V, K], { trainable: false });
  const targets = g.input('targets', 'int64', ['N']);
  let perPos: G.Tensor;
  if (variant === 'chunked') perPos = G.linearCrossEntropy(h, w, targets).loss;
  else if (variant === 'fused') perPos = G.crossEntropy(G.linear(h, w), targets);
  else {
    const vocab = g.constant(BigInt64Array.from({ length: V }, (_, i) => BigInt(i)), [V], 'int64');
    const onehot = G.cast(G.equal(G.unsqueeze(targets, 1), vocab), 'float32');
    perPos = G.neg(G.reduceSum(G.mul(G.logSoftmax(G.linear(h, w)), onehot), [1]));
  }
  const loss = G.reduceMean(perPos, [0]);
  g.output('loss', loss);
  g.output('dh_sum', G.reduceSum(G.grad(loss, [h])[0], [0, 1]));
  const s = await Session.create(g, { threads, weights: new Map([['w', randomFloats(V * K, 7)]]) });
  const feeds = {
    h: { data: randomFloats(N * K, 6).map((v) => v * 20), dims: [N, K] },
    targets: { data: BigInt64Array.from({ length: N }, (_, i) => BigInt((i * 7919) % V)), dims: [N] },
  };
  const ms = await timeRuns(() => s.run(feeds), 2000);
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
  console.log(JSON.stringify({ ms, peakMiB: hwm, nodes: s.compiled.nodeCount }));
}

async function main(): Promise<void> {
  const threads = arg('threads', 2);
  const rounds = arg('rounds', 5);
  const child = process.argv.indexOf('--ce-child');
  if (child >= 0) return lossHeadChild(process.argv[child + 1], threads);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`engine-ops bench: ${threads} threads, ${rounds} rounds; load average at start ${load} (numbers above ~${threads} mean other processes share the cores)`);

  const gflops = await measureMatmulGflops({ threads, rounds });
  console.log(`\nORT big MatMul 2048^3 f32: ${gflops.toFixed(1)} GFLOP/s (reference rate)`);

  const node = await nodeOverhead(threads, rounds);
  console.log(`\nper graph node: ${node.perNode.toFixed(2)} us (single-node run: ${node.single.toFixed(1)} us)`);

  const lin = await linearVariants(threads, rounds);
  console.log('\nlinear [2048, 576] x [1536, 576]^T, GFLOP/s and ratio to the big-MatMul rate:');
  for (const [v, rate] of Object.entries(lin)) console.log(`  ${v.padEnd(36)} ${rate.toFixed(1).padStart(7)}   ${(rate / gflops).toFixed(2)}x`);

  const addNorm = await addNormVariants(threads, rounds);
  console.log('\n60 x (residual add + RMSNorm) at [8, 576], us per run:');
  for (const [v, us] of Object.entries(addNorm)) console.log(`  ${v.padEnd(28)} ${us.toFixed(0).padStart(7)}   ${(us / addNorm['add + rmsNorm']).toFixed(2)}x`);

  if (!process.argv.includes('--skip-ce')) {
    console.log('\nloss head h[2048, 576] @ w[49152, 576]^T -> cross-entropy, forward + d h (each variant in its own process):');
    const results: Record<string, { ms: number; peakMiB: number; nodes: number }> = {};
    for (const v of ['chunked', 'fused', 'naive']) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--ce-child', v, '--threads', String(threads)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ce child ${v} failed: ${r.stderr}`);
      results[v] = JSON.parse(r.stdout.trim().split('\n').pop()!);
      console.log(`  ${v.padEnd(8)} ${results[v].ms.toFixed(0).padStart(6)} ms   peak RSS ${results[v].peakMiB.toFixed(0).padStart(5)} MiB   ${results[v].nodes} nodes`);
    }
    console.log('  (one [2048, 49152] f32 tensor is 384 MiB; the weight 108 MiB)');
    for (const v of ['chunked', 'fused']) {
      console.log(`  ${v}/naive: time ${(results[v].ms / results.naive.ms).toFixed(2)}x, peak memory ${(results[v].peakMiB / results.naive.peakMiB).toFixed(2)}x`);
    }
  }
  const loadEnd = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\nload average at end ${loadEnd}`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
