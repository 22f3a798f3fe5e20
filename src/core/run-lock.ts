/**
 * One writer per run directory. Every command that writes a run takes `<run>/run.lock` first: a file
 * created exclusively (link(2) of a fully written temporary file, so no reader ever sees it half
 * written) holding the holder's pid, host and start time. A second process is refused at once with
 * the holder's pid; the lock of a process that died (SIGKILL leaves it behind) is detected and taken
 * over. Within one process the lock is re-entrant (`run` holds it while its stages and the report
 * take it again).
 */
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { InputError } from './errors.js';

export const LOCK_FILE = 'run.lock';

export const runLockSchema = z
  .object({
    pid: z.number().int().positive(),
    host: z.string(),
    startedAt: z.string().describe('When the holder took the lock (ISO 8601).'),
    /** The holder's start time in clock ticks since boot (/proc/<pid>/stat), so a reused pid is not mistaken for the holder. */
    processStart: z.string().nullable(),
    command: z.string(),
  })
  .strict();
export type RunLockInfo = z.infer<typeof runLockSchema>;

/** Another live process holds the run directory. Bad input in the CLI's sense: exit 2, nothing written. */
export class RunLockedError extends InputError {
  constructor(
    lockPath: string,
    readonly holder: RunLockInfo,
  ) {
    super(lockPath, 'pid', `the run directory is in use by process ${holder.pid} on ${holder.host} (${holder.command}, since ${holder.startedAt}); wait for it to finish or stop it (one writer per run directory)`);
    this.name = 'RunLockedError';
  }
}

function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); the command name in field 2 may hold spaces, so count after its ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** A process that exited but was not yet reaped by its parent still answers kill(pid, 0). */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return ['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]);
  } catch {
    return false;
  }
}

/** Whether the process that wrote `info` still runs; a lock from another host is taken as live. */
function holderAlive(info: RunLockInfo): boolean {
  if (info.host !== hostname()) return true;
  try {
    process.kill(info.pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (isZombie(info.pid)) return false;
  if (info.processStart === null) return true;
  const now = processStart(info.pid);
  return now === null || now === info.processStart;
}

function readLock(path: string): RunLockInfo | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = runLockSchema.safeParse((() => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  })());
  // An unreadable lock (a crash while it was linked cannot leave one, but a hand edit can) counts as stale.
  return parsed.success ? parsed.data : { pid: 1, host: '(unreadable lock)', startedAt: '', processStart: null, command: '' };
}

export interface RunLock {
  readonly path: string;
  release(): void;
}

const held = new Map<string, { count: number; path: string }>();
const releaseAllOnExit = () => {
  for (const { path } of held.values()) {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
};
let exitHookInstalled = false;

/**
 * Takes the run directory's lock (creating the directory), or throws RunLockedError naming the live
 * holder. A stale lock (its process is gone) is taken over. Release with `release()`; a process that
 * exits normally releases what it still holds.
 */
export function lockRunDir(dir: string, command = process.argv.slice(2).join(' ')): RunLock {
  const path = join(dir, LOCK_FILE);
  const mine = held.get(path);
  if (mine) {
    mine.count += 1;
    return handle(path);
  }
  mkdirSync(dir, { recursive: true });
  const info: RunLockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), processStart: processStart(process.pid), command: `persona-lab ${command}`.trim() };
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n');
  try {
    for (let attempt = 0; ; attempt += 1) {
      try {
        linkSync(tmp, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = readLock(path);
      if (holder === undefined) continue; // released between link and read: try again
      if (holderAlive(holder) || attempt > 3) throw new RunLockedError(path, holder);
      // Stale: move it aside under a name only this process uses, then check it was the stale one.
      const aside = `${path}.stale-${process.pid}`;
      try {
        renameSync(path, aside);
      } catch {
        continue; // another process took it over first
      }
      const moved = readLock(aside);
      if (moved && JSON.stringify(moved) !== JSON.stringify(holder) && holderAlive(moved)) {
        // A live lock taken between our read and our rename: put it back and give way.
        try {
          linkSync(aside, path);
        } finally {
          unlinkSync(aside);
        }
        throw new RunLockedError(path, moved);
      }
      unlinkSync(aside);
    }
  } finally {
    unlinkSync(tmp);
  }
  held.set(path, { count: 1, path });
  if (!exitHookInstalled) {
    process.once('exit', releaseAllOnExit);
    exitHookInstalled = true;
  }
  return handle(path);
}

function handle(path: string): RunLock {
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      releaseOne(path);
    },
  };
}

function releaseOne(path: string): void {
  const mine = held.get(path);
  if (!mine) return;
  mine.count -= 1;
  if (mine.count > 0) return;
  held.delete(path);
  if (existsSync(path) && readLock(path)?.pid === process.pid) unlinkSync(path);
}
