import assert from 'node:assert/strict';
import { test } from 'node:test';
import cliProgress from 'cli-progress';
import { barFormat } from '../../src/core/progress.js';

const options = { ...cliProgress.Presets.shades_classic, barsize: 10, barGlue: '', barCompleteString: '='.repeat(10), barIncompleteString: '-'.repeat(10), autopaddingChar: ' ' } as cliProgress.Options;
const render = (value: number, total: number, eta: number | string) =>
  barFormat('{value}/{total} ETA {eta_formatted}')(options, { value, total, eta, progress: value / total, startTime: Date.now(), stopTime: null, maxWidth: 80 } as unknown as cliProgress.Params, {});

test('a bar that has not moved, or has no rate yet, shows ETA --, not 0s', () => {
  assert.equal(render(0, 10, '0'), '0/10 ETA --');
  assert.equal(render(3, 10, 'INF'), '3/10 ETA --');
  assert.equal(render(3, 10, 'NULL'), '3/10 ETA --');
  assert.equal(render(3, 10, 42), '3/10 ETA 40s'); // cli-progress rounds ETAs to 5 s
  assert.match(render(10, 10, 0), /^10\/10 ETA +0s$/);
});
