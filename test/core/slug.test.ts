/** One persona slug for every stage's folders: accents dropped, lower case, other runs -> "-". */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RunDir } from '../../src/core/journal.js';
import { personaSlug } from '../../src/core/slug.js';
import { cellDir } from '../../src/experiments/cells.js';
import { traitDir } from '../../src/steer/index.js';

test('"Zoë" is zoe in the steer and adapter folders alike', () => {
  assert.equal(personaSlug('Zoë'), 'zoe');
  assert.equal(personaSlug('Captain Salt!'), 'captain-salt');
  assert.equal(personaSlug('???'), 'persona');
  const dir = mkdtempSync(join(tmpdir(), 'slug-'));
  const run = RunDir.open(dir, { name: 's', personaLabVersion: 't', gitRevision: null, seeds: [1], config: {} });
  try {
    assert.equal(traitDir(run, 'Zoë', 0), join(dir, 'steer', 'zoe', 't0'));
    assert.equal(cellDir(run, { slug: personaSlug('Zoë'), method: 'sft', format: 'chat', seed: 1 }), join(dir, 'adapters', 'zoe', 'sft-chat', 'seed-1'));
  } finally {
    run.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
