/**
 * One writer per run directory, with real child processes: a second `persona-lab run` on a run the
 * first is writing is refused at once (exit 2, naming the holder's pid) and writes nothing; the first
 * finishes with every journal key exactly once. A lock left by a process killed with SIGKILL is taken
 * over by the next run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { LOCK_FILE, runLockSchema } from '../../src/core/run-lock.js';
import { runCli } from '../support/cli.js';
import { startFakeServer, type FakeServer } from '../support/openai-server.js';
import { SMALL_GENERATE, journalKeys, snapshot, worldChat, writeProject } from './run-support.js';

let server: FakeServer;
/** While set, every model reply waits for it: the first run is held mid-stage, after taking its lock. */
let gate: Promise<void> | undefined;
before(async () => {
  server = await startFakeServer({
    chat: async (body) => {
      await gate;
      return worldChat(body);
    },
  });
});
after(async () => {
  await server.close();
});

const experiment = (name: string) => ({
  name,
  models: { subject: `openai:base@${server.baseURL}`, teacher: `openai:teacher@${server.baseURL}`, judge: `openai:judge-1@${server.baseURL}` },
  seeds: [7],
  generate: { ...SMALL_GENERATE, datasets: ['prompts', 'chat', 'probes'] },
  run: { methods: [] },
  eval: { evals: ['identity'], bootstrap: 100, concurrency: 2 },
});

const bin = resolve('bin/persona-lab.js');

/** Waits for the first model call, failing if the run exits first. */
async function firstModelCall(exit: Promise<number | null>, before: number): Promise<void> {
  let exited: number | null | undefined;
  void exit.then((code) => (exited = code));
  while (server.requests.length === before) {
    if (exited !== undefined) assert.fail(`the run exited (${exited}) before calling a model`);
    await sleep(20);
  }
}


test('a second run on the same directory is refused naming the holder; the first finishes, every journal key once', async () => {
  const project = writeProject(experiment('locked'));
  let open!: () => void;
  gate = new Promise((r) => (open = r));
  try {
    const calls = server.requests.length;
    const first = spawn(process.execPath, [bin, '--no-cache', 'run', project.file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let firstErr = '';
    first.stderr.on('data', (d) => (firstErr += d));
    const firstExit = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
    const lockPath = join(project.runDir, LOCK_FILE);
    await firstModelCall(firstExit, calls); // the first run holds its lock and waits on a model
    const holder = runLockSchema.parse(JSON.parse(readFileSync(lockPath, 'utf8')));
    assert.equal(holder.pid, first.pid);

    const before = snapshot(project.runDir);
    const second = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, new RegExp(`run\\.lock: pid: the run directory is in use by process ${first.pid} `));
    assert.equal(second.stderr.trim().split('\n').length, 1, 'one line');
    assert.equal(snapshot(project.runDir), before, 'the refused run wrote nothing');

    open();
    assert.equal(await firstExit, 0, firstErr);
    assert.ok(!existsSync(lockPath), 'the lock is released');
    const journals = journalKeys(project.runDir);
    assert.ok(journals.size > 0);
    for (const [file, keys] of journals) assert.equal(new Set(keys).size, keys.length, `no duplicate keys in ${file}`);
  } finally {
    open?.();
    gate = undefined;
    project.remove();
  }
});

test('the lock of a process killed with SIGKILL is taken over by the next run', async () => {
  const project = writeProject(experiment('stale'));
  let open!: () => void;
  gate = new Promise((r) => (open = r));
  try {
    const calls = server.requests.length;
    const first = spawn(process.execPath, [bin, '--no-cache', 'run', project.file], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
    const lockPath = join(project.runDir, LOCK_FILE);
    await firstModelCall(exited, calls);
    first.kill('SIGKILL');
    assert.equal(await exited, null);
    assert.equal(runLockSchema.parse(JSON.parse(readFileSync(lockPath, 'utf8'))).pid, first.pid, 'the dead holder left its lock');
    open();
    const rerun = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.ok(!existsSync(lockPath));
    for (const [file, keys] of journalKeys(project.runDir)) assert.equal(new Set(keys).size, keys.length, `no duplicate keys in ${file}`);

    // A lock whose process lives (this test's) refuses; the refusal names that pid.
    writeFileSync(lockPath, JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), startedAt: new Date().toISOString(), processStart: null, command: 'persona-lab run' }));
    const refused = await runCli(['--no-cache', 'eval', project.file]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, new RegExp(`in use by process ${process.pid} `));
  } finally {
    open?.();
    gate = undefined;
    project.remove();
  }
});
