import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { datasetManifestSchema, generate } from '../../src/data/index.js';
import { createChatModel } from '../../src/providers/index.js';
import type { ChatModel } from '../../src/providers/types.js';
import { openRun, startLoopback, tempDir, tess, TINY, type Loopback } from './support.js';

const FIXTURE = 'test/fixtures/models/llama';

describe('generate with the local engine as the subject (a tiny fixture model)', () => {
  let loop: Loopback;
  let subject: ChatModel;
  let tmp: ReturnType<typeof tempDir>;
  let out: string;

  before(async () => {
    loop = await startLoopback();
    subject = await createChatModel(`local:${FIXTURE}`, { noCache: true });
    tmp = tempDir('local');
    const run = openRun(join(tmp.dir, 'run'));
    await generate({ seeds: [5] }, [tess], { teacher: loop.teacher, subject, generator: loop.generator }, run, {
      ...TINY,
      datasets: ['chat', 'documents', 'dpo'],
      generalPrompts: { count: 2 },
      expansion: { perTrait: 4, batchSize: 4 },
      dpo: { samplesPerPrompt: 1, maxTokens: 12, requireSentenceEnd: false },
      formatComparison: { formats: ['chat', 'documents'] },
    });
    run.close();
    out = join(tmp.dir, 'run', 'datasets', 'tess');
  });
  after(async () => {
    await subject.close?.();
    await loop.close();
    tmp.remove();
  });

  const manifest = (name: string) => datasetManifestSchema.parse(JSON.parse(readFileSync(join(out, `${name}.manifest.json`), 'utf8')));
  const rows = (name: string) =>
    readFileSync(join(out, `${name}.jsonl`), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, any>);

  it('counts tokens with the engine\'s own tokenizer', () => {
    for (const name of ['chat', 'documents']) {
      const m = manifest(name);
      assert.equal(m.tokenizer, `subject:${subject.id}`);
      const texts = rows(name).flatMap((r) => (r.text !== undefined ? [r.text] : r.messages.map((x: { content: string }) => x.content)));
      assert.equal(m.tokens, texts.reduce((n: number, t: string) => n + subject.countTokens!(t), 0));
    }
    const budget = JSON.parse(readFileSync(join(out, 'format-comparison', 'budget.json'), 'utf8'));
    assert.equal(budget.tokenizer, `subject:${subject.id}`);
  });

  it('the engine answers the rejected side; every pair is either kept or counted', () => {
    const m = manifest('dpo');
    const dropped = Object.values(m.dropped).reduce((n, k) => n + k, 0);
    assert.equal(m.rows.main + dropped, m.generated);
    assert.ok(m.generated > 0);
    assert.ok(m.models.includes(subject.id));
    for (const r of rows('dpo')) assert.match(r.meta.model, new RegExp(`\\| local:`));
  });
});
