/**
 * Per-call overhead of the provider stack against a bare `openai` SDK call, at concurrency 64,
 * against the loopback test server running in its own process. On demand, not in CI:
 *
 *   npx tsx bench/providers.ts [--calls 2000] [--rounds 5] [--concurrency 64]
 *
 * Variants, interleaved round by round so that load from other processes hits all of them alike:
 *   bare       OpenAI SDK chat.completions.create (SDK defaults)
 *   no-cache   createChatModel(..., { noCache: true }): limiter, retry loop, timeout, mapping, accounting
 *   miss       createChatModel with the cache, every prompt new: the above + key hashing + atomic write
 *   hit        the same prompts again: answered from the cache, the server is not asked
 * Figures are medians over rounds. Absolute numbers depend on the machine's load; the ratios and
 * differences, measured side by side in one run, are the result.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { Accounting, createChatModel, type ChatModel } from '../src/providers/index.js';
import { startFakeServer } from '../test/support/openai-server.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

interface Round {
  /** Mean latency of one call (from issuing it to its result), ms. */
  latency: number;
  /** Wall time of the round divided by its calls, ms: the cost of a call at this concurrency. */
  wallPerCall: number;
  /** CPU time (user + system) of this process divided by the calls, ms: what the client stack costs. */
  cpuPerCall: number;
}

/** Runs `calls` calls with `concurrency` workers; returns latency and wall per call. */
async function round(calls: number, concurrency: number, call: (i: number) => Promise<unknown>): Promise<Round> {
  let next = 0;
  let latencySum = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < calls) {
        const i = next++;
        const t = performance.now();
        await call(i);
        latencySum += performance.now() - t;
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  return { latency: latencySum / calls, wallPerCall: (performance.now() - start) / calls, cpuPerCall: (used.user + used.system) / 1000 / calls };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const calls = arg('calls', 2000);
  const rounds = arg('rounds', 5);
  const concurrency = arg('concurrency', 64);
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const baseURL = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const cacheDir = await mkdtemp(join(tmpdir(), 'persona-lab-bench-'));
  const env = { OPENAI_API_KEY: 'sk-bench' } as NodeJS.ProcessEnv;
  const ref = { provider: 'openai' as const, model: 'bench', baseURL, concurrency };
  // The SDK's own default retries: a keep-alive socket closed by the server under load would otherwise end the run.
  const bare = new OpenAI({ baseURL, apiKey: 'sk-bench' });
  const accounting = new Accounting();
  const noCache: ChatModel = await createChatModel(ref, { env, noCache: true, accounting });
  const cached: ChatModel = await createChatModel(ref, { env, cacheDir, accounting });
  const messages = (tag: string, i: number) => [{ role: 'user' as const, content: `question ${tag} ${i}: what would you do?` }];

  const results: Record<'bare' | 'no-cache' | 'miss' | 'hit', Round[]> = { bare: [], 'no-cache': [], miss: [], hit: [] };
  // Warm-up: connections, JIT, the cache folders.
  await round(256, concurrency, (i) => bare.chat.completions.create({ model: 'bench', messages: messages('warm', i) }));
  await round(256, concurrency, (i) => cached.chat({ messages: messages('warm', i) }));
  const variants: [keyof typeof results, (r: number) => (i: number) => Promise<unknown>][] = [
    ['bare', (r) => (i) => bare.chat.completions.create({ model: 'bench', messages: messages(`bare${r}`, i) })],
    ['no-cache', (r) => (i) => noCache.chat({ messages: messages(`nc${r}`, i) })],
    ['miss', (r) => (i) => cached.chat({ messages: messages(`m${r}`, i) })],
    ['hit', (r) => (i) => cached.chat({ messages: messages(`m${r}`, i) })],
  ];
  for (let r = 0; r < rounds; r++) {
    // Rotate the order (keeping each hit after its miss) so no variant always runs in the same slot.
    const order = r % 2 === 0 ? [0, 1, 2, 3] : [2, 3, 1, 0];
    for (const v of order) results[variants[v][0]].push(await round(calls, concurrency, variants[v][1](r)));
  }
  child.kill();
  await rm(cacheDir, { recursive: true, force: true });

  const total = accounting.snapshot().total;
  if (total.cacheHits !== rounds * calls) throw new Error(`expected every "hit" call from the cache, got ${total.cacheHits} hits`);

  const med = (rs: Round[], field: keyof Round) => median(rs.map((x) => x[field]));
  const base = { latency: med(results.bare, 'latency'), wallPerCall: med(results.bare, 'wallPerCall'), cpuPerCall: med(results.bare, 'cpuPerCall') };
  console.log(`provider stack vs bare openai SDK: ${calls} calls x ${rounds} rounds, concurrency ${concurrency}, loopback server in its own process`);
  console.log("NOTE: the machine is shared with other engineers' builds and tests right now; absolute ms are contaminated, compare within this table.\n");
  const columns = ['variant', 'latency ms', 'wall/call ms', 'client CPU/call ms', 'latency ratio', 'wall ratio', 'CPU ratio', 'added CPU/call ms', 'per-round range'];
  console.log(columns.join('  '));
  for (const [name, rs] of Object.entries(results)) {
    const r = { latency: med(rs, 'latency'), wallPerCall: med(rs, 'wallPerCall'), cpuPerCall: med(rs, 'cpuPerCall') };
    // Added CPU paired round by round with the bare run of the same round, median and range.
    const added = rs.map((x, k) => x.cpuPerCall - results.bare[k].cpuPerCall);
    const cells = [
      name,
      r.latency.toFixed(2),
      r.wallPerCall.toFixed(3),
      r.cpuPerCall.toFixed(3),
      (r.latency / base.latency).toFixed(2),
      (r.wallPerCall / base.wallPerCall).toFixed(2),
      (r.cpuPerCall / base.cpuPerCall).toFixed(2),
      median(added).toFixed(3),
      `${Math.min(...added).toFixed(3)}..${Math.max(...added).toFixed(3)}`,
    ];
    console.log(cells.map((c, i) => (i === 0 ? c.padEnd(columns[0].length) : c.padStart(columns[i].length))).join('  '));
  }
  console.log(`\nstack retries during the run: ${total.retries} (connection resets of idle keep-alive sockets under load)`);
  console.log('latency: one call from issue to result with 64 in flight; wall/call: round time / calls (throughput; the server process is usually the bottleneck);');
  console.log('client CPU/call: this process\'s CPU per call, i.e. what the stack itself costs. added CPU/call: median over rounds of (variant - bare of the same round), the overhead (target <= 1 ms).');
}

if (process.argv.includes('--serve')) {
  const server = await startFakeServer({ chat: (body) => `reply to ${body.messages.at(-1)?.content}` });
  console.log(server.baseURL);
} else {
  await main();
}
