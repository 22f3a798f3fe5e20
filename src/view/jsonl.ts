/**
 * Streaming reads of JSONL journals for the dashboard: one line at a time, so serving a journal of
 * any size holds only the lines a page asks for (bench/view.ts measures it against reading whole).
 */
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** Calls `each` with every parsed line of a JSONL file; a torn or blank line is skipped. */
export async function forEachLine(file: string, each: (line: unknown) => void | 'stop'): Promise<void> {
  if (!existsSync(file)) return;
  const stream = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const raw of lines) {
      if (!raw.trim()) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        continue; // a torn last line: the item was in flight
      }
      if (each(parsed) === 'stop') break;
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}

/** A page of the items that pass `keep`, with the count of all that pass. */
export interface Page<T> {
  total: number;
  offset: number;
  items: T[];
}

/** Collects one page (offset, limit) of matching items while counting every match. */
export class PageCollector<T> {
  total = 0;
  readonly items: T[] = [];
  constructor(
    readonly offset: number,
    readonly limit: number,
  ) {}

  add(make: () => T): void {
    if (this.total >= this.offset && this.items.length < this.limit) this.items.push(make());
    this.total += 1;
  }

  page(): Page<T> {
    return { total: this.total, offset: this.offset, items: this.items };
  }
}
