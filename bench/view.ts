/**
 * Memory to serve a large eval journal from the dashboard vs reading it whole. On demand, not in CI:
 *
 *   npx tsx bench/view.ts [--lines 50000] [--reply 1000]
 *
 * Writes a journal of --lines records with --reply-character replies, then in three fresh processes
 * (so each peak is its own): "idle" (the same modules loaded, nothing read), "view" (the real
 * server answering a filtered page of samples, which streams the whole journal to count matches)
 * and "whole" (readFileSync, split, JSON.parse every line, filter, take the page - the obvious
 * alternative). Prints each process's peak RSS above idle and the ratio, measured side by side.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, RunDir } from '../src/core/journal.js';
import { startView } from '../src/view/server.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const JOURNAL = ['journals', 'evals', 'identity', 'subject.jsonl'];

async function child(mode: string, runsDir: string): Promise<void> {
  if (mode === 'view') {
    const handle = await startView(runsDir, { port: 0 });
    const res = await fetch(`${handle.url}api/runs/run/samples?eval=identity&q=odd&offset=100&limit=50`);
    const page = (await res.json()) as { total: number };
    if (page.total === 0) throw new Error('no matches');
    await handle.close();
  } else if (mode === 'whole') {
    const lines = readFileSync(join(runsDir, 'run', ...JOURNAL), 'utf8').split('\n').filter(Boolean);
    const records = lines.map((l) => JSON.parse(l) as { value: { solved: { reply: string } } });
    const matches = records.filter((r) => r.value.solved.reply.includes('odd'));
    if (matches.slice(100, 150).length === 0) throw new Error('no matches');
  }
  process.stdout.write(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS }));
}

async function main(): Promise<void> {
  const lines = arg('lines', 50_000);
  const replyChars = arg('reply', 1000);
  const dir = mkdtempSync(join(tmpdir(), 'persona-lab-bench-view-'));
  try {
    const run = RunDir.open(join(dir, 'run'), { name: 'run', personaLabVersion: '0', gitRevision: null, seeds: [1], config: {} });
    run.close();
    const journal = Journal.open(join(dir, 'run', ...JOURNAL));
    const filler = 'x'.repeat(replyChars);
    for (let i = 0; i < lines; i++) journal.append(`k${i}`, { sample: { prompt: `question ${i}` }, solved: { reply: `${i % 2 ? 'odd' : 'even'} ${filler}` }, score: { code: i % 3 === 0 } });
    journal.close();
    const size = statSync(join(dir, 'run', ...JOURNAL)).size;
    const peak = (mode: string) => (JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', process.argv[1], '--child', mode, dir], { encoding: 'utf8' })) as { maxRssKiB: number }).maxRssKiB / 1024;
    const idle = peak('idle');
    const view = peak('view') - idle;
    const whole = peak('whole') - idle;
    console.log(`journal: ${lines} records, ${(size / 2 ** 20).toFixed(1)} MiB`);
    console.log(`peak RSS above an idle process (${idle.toFixed(0)} MiB):`);
    console.log(`  view (streamed page)   ${view.toFixed(1)} MiB`);
    console.log(`  read whole + parse     ${whole.toFixed(1)} MiB`);
    console.log(`  ratio whole / view     ${(whole / Math.max(view, 1)).toFixed(1)}x`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) await child(process.argv[childAt + 1], process.argv[childAt + 2]);
else await main();
