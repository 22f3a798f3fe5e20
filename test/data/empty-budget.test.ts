/**
 * A format comparison in which a format keeps no rows would give every format a zero token budget
 * and fail later, at training: the data stage must stop with one clear error naming the persona,
 * the format and what to change.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InputError } from '../../src/core/errors.js';
import { generate } from '../../src/data/index.js';
import { openRun, startLoopback, tempDir, tess, TINY, type Loopback } from './support.js';

describe('format comparison with an empty format', () => {
  let loop: Loopback;
  let tmp: ReturnType<typeof tempDir>;
  before(async () => {
    loop = await startLoopback();
    tmp = tempDir('empty-budget');
  });
  after(async () => {
    await loop.close();
    tmp.remove();
  });

  it('is an InputError at the data stage naming the persona, the format and the option', async () => {
    const run = openRun(join(tmp.dir, 'run'));
    // A template the scripted teacher answers in the second person: every statement fails the first-person filter.
    const options = { ...TINY, datasets: ['prompts', 'chat', 'introspective'] as ('prompts' | 'chat' | 'introspective')[], introspective: { perTrait: 3, template: 'Describe, {{persona}}, your trait {{trait}} given: {{prompt}}' }, formatComparison: { formats: ['chat', 'introspective'] as ('chat' | 'introspective')[] } };
    await assert.rejects(
      generate({ seeds: [7] }, [tess], { teacher: loop.teacher, subject: loop.student, generator: loop.generator }, run, options, { file: 'exp.yaml' }),
      (error: unknown) => {
        assert.ok(error instanceof InputError, String(error));
        assert.equal(error.file, 'exp.yaml');
        assert.equal(error.field, 'generate.formatComparison');
        assert.match(error.expected, /Tess: introspective kept no rows after the filters/);
        assert.match(error.expected, /run\.formats/);
        return true;
      },
    );
    run.close();
  });
});
