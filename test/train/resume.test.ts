/**
 * Killing a training run (SIGKILL, a real child process) and running it again resumes from its last
 * checkpoint and ends with the same adapter as a run never interrupted.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SafetensorsFile } from '../../src/engine/io/safetensors.js';

const child = new URL('./resume-child.ts', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'train-resume-'));
after(() => rmSync(root, { recursive: true, force: true }));

function start(runDir: string, slowMs: number): { proc: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, runDir, String(slowMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, output: () => out, exit };
}

function adapterValues(dir: string): Map<string, Float32Array> {
  const f = SafetensorsFile.open(join(dir, 'adapter', 'adapter_model.safetensors'));
  try {
    return new Map(f.names().map((n) => [n, f.readFloat32(n)]));
  } finally {
    f.close();
  }
}

describe('kill and resume', () => {
  it('a run killed mid-way and resumed ends with the same adapter as an uninterrupted run', async () => {
    const whole = join(root, 'whole');
    const killed = join(root, 'killed');
    const full = start(whole, 0);
    const run = start(killed, 400);
    // kill once step 5 is reported: checkpoint 4 is on disk, step 5's update is lost with the process
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (/step 5\n/.test(run.output())) {
          clearInterval(timer);
          run.proc.kill('SIGKILL');
          resolve();
        }
      }, 20);
      run.exit.then(() => {
        clearInterval(timer);
        reject(new Error(`child exited before it could be killed:\n${run.output()}`));
      }, reject);
    });
    await run.exit.catch(() => undefined);
    assert.equal(run.proc.signalCode, 'SIGKILL');
    assert.deepEqual(readdirSync(join(killed, 'checkpoints')).filter((n) => n.startsWith('step-')), ['step-00000002', 'step-00000004']);
    assert.equal(readFileSync(join(killed, 'checkpoints', 'latest'), 'utf8').trim(), 'step-00000004');

    const resumed = start(killed, 0);
    assert.equal(await resumed.exit, 0, resumed.output());
    assert.match(resumed.output(), /^step 5\n/, 'the resumed run starts after the checkpoint');
    assert.equal(await full.exit, 0, full.output());
    assert.match(full.output(), /step 8\ndone/);

    const a = adapterValues(whole);
    const b = adapterValues(killed);
    assert.deepEqual([...a.keys()], [...b.keys()]);
    let maxDiff = 0;
    for (const [name, values] of a) values.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - b.get(name)![i]))));
    assert.ok(maxDiff <= 1e-6, `max difference ${maxDiff}`);
    const log = readFileSync(join(killed, 'train.jsonl'), 'utf8').trim().split('\n');
    assert.equal(log.length, 8, 'one log line per step, none twice');
  });
});
