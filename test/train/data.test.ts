import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InputError } from '../../src/core/errors.js';
import { TextTokenizer } from '../../src/engine/io/tokenizer.js';
import { sftChatRowSchema, makeBatch, pack, pairRowSchema, readJsonl, tokenizeChat, tokenizePair, tokenizeText } from '../../src/train/data.js';
import { segmentAttentionBias } from '../../src/train/graph.js';

const tok = TextTokenizer.load(new URL('../fixtures/models/llama/', import.meta.url).pathname);
const decodeMasked = (ids: number[], mask: Uint8Array) => tok.decode(ids.filter((_, i) => mask[i] === 1));

describe('chat rows: loss on assistant tokens only', () => {
  const messages = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Hi there' },
    { role: 'assistant' as const, content: 'Hello!' },
    { role: 'user' as const, content: 'Bye' },
    { role: 'assistant' as const, content: 'See you.' },
  ];
  it('masks exactly the assistant replies and their end-of-turn tokens', () => {
    const seq = tokenizeChat(tok, messages, 1000);
    assert.deepEqual(seq.ids, tok.encodeChat(messages));
    assert.equal(decodeMasked(seq.ids, seq.lossMask), 'Hello!<|im_end|>\nSee you.<|im_end|>\n');
  });
  it('truncates to maxLength keeping the start', () => {
    const full = tokenizeChat(tok, messages, 1000);
    const cut = tokenizeChat(tok, messages, 10);
    assert.equal(cut.ids.length, 10);
    assert.deepEqual(cut.ids, full.ids.slice(0, 10));
  });
  it('DPO pairs share the prompt and mask only the replies (TRL conversational rows too)', () => {
    const row = pairRowSchema.parse({ prompt: [{ role: 'user', content: 'Q?' }], chosen: [{ role: 'assistant', content: 'Yes.' }], rejected: 'No.' });
    const { chosen, rejected } = tokenizePair(tok, row, 100);
    assert.equal(decodeMasked(chosen.ids, chosen.lossMask), 'Yes.<|im_end|>\n');
    assert.equal(decodeMasked(rejected.ids, rejected.lossMask), 'No.<|im_end|>\n');
    const promptLength = chosen.lossMask.indexOf(1);
    assert.deepEqual(chosen.ids.slice(0, promptLength), rejected.ids.slice(0, promptLength));
  });
});

describe('text rows (continued pretraining)', () => {
  it('trains on every token after the first, EOS appended, long texts chunked', () => {
    const chunks = tokenizeText(tok, 'abcdefghij '.repeat(6), 16);
    assert.ok(chunks.length > 1);
    assert.ok(chunks.every((c) => c.ids.length <= 16 && c.lossMask[0] === 0 && c.lossMask.slice(1).every((m) => m === 1)));
    assert.equal(chunks.at(-1)!.ids.at(-1), tok.eos!.id);
  });
});

describe('packing and batches', () => {
  const s = (n: number, first: number) => ({ ids: Array.from({ length: n }, (_, i) => first + i), lossMask: new Uint8Array(n).fill(1) });
  it('packs greedily in order without exceeding maxLength', () => {
    const rows = pack([s(5, 10), s(4, 20), s(6, 30), s(2, 40)], 10);
    assert.deepEqual(rows.map((r) => r.map((q) => q.ids.length)), [[5, 4], [6, 2]]);
  });
  it('shifts targets, weights them by the mask, restarts positions per sequence and pads', () => {
    const b = makeBatch([[s(3, 10), s(2, 20)], [s(2, 30)]], 0);
    assert.equal(b.length, 5);
    assert.deepEqual([...b.targets].map(Number), [11, 12, 0, 21, 0, 31, 0, 0, 0, 0]);
    assert.deepEqual([...b.weights], [1, 1, 0, 1, 0, 1, 0, 0, 0, 0]);
    assert.deepEqual([...b.positions].map(Number), [0, 1, 2, 0, 1, 0, 1, 2, 3, 4]);
    assert.deepEqual([...b.segments].map(Number), [1, 1, 1, 2, 2, 1, 1, 0, 0, 0]);
    assert.equal(b.targetTokens, 4);
    assert.equal(b.tokens, 7);
  });
  it('attention is causal within a segment only, in the grouped-query layout', () => {
    const segments = BigInt64Array.from([1n, 1n, 2n, 0n]);
    const bias = segmentAttentionBias(segments, 1, 4, 2);
    const allowed = (r: number, q: number, k: number) => bias[(r * 4 + q) * 4 + k] === 0;
    for (const r of [0, 1]) {
      assert.deepEqual([0, 1, 2, 3].map((k) => allowed(r, 1, k)), [true, true, false, false]);
      assert.deepEqual([0, 1, 2, 3].map((k) => allowed(r, 2, k)), [false, false, true, false]);
      assert.deepEqual([0, 1, 2, 3].map((k) => allowed(r, 3, k)), [false, false, false, true]);
    }
  });
});

describe('JSONL datasets', () => {
  it('reads rows and names the file, line and field of a bad one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'train-data-'));
    try {
      const file = join(dir, 'chat.jsonl');
      writeFileSync(file, '{"messages":[{"role":"user","content":"a"}]}\n\n{"messages":[{"role":"robot","content":"b"}]}\n');
      assert.throws(
        () => readJsonl(file, sftChatRowSchema),
        (e: unknown) => e instanceof InputError && e.file === file && e.field.startsWith('line 3: messages.0.role'),
      );
      writeFileSync(file, '{"messages":[{"role":"user","content":"a"}],"meta":{"id":"x"}}\n');
      assert.equal(readJsonl(file, sftChatRowSchema).length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
