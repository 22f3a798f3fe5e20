import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('the published JSON Schemas in schema/ are generated from the current zod schemas', () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/write-schemas.ts', '--check'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
});
