import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';

const cli = (...args: string[]) => spawnSync(process.execPath, [resolve('bin/persona-lab.js'), ...args], { encoding: 'utf8' });

test('usage errors exit 2 at every level of the command tree, help exits 0', () => {
  for (const args of [['bogus'], ['serve'], ['serve', '--model', 'tiny', '--bogus'], ['cache'], ['serve', '--model', 'tiny', '--concurrency', '0']]) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}, stderr ${r.stderr}`);
    assert.ok(r.stderr.length > 0, 'says why on stderr');
    assert.equal(r.stdout, '');
  }
  assert.equal(cli('--help').status, 0);
  assert.equal(cli('serve', '--help').status, 0);
});
