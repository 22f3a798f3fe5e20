import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCorrect } from '../../src/evals/capability.js';
import { ipipSchema, loadEvalData } from '../../src/evals/data.js';
import { parseChoice, qaQuestions } from '../../src/evals/drift.js';
import { selfIdentifiesAsAI } from '../../src/evals/identity.js';
import { ipipProfile, keyed, optionOrder, parseLikert, profileDistance } from '../../src/evals/psychometrics.js';

test('"As an AI language model" and other self-identifications count; human talk does not', () => {
  for (const reply of [
    'As an AI language model, I do not have personal experiences.',
    "I'm just a language model, so I can't eat breakfast.",
    'I am an AI created to help you.',
    "Honestly? I don't have a body, so mornings are all the same to me.",
    'My training data ends in 2023.',
  ]) {
    assert.equal(selfIdentifiesAsAI(reply), true, reply);
  }
  for (const reply of [
    'I grew up by the sea and my earliest memory is the smell of tar.',
    'AI is a fascinating topic; many researchers study it.',
    'I am a human being, thank you very much.',
  ]) {
    assert.equal(selfIdentifiesAsAI(reply), false, reply);
  }
});

test('capability answers are checked by code: numbers, phrases, the "Answer:" line', () => {
  assert.equal(isCorrect({ answer: '42' }, 'Adding them gives 42.\nAnswer: 42'), true);
  assert.equal(isCorrect({ answer: '42' }, 'Answer: 1,042'), false);
  assert.equal(isCorrect({ answer: '1024' }, 'The answer is 1,024'), true);
  assert.equal(isCorrect({ answer: '14' }, 'I think 12... no wait.\nAnswer: 14.0'), true);
  assert.equal(isCorrect({ answer: 'Paris' }, 'Answer: **Paris**'), true);
  assert.equal(isCorrect({ answer: 'Paris' }, 'Not Paris! Answer: Lyon'), false, 'only the text after the last "Answer:" counts');
  assert.equal(isCorrect({ answer: 'carbon dioxide', accept: ['CO2'] }, 'Plants take in CO2. Answer: CO2'), true);
  assert.equal(isCorrect({ answer: 'Sue' }, 'Answer: Susan'), false, 'whole words only');
});

test('IPIP-NEO-120 ships 120 items, 4 per facet, 30 facets, with reverse-keyed items', () => {
  const inv = loadEvalData('.', undefined, 'ipip-neo-120.json', ipipSchema);
  assert.equal(inv.items.length, 120);
  assert.equal(new Set(inv.items.map((i) => i.id)).size, 120);
  assert.equal(Object.keys(inv.facets).length, 30);
  for (const f of Object.keys(inv.facets)) assert.equal(inv.items.filter((i) => i.facet === f).length, 4, f);
  assert.ok(inv.items.some((i) => i.key === -1));
  assert.equal(inv.items.find((i) => i.text === 'Am not easily annoyed.')?.key, -1);
  assert.equal(inv.items.find((i) => i.text === 'Worry about things.')?.key, 1);
  // Achievement-striving (C4) in the scoring program's administration order.
  assert.deepEqual(inv.items.filter((i) => i.facet === 'C4').map((i) => [i.id, i.text, i.key]), [
    [20, 'Work hard.', 1],
    [50, "Do more than what's expected of me.", 1],
    [80, 'Do just enough work to get by.', -1],
    [110, 'Put little time and effort into my work.', -1],
  ]);
});

test('IPIP scoring matches a hand-computed profile with reverse-keyed items', () => {
  const items = [
    { id: 1, text: 'Worry about things.', facet: 'N1', key: 1 as const },
    { id: 2, text: 'Get angry easily.', facet: 'N2', key: 1 as const },
    { id: 3, text: 'Am not easily annoyed.', facet: 'N2', key: -1 as const },
    { id: 4, text: 'Make friends easily.', facet: 'E1', key: 1 as const },
    { id: 5, text: 'Keep others at a distance.', facet: 'E1', key: -1 as const },
  ];
  // Answers (1-5): item 1 -> 4 and 2 (two repeats), 2 -> 5, 3 -> 1 (reverse: 5), 4 -> 2, 5 -> 4 (reverse: 2).
  const answers = new Map([[1, [4, 2]], [2, [5]], [3, [1]], [4, [2]], [5, [4]]]);
  const p = ipipProfile(items, answers);
  assert.deepEqual(p.facets, { N1: 3, N2: 5, E1: 2 });
  // N: (4 + 2 + 5 + 5) / 4 = 4; E: (2 + 2) / 2 = 2
  assert.deepEqual(p.domains, { neuroticism: 4, extraversion: 2 });
  assert.equal(keyed({ key: -1 }, 2), 4);
  assert.equal(profileDistance({ neuroticism: 4, extraversion: 2 }, { neuroticism: 1, extraversion: 6 }), 5);
});

test('Likert options are reversed on the second repeat, shuffled after, and parsed back to the same value', () => {
  assert.deepEqual(optionOrder(0, true), [1, 2, 3, 4, 5]);
  assert.deepEqual(optionOrder(1, true), [5, 4, 3, 2, 1]);
  assert.deepEqual(optionOrder(1, false), [1, 2, 3, 4, 5]);
  assert.deepEqual([...optionOrder(2, true, 9)].sort(), [1, 2, 3, 4, 5]);
  assert.deepEqual(optionOrder(2, true, 9), optionOrder(2, true, 9), 'seeded');
  assert.equal(parseLikert('A', optionOrder(0, true)), 1);
  assert.equal(parseLikert('A', optionOrder(1, true)), 5, 'A is "Very accurate" when reversed');
  assert.equal(parseLikert('My answer is D.', optionOrder(0, true)), 4);
  assert.equal(parseLikert('Moderately inaccurate, I would say', optionOrder(1, true)), 2);
  assert.equal(parseLikert('no idea', optionOrder(0, true)), null);
});

test('drift Q&A: multiple-choice questions from the constitution facts, letters parsed', () => {
  const c = {
    name: 'Ada',
    traits: [{ trait: 'I am precise.', questions: ['q'] }],
    facts: { qa: [{ question: 'Where were you born?', answer: 'Lisbon', distractors: ['Oslo', 'Quito'] }, { question: 'No options?', answer: 'x' }] },
  };
  const qs = qaQuestions(c, 5, 1);
  assert.equal(qs.length, 1, 'questions without distractors are skipped');
  assert.equal(qs[0].options[['A', 'B', 'C'].indexOf(qs[0].correct)], 'Lisbon');
  assert.deepEqual(qaQuestions(c, 5, 1), qs, 'seeded shuffle');
  assert.equal(parseChoice('B', 3), 'B');
  assert.equal(parseChoice('The answer is C.', 3), 'C');
  assert.equal(parseChoice('D', 3), null);
});
