// A journaled job for the crash test: N items, each taking a few ms, run through Journal.runAll.
// Every item it starts is logged to <dir>/started-<pid>.log so the test can see what each run did.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { RunDir } from '../../src/core/journal.js';

const [dir, count] = [process.argv[2], Number(process.argv[3])];
const run = RunDir.open(dir, { name: 'crash', personaLabVersion: 'test', gitRevision: null, seeds: [1], config: {} });
const journal = run.journal<{ square: number }>('items');
const items = Array.from({ length: count }, (_, i) => i);
await journal.runAll(
  items,
  (i) => `item-${i}`,
  async (i) => {
    appendFileSync(join(dir, `started-${process.pid}.log`), `item-${i}\n`);
    await new Promise((r) => setTimeout(r, 4));
    return { square: i * i };
  },
  { concurrency: 4 },
);
run.close();
