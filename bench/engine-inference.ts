/**
 * Engine inference on SmolLM2-135M: by default a random model of its shape (d 576, 30 layers, 9
 * heads, 3 KV heads, FFN 1536, vocab 49152, tied embeddings); with --gguf, the real Q4_1 GGUF file
 * (scripts/fetch-smollm2.sh), which the engine dequantizes to float32 and llama.cpp runs with its
 * quantized kernels. On demand, not in CI:
 *
 *   npx tsx bench/engine-inference.ts [--threads 2] [--rounds 3] [--decode 32] [--skip-llama]
 *   npx tsx bench/engine-inference.ts --gguf models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --rounds 1 [--memory-only]
 *
 * With --gguf it also measures peak memory, each variant in a fresh child process (load, then
 * generate 8 rows x 32 tokens): the engine with weights fed and as initializers, and llama.cpp, each
 * against the bytes of the weights it holds.
 *
 * Side by side in one run (rounds interleave the variants so other processes' load hits all alike):
 *   matmul     ORT's own rate on one big MatMul of the prefill's shape ([2048, 576] x [576, 1536])
 *   prefill    batch 8 x 256 tokens, tokens/s and the GFLOP/s it implies (vs matmul: target >= 75%)
 *   decode     tokens/s at batch 1, 8, 32 (prompt 16 tokens, --decode new tokens, KV cache)
 *   weights    weights as initializers (the default for generation) and as feeds (run time, session creation)
 *   llama.cpp  node-llama-cpp on the same weights written as GGUF (f32 and f16), when it and a GGUF
 *              writer are available
 * Prints medians over rounds and peak RSS. Absolute numbers depend on the machine's load; the
 * ratios measured side by side are the result.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Graph, linear } from '../src/engine/graph/index.js';
import { Session } from '../src/engine/runtime/index.js';
import { SafetensorsModel, TextTokenizer, loadModelConfig, writeGgufModel, writeSafetensors } from '../src/engine/io/index.js';
import { Model } from '../src/engine/generate/model.js';
import { seededRandom } from '../src/engine/generate/sample.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const threads = arg('threads', 2);
const rounds = arg('rounds', 3);
const decodeTokens = arg('decode', 32);
const skipLlama = process.argv.includes('--skip-llama');
const ggufIndex = process.argv.indexOf('--gguf');
const gguf = ggufIndex >= 0 ? process.argv[ggufIndex + 1] : null;
const memoryChild = process.argv.includes('--memory-child') ? process.argv[process.argv.indexOf('--memory-child') + 1] : null;
/** Any byte-level BPE tokenizer will do for the GGUF file: the bench feeds token ids. */
const TOKENIZER_DIR = join(import.meta.dirname, '..', 'test', 'fixtures', 'models', 'llama');

const shape = { d: 576, layers: 30, heads: 9, kv: 3, ff: 1536, vocab: 49152 };
const headDim = shape.d / shape.heads;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function writeRandomModel(dir: string): number {
  const rand = seededRandom(1);
  const tensor = (name: string, dims: number[], std: number) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (rand() * 2 - 1) * std * Math.sqrt(3);
    return { name, shape: dims, data };
  };
  const ones = (name: string, n: number) => ({ name, shape: [n], data: new Float32Array(n).fill(1) });
  const { d, ff, kv, vocab } = shape;
  const tensors = [tensor('model.embed_tokens.weight', [vocab, d], 0.02)];
  for (let l = 0; l < shape.layers; l++) {
    const p = `model.layers.${l}`;
    tensors.push(
      ones(`${p}.input_layernorm.weight`, d),
      ones(`${p}.post_attention_layernorm.weight`, d),
      tensor(`${p}.self_attn.q_proj.weight`, [d, d], 0.04),
      tensor(`${p}.self_attn.k_proj.weight`, [kv * headDim, d], 0.04),
      tensor(`${p}.self_attn.v_proj.weight`, [kv * headDim, d], 0.04),
      tensor(`${p}.self_attn.o_proj.weight`, [d, d], 0.04),
      tensor(`${p}.mlp.gate_proj.weight`, [ff, d], 0.04),
      tensor(`${p}.mlp.up_proj.weight`, [ff, d], 0.04),
      tensor(`${p}.mlp.down_proj.weight`, [d, ff], 0.025),
    );
  }
  tensors.push(ones('model.norm.weight', d));
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: d,
      intermediate_size: ff,
      num_hidden_layers: shape.layers,
      num_attention_heads: shape.heads,
      num_key_value_heads: kv,
      vocab_size: vocab,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      max_position_embeddings: 8192,
      tie_word_embeddings: true,
      bos_token_id: 1,
      eos_token_id: 2,
      torch_dtype: 'float32',
    }),
  );
  return tensors.reduce((s, t) => s + t.data.length, 0);
}

/** FLOPs of a forward pass over `tokens` new tokens per row attending to `context` positions on average. */
function forwardFlops(rows: number, tokens: number, context: number, lastOnlyHead: boolean): number {
  const { d, layers, kv, ff, vocab } = shape;
  const perTokenLayer = 2 * (d * d * 2 + 2 * d * kv * headDim + 3 * d * ff) + 2 * 2 * context * d;
  const head = 2 * d * vocab * (lastOnlyHead ? rows : rows * tokens);
  return rows * tokens * layers * perTokenLayer + head;
}

async function matmulRate(): Promise<number> {
  const [n, k, m] = [2048, shape.d, shape.ff];
  const g = new Graph('matmul');
  const x = g.input('x', 'float32', [n, k]);
  g.output('y', linear(x, g.param('w', [m, k])));
  const w = new Float32Array(m * k).fill(0.01);
  const s = await Session.create(g, { weights: new Map([['w', w]]), threads });
  const feed = { x: { data: new Float32Array(n * k).fill(0.5), dims: [n, k] } };
  await s.run(feed);
  const reps = 20;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await s.run(feed);
  const secs = (performance.now() - t0) / 1000;
  await s.release();
  return (2 * n * k * m * reps) / secs / 1e9;
}

function prompts(rows: number, length: number): number[][] {
  const rand = seededRandom(rows * 1000 + length);
  return Array.from({ length: rows }, () => Array.from({ length }, () => 3 + Math.floor(rand() * (shape.vocab - 3))));
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

type NodeLlamaCpp = typeof import('node-llama-cpp');

/** llama.cpp through node-llama-cpp: `rows` sequences evaluated concurrently (it batches them), greedy. */
async function llamaCppRunner(path: string, lib: NodeLlamaCpp) {
  const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: lib.LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: path });
  return {
    async run(rows: number[][], newTokens: number): Promise<number> {
      const perRow = Math.max(...rows.map((r) => r.length)) + newTokens + 8;
      const context = await model.createContext({ contextSize: rows.length * perRow, sequences: rows.length, batchSize: 2048, threads });
      const seqs = rows.map(() => context.getSequence());
      const t = await time(() =>
        Promise.all(
          rows.map(async (row, i) => {
            let n = 0;
            for await (const _ of seqs[i].evaluate(row as never, { temperature: 0 })) if (++n >= newTokens) break;
          }),
        ),
      );
      await context.dispose();
      return t;
    },
    dispose: () => llama.dispose(),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-engine-'));
  try {
    const source = gguf ?? dir;
    if (gguf) console.log(`${gguf}: threads ${threads}, rounds ${rounds}`);
    else {
      const params = writeRandomModel(dir);
      console.log(`random SmolLM2-135M-shaped model: ${(params / 1e6).toFixed(1)}M params, threads ${threads}, rounds ${rounds}`);
    }
    const variants: Record<string, { model: Model; create: number }> = {};
    for (const weightsAs of ['feed', 'initializer'] as const) {
      const t0 = performance.now();
      const model = Model.load(source, { weightsAs, threads });
      console.log(`${weightsAs}: loaded in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
      // session creation: the first call compiles the prefill and decode graphs
      const create = await time(() => model.generate(prompts(1, 4), { temperature: 0, maxTokens: 2, stopTokens: [] }));
      variants[weightsAs] = { model, create };
    }
    const results = new Map<string, number[]>();
    const push = (key: string, v: number) => {
      results.set(key, [...(results.get(key) ?? []), v]);
      console.log(`  ${key}: ${v.toFixed(1)}`); // progress, before the summary
    };
    const prefillRows = prompts(8, 256);
    const runners: Record<string, Awaited<ReturnType<typeof llamaCppRunner>>> = {};
    let lib: NodeLlamaCpp | null = null;
    if (!skipLlama) {
      try {
        lib = await import('node-llama-cpp');
      } catch {
        console.log('node-llama-cpp not installed: llama.cpp comparison skipped');
      }
    }
    if (lib && gguf) runners['llama.cpp Q4_1'] = await llamaCppRunner(gguf, lib);
    else if (lib) {
      const config = loadModelConfig(dir);
      const tokenizer = TextTokenizer.load(TOKENIZER_DIR);
      for (const dtype of ['F32', 'F16'] as const) {
        const st = SafetensorsModel.open(dir);
        const path = join(dir, `model-${dtype}.gguf`);
        writeGgufModel(path, config, (name) => st.readFloat32(name), tokenizer, { dtype });
        st.close();
        runners[`llama.cpp ${dtype}`] = await llamaCppRunner(path, lib);
      }
    }
    for (let r = 0; r < rounds; r++) {
      push('matmul GFLOP/s', await matmulRate());
      for (const [name, runner] of Object.entries(runners)) {
        const t = await runner.run(prefillRows, 1);
        push(`${name} prefill tok/s`, (8 * 256) / t);
        for (const batch of [1, 8, 32]) {
          const rows = prompts(batch, 16);
          const first = await runner.run(rows, 1);
          const all = await runner.run(rows, decodeTokens + 1);
          push(`${name} decode b${batch} tok/s`, (batch * decodeTokens) / (all - first));
        }
      }
      for (const [name, { model }] of Object.entries(variants)) {
        // prefill: one token generated (the first comes from the prefill graph's head)
        const t = await time(() => model.generate(prefillRows, { temperature: 0, maxTokens: 1, stopTokens: [] }));
        push(`${name} prefill tok/s`, (8 * 256) / t);
        push(`${name} prefill GFLOP/s`, forwardFlops(8, 256, 128, true) / t / 1e9);
        for (const batch of [1, 8, 32]) {
          const rows = prompts(batch, 16);
          const first = await time(() => model.generate(rows, { temperature: 0, maxTokens: 1, stopTokens: [] }));
          const all = await time(() => model.generate(rows, { temperature: 0, maxTokens: decodeTokens + 1, stopTokens: [] }));
          push(`${name} decode b${batch} tok/s`, (batch * decodeTokens) / (all - first));
        }
      }
    }
    const rate = median(results.get('matmul GFLOP/s')!);
    console.log(`\n${'measure'.padEnd(32)}${'median'.padStart(12)}   notes`);
    for (const [key, values] of results) {
      const m = median(values);
      const note = key.endsWith('prefill GFLOP/s') ? `${((100 * m) / rate).toFixed(0)}% of ORT big-MatMul rate` : '';
      console.log(`${key.padEnd(32)}${m.toFixed(1).padStart(12)}   ${note}`);
    }
    for (const [name, { create }] of Object.entries(variants)) console.log(`${name}: generation session created and first run in ${create.toFixed(2)} s`);
    const ratio = (a: string, b: string, key: string) => {
      const x = results.get(`${a} ${key}`);
      const y = results.get(`${b} ${key}`);
      if (x && y) console.log(`${a} / ${b}, ${key}: ${(median(x) / median(y)).toFixed(2)}x`);
    };
    for (const key of ['prefill tok/s', 'decode b1 tok/s', 'decode b8 tok/s', 'decode b32 tok/s']) {
      ratio('initializer', 'feed', key);
      // the engine's default ('auto') generates with initializers (prefill and decode share the session)
      ratio('initializer', 'llama.cpp F32', key);
      ratio('initializer', 'llama.cpp F16', key);
      ratio('initializer', 'llama.cpp Q4_1', key);
      ratio('feed', 'llama.cpp Q4_1', key);
    }
    console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB (all variants loaded in this process)`);
    const load = (await import('node:os')).loadavg();
    console.log(`load average during the run: ${load.map((x) => x.toFixed(1)).join(' ')} (on ${(await import('node:os')).cpus().length} cores: other processes share them)`);
    for (const { model } of Object.values(variants)) await model.close();
    for (const runner of Object.values(runners)) await runner.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One variant's memory in this (fresh) process: load, generate 8 x 32 tokens, report peak RSS as JSON. */
async function memoryChildRun(kind: string, path: string): Promise<void> {
  const rows = prompts(8, 16);
  const t0 = performance.now();
  let weightBytes = 0;
  if (kind === 'llama.cpp') {
    const lib = await import('node-llama-cpp');
    const runner = await llamaCppRunner(path, lib);
    weightBytes = (await import('node:fs')).statSync(path).size;
    await runner.run(rows, 32);
    await runner.dispose();
  } else {
    const model = Model.load(path, { weightsAs: kind as 'feed' | 'initializer', threads });
    for (const w of model.weights.values()) weightBytes += w.byteLength;
    await model.generate(rows, { temperature: 0, maxTokens: 32, stopTokens: [] });
    await model.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  // VmHWM, not getrusage's maxRSS: Linux carries maxRSS over from the parent through fork and exec
  const hwm = /VmHWM:\s+(\d+) kB/.exec((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'));
  console.log(JSON.stringify({ kind, peakRss: hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024, weightBytes, seconds }));
}

/** Peak RSS of each variant in its own child process, against the bytes of the weights it holds. */
async function memory(path: string): Promise<void> {
  const { spawnSync } = await import('node:child_process');
  console.log('\npeak memory, one fresh process per variant (load + generate 8 rows x 32 tokens):');
  for (const kind of ['feed', 'initializer', ...(skipLlama ? [] : ['llama.cpp'])]) {
    const child = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--memory-child', kind, '--gguf', path, '--threads', String(threads)], { encoding: 'utf8' });
    const line = child.stdout.trim().split('\n').pop() ?? '';
    try {
      const r = JSON.parse(line) as { peakRss: number; weightBytes: number; seconds: number };
      console.log(`  ${kind.padEnd(12)} peak RSS ${(r.peakRss / 1e6).toFixed(0)} MB, weights held ${(r.weightBytes / 1e6).toFixed(0)} MB: ${(r.peakRss / r.weightBytes).toFixed(2)}x (${r.seconds.toFixed(1)} s)`);
    } catch {
      console.log(`  ${kind}: failed (${child.stderr.trim().split('\n').pop()})`);
    }
  }
}

if (memoryChild && gguf) await memoryChildRun(memoryChild, gguf);
else if (gguf && process.argv.includes('--memory-only')) await memory(gguf);
else {
  await main();
  if (gguf) await memory(gguf);
}
