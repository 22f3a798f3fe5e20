/**
 * Pull throughput from a loopback Hub (test/support/hub-server.ts, in its own process) of one LFS
 * weights file plus a config, side by side in one run. On demand, not in CI:
 *
 *   npx tsx bench/hub-pull.ts [--mib 128] [--rounds 3]
 *
 * Variants, interleaved round by round, each into a fresh cache directory:
 *   pull       persona-lab's pullModel: revision + file list, then each file streamed to blobs/ with
 *              its sha256 / git sha1 checked, snapshot symlinks and refs/ (what `persona-lab pull` does)
 *   hf-client  @huggingface/hub's own downloadFileToCacheDir per file (same cache layout; no checksum,
 *              no resume)
 *   fetch      a bare fetch of each resolve URL, body streamed to a file (no cache layout, no checks)
 *   fetch+sha  the same, hashing the bytes (sha256) on the way: what the checksum alone costs
 * Figures are medians over rounds, MiB/s of file bytes; the ratios are the result.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { downloadFileToCacheDir } from '@huggingface/hub';
import { pullModel } from '../src/providers/hub/index.js';
import { repoOf, startFakeHub } from '../test/support/hub-server.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const mib = arg('mib', 128);
const REPO = 'bench/weights';
const FILES = ['config.json', 'model.safetensors'];

if (process.argv.includes('--serve')) {
  // The server process: random weights (seeded by nothing; every variant fetches the same bytes).
  const hub = await startFakeHub({
    [REPO]: repoOf([
      { path: 'config.json', content: Buffer.from('{"architectures": ["LlamaForCausalLM"]}\n'), lfs: false },
      { path: 'model.safetensors', content: randomBytes(mib * 2 ** 20), lfs: true },
    ]),
  });
  process.stdout.write(`${hub.url}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void hub.close().then(() => process.exit(0)));
} else {
  const server = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', '--mib', String(mib)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => server.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
  const rounds = arg('rounds', 3);
  const variants: Record<string, (cache: string) => Promise<void>> = {
    pull: async (cache) => {
      await pullModel({ repo: REPO, revision: 'main' }, { env: { HF_HUB_CACHE: cache, HF_ENDPOINT: url } });
    },
    'hf-client': async (cache) => {
      for (const path of FILES) await downloadFileToCacheDir({ repo: REPO, path, hubUrl: url, cacheDir: cache });
    },
    fetch: async (cache) => {
      for (const path of FILES) {
        const response = await fetch(`${url}/${REPO}/resolve/main/${path}`);
        await pipeline(Readable.fromWeb(response.body as never), createWriteStream(join(cache, path.replace(/\//g, '_'))));
      }
    },
    'fetch+sha': async (cache) => {
      for (const path of FILES) {
        const response = await fetch(`${url}/${REPO}/resolve/main/${path}`);
        const hash = createHash('sha256');
        const count = new Transform({ transform: (chunk: Buffer, _e, done) => done(null, (hash.update(chunk), chunk)) });
        await pipeline(Readable.fromWeb(response.body as never), count, createWriteStream(join(cache, path.replace(/\//g, '_'))));
        hash.digest('hex');
      }
    },
  };
  const debug = console.debug;
  console.debug = () => {}; // downloadFileToCacheDir announces every file
  const seconds: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(variants)) {
      const cache = await mkdtemp(join(tmpdir(), 'hub-bench-'));
      const t0 = performance.now();
      await run(cache);
      seconds[name].push((performance.now() - t0) / 1000);
      await rm(cache, { recursive: true, force: true });
    }
  }
  console.debug = debug;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rate = (name: string) => mib / median(seconds[name]);
  console.log(`pull of ${mib} MiB (+ config) from a loopback Hub, median of ${rounds} rounds`);
  for (const name of Object.keys(variants)) {
    console.log(`${name.padEnd(10)} ${rate(name).toFixed(0).padStart(6)} MiB/s   ${median(seconds[name]).toFixed(3)} s   pull / ${name}: ${(rate('pull') / rate(name)).toFixed(2)}x`);
  }
  server.stdin.end();
}
