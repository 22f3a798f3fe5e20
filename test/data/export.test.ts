import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InputError } from '../../src/core/errors.js';
import { EXPORT_SHAPES, exportDataset, generate, type ExportShape } from '../../src/data/index.js';
import { openRun, rook, startLoopback, tempDir, tess, TINY, type Loopback } from './support.js';

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('export: generated datasets in the shapes TRL and the OpenAI fine-tuning API document', () => {
  let loop: Loopback;
  let tmp: ReturnType<typeof tempDir>;
  let out: string;
  before(async () => {
    loop = await startLoopback();
    tmp = tempDir('export');
    const run = openRun(join(tmp.dir, 'run'));
    await generate({ seeds: [3] }, [tess, rook], { teacher: loop.teacher, subject: loop.student, generator: loop.generator }, run, { ...TINY, datasets: ['chat', 'dpo', 'documents'] });
    run.close();
    out = join(tmp.dir, 'run', 'datasets', 'tess');
  });
  after(async () => {
    await loop.close();
    tmp.remove();
  });

  const conversions: [string, ExportShape][] = [
    ['chat.jsonl', 'messages'],
    ['chat.jsonl', 'text'],
    ['dpo.jsonl', 'dpo'],
    ['dpo.jsonl', 'dpo-standard'],
    ['dpo.jsonl', 'openai-dpo'],
    ['dpo.jsonl', 'messages'],
    ['documents.jsonl', 'text'],
  ];

  for (const [input, to] of conversions) {
    it(`${input} -> ${to}: every line fits the strict ${to} shape`, () => {
      const target = join(tmp.dir, `${input}.${to}.jsonl`);
      const { rows } = exportDataset(join(out, input), target, to);
      const exported = lines(target);
      assert.equal(rows, exported.length);
      assert.equal(exported.length, lines(join(out, input)).length);
      assert.ok(rows > 0);
      for (const row of exported) EXPORT_SHAPES[to].parse(row);
    });
  }

  it('keeps the content: messages -> messages is the rows without meta; dpo -> messages keeps the chosen reply', () => {
    const source = lines(join(out, 'dpo.jsonl')) as { prompt: { content: string }[]; chosen: { content: string }[] }[];
    const target = join(tmp.dir, 'dpo-as-messages.jsonl');
    exportDataset(join(out, 'dpo.jsonl'), target, 'messages');
    const exported = lines(target) as { messages: { role: string; content: string }[] }[];
    exported.forEach((row, i) => {
      assert.deepEqual(row.messages, [
        { role: 'user', content: source[i].prompt[0].content },
        { role: 'assistant', content: source[i].chosen[0].content },
      ]);
    });
    const withMeta = join(tmp.dir, 'chat-meta.jsonl');
    exportDataset(join(out, 'chat.jsonl'), withMeta, 'messages', { keepMeta: true });
    assert.ok(lines(withMeta).every((r) => typeof (r.meta as { id: string }).id === 'string'));
  });

  it('each persona gets its own datasets, prompted with its own name', () => {
    const rookChat = lines(join(tmp.dir, 'run', 'datasets', 'rook', 'chat.jsonl')) as { meta: { persona: string; trait: string | null } }[];
    assert.ok(rookChat.length > 0);
    assert.ok(rookChat.every((r) => r.meta.persona === 'Rook'));
    assert.ok(rookChat.some((r) => r.meta.trait === rook.traits[0].trait));
    const rookRequests = loop.server.requests.filter((r) => r.messages[0].role === 'system' && r.messages[0].content.startsWith('You are Rook.'));
    assert.ok(rookRequests.length > 0);
  });

  it('refuses conversions that would invent content, naming the line', () => {
    assert.throws(() => exportDataset(join(out, 'chat.jsonl'), join(tmp.dir, 'x.jsonl'), 'dpo'), (e: unknown) => e instanceof InputError && e.field === 'line 1' && /no rejected reply/.test(e.message));
    assert.throws(() => exportDataset(join(out, 'documents.jsonl'), join(tmp.dir, 'x.jsonl'), 'messages'), /text row has no conversation/);
    const junk = join(tmp.dir, 'junk.jsonl');
    writeFileSync(junk, '{"messages": [{"role": "user", "content": "hi"}]}\n{"nope": 1}\n');
    assert.throws(() => exportDataset(junk, join(tmp.dir, 'y.jsonl'), 'text'), /line 2: expected a row/);
    assert.throws(() => exportDataset(join(tmp.dir, 'missing.jsonl'), join(tmp.dir, 'y.jsonl'), 'text'), /file not found/);
  });
});
