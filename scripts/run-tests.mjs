#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's own test runner (Node 20 has no --test globs).
// Arguments narrow the set: `npm test -- providers journal` runs files whose path contains either word.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'fixtures' || name === 'node_modules') return [];
    return statSync(path).isDirectory() ? walk(path) : path.endsWith('.test.ts') ? [path] : [];
  });
}

const filters = process.argv.slice(2);
const files = walk('test')
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// The browser tests need Debian's Chromium; say so first rather than only in their failures.
if (files.some((f) => f.includes('browser')) && !existsSync('/usr/bin/chromium')) {
  console.error('note: /usr/bin/chromium is missing, so the browser tests will fail: sudo apt-get install chromium');
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
