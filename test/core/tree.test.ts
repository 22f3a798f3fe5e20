import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('no tracked file holds the markers of an unresolved merge', () => {
  // git grep exits 1 when nothing matches; lines of exactly seven "=" are markers only beside the others.
  const result = spawnSync('git', ['grep', '-n', '-E', '^(<<<<<<<|>>>>>>>) '], { encoding: 'utf8' });
  assert.equal(result.status, 1, `unresolved merge markers:\n${result.stdout}${result.stderr}`);
});
