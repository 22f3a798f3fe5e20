/**
 * Crash-safe run journals. A run is a directory holding manifest.json and append-only JSONL journals
 * of finished items, one line per item: {"key": ..., "value": ...}. Re-running the same work opens the
 * same journals and skips keys already present, so a SIGKILL loses at most the items in flight.
 *
 * Why lines are safe: each item is one write(2) of one whole line on a file opened O_APPEND; a
 * process killed mid-run leaves at worst a torn last line, which open() cuts off before appending.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pLimit from 'p-limit';
import { z, type ZodType } from 'zod';
import { loadFile } from './load.js';
import { redactDeep } from './redact.js';

interface Line<T> {
  key: string;
  value: T;
}

export class Journal<T> {
  private readonly entriesByKey = new Map<string, T>();
  private fd: number | undefined;
  /** Lines dropped on open because they were torn or did not match the schema. */
  readonly dropped: number;

  private constructor(
    readonly path: string,
    private readonly schema: ZodType<T> | undefined,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.dropped = this.load();
  }

  static open<T>(path: string, schema?: ZodType<T>): Journal<T> {
    return new Journal<T>(path, schema);
  }

  private load(): number {
    if (!existsSync(this.path)) return 0;
    const text = readFileSync(this.path, 'utf8');
    let dropped = 0;
    let validEnd = 0;
    let offset = 0;
    for (const raw of text.split('\n')) {
      const lineEnd = offset + Buffer.byteLength(raw) + 1;
      const complete = lineEnd <= Buffer.byteLength(text);
      offset = lineEnd;
      if (raw.trim() === '') {
        if (complete) validEnd = lineEnd;
        continue;
      }
      if (!complete) {
        dropped += 1; // torn last line (no trailing newline): the item was in flight
        break;
      }
      try {
        const line = JSON.parse(raw) as Line<unknown>;
        const value = this.schema ? this.schema.parse(line.value) : (line.value as T);
        if (!this.entriesByKey.has(line.key)) this.entriesByKey.set(line.key, value);
      } catch {
        dropped += 1;
      }
      validEnd = lineEnd;
    }
    // Cut a torn tail so the next append starts on a fresh line.
    if (validEnd < Buffer.byteLength(text)) truncateSync(this.path, validEnd);
    return dropped;
  }

  has(key: string): boolean {
    return this.entriesByKey.has(key);
  }

  get(key: string): T | undefined {
    return this.entriesByKey.get(key);
  }

  get size(): number {
    return this.entriesByKey.size;
  }

  keys(): string[] {
    return [...this.entriesByKey.keys()];
  }

  values(): T[] {
    return [...this.entriesByKey.values()];
  }

  entries(): [string, T][] {
    return [...this.entriesByKey.entries()];
  }

  /** Records a finished item. A key already present is kept as it was (items are never done twice). */
  append(key: string, value: T): void {
    if (this.entriesByKey.has(key)) return;
    const checked = this.schema ? this.schema.parse(value) : value;
    if (this.fd === undefined) this.fd = openSync(this.path, 'a');
    writeSync(this.fd, JSON.stringify({ key, value: checked }) + '\n');
    this.entriesByKey.set(key, checked);
  }

  close(): void {
    if (this.fd !== undefined) {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = undefined;
    }
  }

  /**
   * Runs `work` for every item whose key is not yet journaled, `concurrency` at a time, journaling
   * each result as soon as it finishes. Returns every item's value (old and new) in input order.
   */
  async runAll<I>(
    items: readonly I[],
    keyOf: (item: I) => string,
    work: (item: I) => Promise<T>,
    options: { concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<T[]> {
    const keys = items.map(keyOf);
    if (new Set(keys).size !== keys.length) throw new Error(`journal ${this.path}: duplicate item keys`);
    const limit = pLimit(options.concurrency ?? 4);
    let done = keys.filter((k) => this.has(k)).length;
    options.onProgress?.(done, items.length);
    await Promise.all(
      items.map((item, i) =>
        this.has(keys[i])
          ? undefined
          : limit(async () => {
              const value = await work(item);
              this.append(keys[i], value);
              done += 1;
              options.onProgress?.(done, items.length);
            }),
      ),
    );
    return keys.map((k) => this.get(k) as T);
  }
}


/** Writes a file whole or not at all: a temporary file, fsync, then rename. */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, target);
}

export const runManifestSchema = z
  .object({
    name: z.string(),
    personaLabVersion: z.string(),
    gitRevision: z.string().nullable(),
    startedAt: z.string(),
    seeds: z.array(z.number().int()),
    /** The configuration snapshot the run was started with. */
    config: z.unknown(),
    /** Later invocations that resumed this run. */
    resumedAt: z.array(z.string()).optional(),
  })
  .strict();
export type RunManifest = z.infer<typeof runManifestSchema>;

/** One line of a journal whose values `value` describes: a finished item's key and its value. */
export const journalLineOf = <V extends ZodType>(value: V) => z.object({ key: z.string(), value }).strict();

/** One line of any journal (the value's schema is the journal's). */
export const journalLineSchema = journalLineOf(z.unknown());

/** A run directory: manifest.json plus journals under journals/. */
export class RunDir {
  private readonly journals = new Map<string, Journal<unknown>>();

  private constructor(
    readonly dir: string,
    readonly manifest: RunManifest,
  ) {}

  /** Opens (resuming) or creates a run directory. The first manifest is kept; resumes are recorded. */
  static open(dir: string, fresh: Omit<RunManifest, 'startedAt' | 'resumedAt'>): RunDir {
    const manifestPath = join(dir, 'manifest.json');
    let manifest: RunManifest;
    if (existsSync(manifestPath)) {
      manifest = loadFile(manifestPath, runManifestSchema);
      manifest.resumedAt = [...(manifest.resumedAt ?? []), new Date().toISOString()];
    } else {
      // credentials in URLs (base URLs of endpoints in the config) never reach the file
      manifest = redactDeep({ ...fresh, startedAt: new Date().toISOString() });
    }
    writeFileAtomic(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
    return new RunDir(dir, manifest);
  }

  /** The journal called `name` (a relative path without extension, e.g. "generate/chat"). */
  journal<T>(name: string, schema?: ZodType<T>): Journal<T> {
    let journal = this.journals.get(name);
    if (!journal) {
      journal = Journal.open<T>(join(this.dir, 'journals', `${name}.jsonl`), schema) as Journal<unknown>;
      this.journals.set(name, journal);
    }
    return journal as Journal<T>;
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  close(): void {
    for (const journal of this.journals.values()) journal.close();
  }
}
