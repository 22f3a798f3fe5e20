/**
 * What every stage command shares: the run directory with its manifest, and one ChatModel per role,
 * all sharing the response cache and the token/cost accounting of the run.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RunDir } from '../core/journal.js';
import { lockRunDir } from '../core/run-lock.js';
import { appendStageUsage, usageSince } from '../providers/accounting-file.js';
import { Accounting, createChatModel } from '../providers/index.js';
import type { ChatModel } from '../providers/types.js';
import type { Experiment } from './config.js';
import type { LoadedExperiment } from './load.js';

export const personaLabVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function gitRevision(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: new URL('../..', import.meta.url).pathname, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export type ModelRole = keyof Experiment['models'];

export interface StageContext {
  loaded: LoadedExperiment;
  run: RunDir;
  accounting: Accounting;
  /** The model playing a role; teacher defaults to the subject, judge to the teacher. */
  model(role: ModelRole): Promise<ChatModel>;
  /** Appends the usage since the last call to the run's accounting.json under `stage` (called when a stage ends, failed or not). */
  saveAccounting(stage?: string): void;
  close(): Promise<void>;
}

export function openStage(loaded: LoadedExperiment, options: { noCache?: boolean } = {}): StageContext {
  const { experiment } = loaded;
  const lock = lockRunDir(loaded.runDir);
  const run = openLocked(lock, () => RunDir.open(loaded.runDir, {
    name: experiment.name,
    personaLabVersion,
    gitRevision: gitRevision(),
    seeds: experiment.seeds,
    config: { experiment, constitutions: loaded.constitutions },
  }));
  const accounting = new Accounting();
  const invocation = { id: `${process.pid}@${new Date().toISOString()}`, command: `persona-lab ${process.argv.slice(2).join(' ')}`, startedAt: new Date().toISOString() };
  let saved: ReturnType<Accounting['snapshot']> | undefined;
  const models = new Map<ModelRole, Promise<ChatModel>>();
  const refOf = (role: ModelRole) => {
    const m = experiment.models;
    if (role === 'teacher') return m.teacher ?? m.subject;
    if (role === 'judge') return m.judge ?? m.teacher ?? m.subject;
    if (role === 'userSimulator') return m.userSimulator ?? m.teacher ?? m.subject;
    return m[role];
  };
  return {
    loaded,
    run,
    accounting,
    model(role) {
      const ref = refOf(role);
      if (ref === undefined) throw new Error(`no model configured for role ${role}`);
      const key = JSON.stringify(ref) as unknown as ModelRole;
      if (!models.has(key)) models.set(key, createChatModel(ref, { noCache: options.noCache, accounting }));
      return models.get(key)!;
    },
    saveAccounting(stage = 'stage') {
      const now = accounting.snapshot();
      appendStageUsage(run.dir, invocation, stage, usageSince(now, saved));
      saved = now;
    },
    async close() {
      run.close();
      lock.release();
      for (const model of models.values()) await (await model).close?.();
    },
  };
}

/** Opens the run under its lock; the lock is let go if opening fails. */
function openLocked<T>(lock: { release(): void }, open: () => T): T {
  try {
    return open();
  } catch (error) {
    lock.release();
    throw error;
  }
}
