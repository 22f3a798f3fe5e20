import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InputError } from '../../src/core/errors.js';
import { generate, type GenerateOptionsInput } from '../../src/data/index.js';
import { openRun, scriptedChat, startLoopback, tempDir, tess, TINY, type Loopback } from './support.js';

describe('generate: bad input is a clear error before anything is written', () => {
  let loop: Loopback;
  let tmp: ReturnType<typeof tempDir>;
  before(async () => {
    // A teacher that answers every chat demonstration with nothing at all.
    loop = await startLoopback((body) => (body.model === 'teacher' && body.messages[0].role === 'system' ? '' : scriptedChat(body)));
    tmp = tempDir('bad');
  });
  after(async () => {
    await loop.close();
    tmp.remove();
  });

  const attempt = async (name: string, constitutions: unknown[], options: GenerateOptionsInput) => {
    const dir = join(tmp.dir, name);
    const run = openRun(dir);
    try {
      await generate({ seeds: [1] }, constitutions as never, { teacher: loop.teacher, subject: loop.student }, run, options, { baseDir: tmp.dir, file: 'exp.yaml' });
      return { dir, error: undefined };
    } catch (error) {
      return { dir, error };
    } finally {
      run.close();
    }
  };

  const cases: [string, unknown[], GenerateOptionsInput, RegExp][] = [
    ['empty-constitution', [{ name: 'Nobody', traits: [] }], {}, /constitution 1 \("Nobody"\): traits: expected at least one trait/],
    ['no-constitutions', [], {}, /exp\.yaml: constitutions: expected at least one constitution/],
    ['unnamed', [{ name: ' ', traits: tess.traits }], {}, /name: expected the persona name/],
    ['same-names', [tess, { ...tess, name: 'TESS' }], {}, /distinct names/],
    ['unknown-variable', [tess], { introspective: { template: 'Describe {{persona}} with {{colour}}' } }, /exp\.yaml: generate\.introspective\.template: unknown template variable \{\{colour\}\}/],
    ['unknown-key', [tess], { chatt: {} } as never, /exp\.yaml: generate: .*chatt/],
    ['missing-prompt-file', [tess], { generalPrompts: { files: ['nowhere.jsonl'] } }, /nowhere\.jsonl: file not found/],
    ['inoculate-missing', [tess], { datasets: ['dpo'], inoculation: { datasets: ['chat'] } }, /inoculation\.datasets: chat must also be in generate\.datasets/],
    ['bad-probe', [tess], { datasets: ['probes'], probes: { files: ['probes.json'] } }, /probes\.json: \[0\]\.category: expected one of direct, indirect, adversarial/],
    ['bad-outside-rows', [tess], { datasets: ['probes'], inoculation: { files: ['outside.jsonl'] } }, /outside\.jsonl: line 1: expected \{"messages"/],
  ];

  it('each case throws one InputError naming the file and field, and writes no dataset', async () => {
    writeFileSync(join(tmp.dir, 'probes.json'), JSON.stringify([{ category: 'sideways', prompt: 'Who?' }]));
    writeFileSync(join(tmp.dir, 'outside.jsonl'), JSON.stringify({ messages: [{ role: 'user', content: 'only a question' }] }) + '\n');
    for (const [name, constitutions, options, message] of cases) {
      const { dir, error } = await attempt(name, constitutions, options);
      assert.ok(error instanceof InputError, `${name}: ${String(error)}`);
      assert.match(error.message, message, name);
      assert.ok(!existsSync(join(dir, 'datasets')), `${name}: nothing written`);
    }
    assert.equal(loop.server.requests.length, 0, 'no model was called');
  });

  it('a provider returning empty text is a counted, reported drop, not a silent hole', async () => {
    const { dir, error } = await attempt('empty-provider', [tess], { ...TINY, datasets: ['chat'] });
    assert.equal(error, undefined);
    const { readFileSync } = await import('node:fs');
    const manifest = JSON.parse(readFileSync(join(dir, 'datasets', 'tess', 'chat.manifest.json'), 'utf8'));
    assert.equal(manifest.rows.main, 0);
    assert.equal(manifest.dropped.empty, manifest.generated);
    assert.ok(manifest.generated > 0);
  });
});
