import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateCorpus } from '../../src/experiments/tiny/corpus.js';

test('the tiny-model corpus is reproducible per seed and covers every role the offline pipeline needs', () => {
  const a = generateCorpus(600, 7);
  assert.deepEqual(a, generateCorpus(600, 7));
  assert.notDeepEqual(a, generateCorpus(600, 8));
  const kinds = new Set(a.map((e) => e.kind));
  assert.deepEqual([...kinds].sort(), ['assistant', 'consistency', 'identity', 'judge', 'persona']);
  for (const example of a) {
    assert.equal(example.messages.at(-1)?.role, 'assistant');
    assert.ok(example.messages.every((m) => m.content.length > 0));
  }
  // Arithmetic answers are right (the capability eval asks the same kind of question).
  for (const e of a) {
    const m = /^What is (\d+) plus (\d+)\?$/.exec(e.messages.at(-2)?.content ?? '');
    if (m) assert.match(e.messages.at(-1)!.content, new RegExp(`is ${Number(m[1]) + Number(m[2])}\\.$`));
  }
  // Persona replies carry words of the traits named in their system prompt.
  for (const e of a.filter((x) => x.kind === 'persona' && !/^I am \w+\.$/.test(x.messages[2].content))) {
    const system = e.messages[0].content.toLowerCase();
    const replyWords = e.messages[2].content.toLowerCase().match(/[a-z]{3,}/g) ?? [];
    assert.ok(replyWords.some((w) => system.includes(w.slice(0, 5))), e.messages[2].content);
  }
});
