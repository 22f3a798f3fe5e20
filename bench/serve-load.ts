/**
 * Load benchmark for `persona-lab serve`, on demand (not in CI):
 *
 *   npx tsx bench/serve-load.ts [--requests 200] [--model tiny] [--concurrency 8] [--max-queue 64] [--timeout 120]
 *
 * Starts the real command in a child process and sends all requests at once, a mix of ordinary and
 * bad ones: short chats, chats near the context, streamed chats, n = 4, max_tokens 10,000,000,
 * prompts over the context, bodies over the 1 MiB limit, unknown models. Prints the count of each
 * HTTP status per kind, the server's peak resident memory (VmHWM from /proc, Linux) against its
 * resident memory when idle, and the wall time. The server must answer every request (no dropped
 * connections) and its memory must stay bounded; 503s are the back-pressure working as intended.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { servedUrl } from '../test/support/cli.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '200' },
    model: { type: 'string', default: 'tiny' },
    concurrency: { type: 'string', default: '8' },
    'max-queue': { type: 'string', default: '64' },
    timeout: { type: 'string', default: '120' },
  },
});
const total = Number(values.requests);

const memory = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
};

const child = spawn(
  process.execPath,
  [resolve('bin/persona-lab.js'), '--json', 'serve', '--model', values.model!, '--name', 'm', '--port', '0', '--concurrency', values.concurrency!, '--max-queue', values['max-queue']!, '--timeout', values.timeout!],
  { stdio: ['ignore', 'pipe', 'ignore'] },
);
const url = await servedUrl(child);

const words = (n: number) => Array.from({ length: n }, (_, i) => `word${i % 50}`).join(' ');
const chat = (content: string, extra: Record<string, unknown> = {}) => ({ path: '/chat/completions', body: { model: 'm', messages: [{ role: 'user', content }], temperature: 0.8, max_tokens: 32, ...extra } });
const kinds: Record<string, () => { path: string; body: unknown }> = {
  short: () => chat('What is the capital of France?'),
  'near context': () => chat(words(150), { max_tokens: 64 }),
  stream: () => chat('Who are you?', { stream: true }),
  'n=4': () => chat('Give me some advice.', { n: 4 }),
  'max_tokens 1e7': () => chat('Tell me about yourself.', { max_tokens: 10_000_000 }),
  'over context': () => chat(words(4000)),
  'body over limit': () => chat('x'.repeat(2 * 1024 * 1024)),
  'unknown model': () => ({ path: '/chat/completions', body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] } }),
};
const names = Object.keys(kinds);

// warm the model (session creation) so the idle figure includes the weights and compiled graphs
await fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(kinds.short().body) });
const idle = memory(child.pid!);

let peak = idle.peakMiB;
const sampler = setInterval(() => (peak = Math.max(peak, memory(child.pid!).peakMiB)), 50);
const counts = new Map<string, Map<string, number>>(names.map((n) => [n, new Map()]));
const started = performance.now();
await Promise.all(
  Array.from({ length: total }, async (_, i) => {
    const kind = names[i % names.length];
    const { path, body } = kinds[kind]();
    let status: string;
    try {
      const response = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      await response.arrayBuffer();
      status = String(response.status);
    } catch (error) {
      status = `network error (${(error as Error).message})`;
    }
    const row = counts.get(kind)!;
    row.set(status, (row.get(status) ?? 0) + 1);
  }),
);
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
peak = Math.max(peak, memory(child.pid!).peakMiB);
const alive = child.exitCode === null;
child.kill('SIGKILL');

console.log(`serve load: ${total} concurrent requests against --model ${values.model} (concurrency ${values.concurrency}, max queue ${values['max-queue']}, timeout ${values.timeout} s)`);
for (const [kind, row] of counts) console.log(`  ${kind.padEnd(16)} ${[...row].map(([s, n]) => `${s}: ${n}`).join(', ')}`);
const all = new Map<string, number>();
for (const row of counts.values()) for (const [s, n] of row) all.set(s, (all.get(s) ?? 0) + n);
console.log(`  ${'all'.padEnd(16)} ${[...all].sort().map(([s, n]) => `${s}: ${n}`).join(', ')}`);
console.log(`server RSS idle (after one request) ${idle.rssMiB.toFixed(0)} MiB, peak under load ${peak.toFixed(0)} MiB; wall ${seconds.toFixed(1)} s; server alive at the end: ${alive}`);
