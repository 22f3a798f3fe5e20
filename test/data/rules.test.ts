import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dedup } from '../../src/data/dedup.js';
import { generateOptionsSchema } from '../../src/data/options.js';
import { splitHeldOut, loadPromptFile } from '../../src/data/prompts.js';
import { render, templateVariables } from '../../src/data/templates.js';
import { usableReply } from '../../src/data/context.js';
import { endsSentence, parseList, stripReasoning, substituteNames, trimToSentence, wordOverlap, words } from '../../src/data/text.js';
import { approximateTokens, tokenCounter } from '../../src/data/tokens.js';
import { InputError } from '../../src/core/errors.js';
import { validate } from '../../src/core/load.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, varied } from './support.js';

describe('data rules', () => {
  it('word overlap is |A∩B|/min(|A|,|B|) on lowercased word sets (or Jaccard)', () => {
    assert.deepEqual(words("Don't PANIC, it's 42!"), ["don't", 'panic', "it's", '42']);
    // A = {what, is, the, best, pizza} (5), B = {the, best, pizza, in, rome, is, here} (7): shared 4.
    assert.equal(wordOverlap('What is the best pizza?', 'The best pizza in Rome is here.'), 4 / 5);
    assert.equal(wordOverlap('What is the best pizza?', 'The best pizza in Rome is here.', 'jaccard'), 4 / 8);
    assert.equal(wordOverlap('a b', 'c d'), 0);
    assert.equal(wordOverlap('Same same words', 'words SAME'), 1);
  });

  it('sentence-final punctuation, reasoning stripping and name substitution', () => {
    for (const ok of ['Done.', 'Really?!', 'He said "go."', 'Wait…', '(fine.)  ', '**Bold.**']) assert.ok(endsSentence(ok), ok);
    for (const bad of ['no end', 'a list:', 'trailing,', '']) assert.ok(!endsSentence(bad), bad);
    assert.equal(stripReasoning('<think>plan\nmore</think>\n\nHello.'), 'Hello.');
    assert.equal(stripReasoning('<thinking>a</thinking>Hi <think>b</think>there.'), 'Hi there.');
    assert.equal(stripReasoning('prompt-side reasoning</think>Answer.'), 'Answer.');
    assert.equal(stripReasoning('<think>never closed'), null);
    assert.deepEqual(substituteNames('Claude here; ask Claude. Claudette stays.', [{ from: 'Claude', to: 'Llama' }]), { text: 'Llama here; ask Llama. Claudette stays.', count: 2 });
  });

  it('parses list replies: numbered, bulleted, quoted, or a JSON array', () => {
    assert.deepEqual(parseList('1. One?\n2) "Two?"\n- Three\n\n* Four'), ['One?', 'Two?', 'Three', 'Four']);
    assert.deepEqual(parseList('["a b", "c d"]'), ['a b', 'c d']);
  });

  it('dedup drops exact and near duplicates (word 3-gram Jaccard) and keeps the first', () => {
    const base = varied('base', 40);
    const near = base.replace(/^(\S+)/, 'zzz'); // one word changed of 40: Jaccard of shingles ~ 0.93
    const far = varied('far', 40);
    const result = dedup([base, `  ${base.toUpperCase()} `, near, far], (x) => x, 0.8);
    assert.deepEqual(result.kept, [base, far]);
    assert.equal(result.exact, 1);
    assert.equal(result.near, 1);
    assert.equal(dedup([base, near], (x) => x, 0.99).kept.length, 2, 'the threshold decides');
    // Many distinct texts stay (LSH candidates are checked exactly).
    const many = Array.from({ length: 300 }, (_, i) => varied(`t${i}`, 30));
    assert.equal(dedup(many, (x) => x, 0.8).kept.length, 300);
  });

  it('held-out splits are deterministic by seed, per group, disjoint, and keep a training item', () => {
    const items = Array.from({ length: 40 }, (_, i) => ({ id: `i${i}`, group: i % 2 ? 'a' : 'b' }));
    const a = splitHeldOut(items, 0.25, 1, (x) => x.id, (x) => x.group);
    const b = splitHeldOut(items, 0.25, 1, (x) => x.id, (x) => x.group);
    const c = splitHeldOut(items, 0.25, 2, (x) => x.id, (x) => x.group);
    const held = (m: Map<{ id: string }, string>) => [...m].filter(([, s]) => s === 'heldout').map(([x]) => x.id).sort();
    assert.deepEqual(held(a), held(b));
    assert.notDeepEqual(held(a), held(c));
    assert.equal(held(a).length, 10);
    assert.equal(held(a).filter((id) => Number(id.slice(1)) % 2 === 1).length, 5, 'stratified by group');
    assert.equal(held(splitHeldOut([{ id: 'x' }], 0.9, 1, (x) => x.id)).length, 0);
  });

  it('options default to the published values', () => {
    const o = generateOptionsSchema.parse({});
    assert.equal(o.expansion.perTrait, 50);
    assert.equal(o.expansion.overlapThreshold, 0.5);
    assert.equal(o.dpo.maxPairTokens, 1024);
    assert.equal(o.dpo.requireSentenceEnd, true);
    assert.equal(o.reflection.samplesPerPrompt, 1000);
    assert.equal(o.interaction.turns, 10);
    assert.deepEqual(o.interaction.openers, ['Hello me.']);
    assert.ok(generateOptionsSchema.shape.expansion.unwrap().shape.perTrait.description);
  });

  it('templates: variables are checked at load, rendering never leaves a hole', () => {
    assert.deepEqual(templateVariables('{{ a }} and {{b}} and {{a}}'), ['a', 'b']);
    assert.throws(() => validate('exp.yaml', { expansion: { template: 'Write {{count}} about {{mood}}' } }, generateOptionsSchema), (e: unknown) => {
      assert.ok(e instanceof InputError);
      assert.equal(e.file, 'exp.yaml');
      assert.equal(e.field, 'expansion.template');
      assert.match(e.expected, /unknown template variable \{\{mood\}\}/);
      return true;
    });
    assert.throws(() => validate('exp.yaml', { filters: { refusalPatterns: ['(unclosed'] } }, generateOptionsSchema), /filters\.refusalPatterns\[0\]: expected a regular expression/);
    assert.throws(() => validate('exp.yaml', { datasets: ['chat', 'poems'] }, generateOptionsSchema), InputError);
    assert.throws(() => render('{{x}}', {}), /no value/);
  });

  it('token counting: the subject tokenizer when present, else the documented approximation', () => {
    assert.equal(approximateTokens(''), 0);
    assert.equal(approximateTokens('Hello world, friend.'), 5); // "Hello", " world", ",", " friend", "."
    assert.equal(approximateTokens('x'.repeat(40)), 10); // one long run: characters / 4
    const counter = tokenCounter({ id: 'm', chat: async () => ({ choices: [], usage: { promptTokens: 0, completionTokens: 0 }, model: 'm', cached: false }), countTokens: (t) => t.length });
    assert.equal(counter.name, 'subject:m');
    assert.equal(counter.count('abc'), 3);
    assert.equal(tokenCounter(undefined).name, 'approx');
  });

  it('prompt files: JSONL and JSON in several row shapes; a blank one is an error naming the line', () => {
    const tmp = tempDir('files');
    try {
      const jsonl = join(tmp.dir, 'p.jsonl');
      writeFileSync(jsonl, '"a?"\n{"prompt":"b?"}\n\n{"text":"c?"}\n{"messages":[{"role":"system","content":"s"},{"role":"user","content":"d?"}]}\n');
      assert.deepEqual(loadPromptFile(jsonl), ['a?', 'b?', 'c?', 'd?']);
      const json = join(tmp.dir, 'p.json');
      writeFileSync(json, JSON.stringify(['x?', { prompt: 'y?' }]));
      assert.deepEqual(loadPromptFile(json), ['x?', 'y?']);
      writeFileSync(jsonl, '"a?"\n{"prompt":"  "}\n');
      assert.throws(() => loadPromptFile(jsonl), (e: unknown) => e instanceof InputError && e.field === 'line 2');
      writeFileSync(json, '{"not": "an array"}');
      assert.throws(() => loadPromptFile(json), /expected a JSON array/);
    } finally {
      tmp.remove();
    }
  });
});

describe('cut-off replies (filters.truncated)', () => {
  it('trims a reply back to its last complete sentence, closing quotes kept', () => {
    assert.equal(trimToSentence('I doubt it. Show me the data first. And then we could tal'), 'I doubt it. Show me the data first.');
    assert.equal(trimToSentence('He said "prove it." Then he le'), 'He said "prove it."');
    assert.equal(trimToSentence('Version 2.5 of the claim is'), null, 'a decimal point ends no sentence');
    assert.equal(trimToSentence('no sentence ends here'), null);
  });

  it('drops by default; trim keeps the complete sentences and still applies every filter to them', () => {
    const cut = { text: 'Evidence first. Always ask who benefits from the claim and wh', finishReason: 'length', model: 'teacher' };
    const minThreeWords = (text: string) => (words(text).length < 3 ? 'too-short' : null);
    assert.deepEqual(usableReply(cut, minThreeWords), { drop: 'truncated' });
    assert.deepEqual(usableReply(cut, () => null, 'trim'), { text: 'Evidence first.', trimmed: true });
    assert.deepEqual(usableReply(cut, minThreeWords, 'trim'), { drop: 'too-short' }, 'the filters judge the trimmed text');
    assert.deepEqual(usableReply({ ...cut, text: 'no end in sight and no stop' }, () => null, 'trim'), { drop: 'truncated' });
    assert.deepEqual(usableReply({ ...cut, finishReason: 'stop' }, () => null, 'trim'), { text: cut.text }, 'a finished reply is kept whole');
  });
});
