import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generate } from '../../src/data/index.js';
import { CRASH_OPTIONS } from './crash-options.js';
import { openRun, scriptedChat, startLoopback, tempDir, tess, type Loopback } from './support.js';

const CHILD = fileURLToPath(new URL('./generate-child.ts', import.meta.url));

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/** Every dataset file under a run's datasets/, by relative path. */
const datasetFiles = (runDir: string) => new Map(walk(join(runDir, 'datasets')).map((f) => [relative(runDir, f), readFileSync(f, 'utf8')]));

describe('generate survives SIGKILL and resumes without losing or repeating an item', () => {
  let loop: Loopback;
  let tmp: ReturnType<typeof tempDir>;
  let child: ChildProcess | undefined;
  let served = 0;
  let killAt = Infinity;

  before(async () => {
    loop = await startLoopback((body) => {
      served += 1;
      if (child && served === killAt) child.kill('SIGKILL');
      return scriptedChat(body);
    });
    tmp = tempDir('crash');
  });
  after(async () => {
    await loop.close();
    tmp.remove();
  });

  const runChild = (runDir: string) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
      let stdout = '';
      let stderr = '';
      child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, BASE_URL: loop.server.baseURL, RUN_DIR: runDir }, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (d) => (stdout += d));
      child.stderr!.on('data', (d) => (stderr += d));
      child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });

  it('a killed run, resumed, ends with the files of an uninterrupted run and every journal key once', async () => {
    // The uninterrupted reference, in this process.
    const reference = join(tmp.dir, 'reference');
    const run = openRun(reference);
    await generate({ seeds: [7] }, [tess], { teacher: loop.teacher, subject: loop.student, generator: loop.generator }, run, CRASH_OPTIONS, { baseDir: process.cwd() });
    run.close();
    const total = served;
    assert.ok(total > 60, `the job is big enough to be killed in the middle (${total} calls)`);

    // Killed at about half of its calls, while several are in flight (concurrency 3).
    const crashed = join(tmp.dir, 'crashed');
    served = 0;
    killAt = Math.floor(total / 2);
    const first = await runChild(crashed);
    assert.equal(first.signal, 'SIGKILL', first.stderr);
    const journalLines = walk(join(crashed, 'journals')).reduce((n, f) => n + readFileSync(f, 'utf8').split('\n').filter(Boolean).length, 0);
    assert.ok(journalLines > 0 && journalLines < total, `some but not all items were journaled (${journalLines})`);

    served = 0;
    killAt = Infinity;
    const second = await runChild(crashed);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.trim(), 'done');
    assert.ok(served < total, `the resumed run only did what was missing (${served} of ${total} calls)`);

    for (const file of walk(join(crashed, 'journals'))) {
      const keys = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { key: string }).key);
      assert.equal(new Set(keys).size, keys.length, `${file}: a key journaled twice`);
    }
    const expected = datasetFiles(reference);
    const actual = datasetFiles(crashed);
    assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
    for (const [file, text] of expected) assert.equal(actual.get(file), text, file);
    // Every row id appears exactly once in each dataset.
    for (const [file, text] of actual) {
      if (!file.endsWith('.jsonl')) continue;
      const ids = text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { meta?: { id: string }; id?: string })
        .map((r) => r.meta?.id ?? r.id);
      assert.equal(new Set(ids).size, ids.length, file);
    }
  });
});
