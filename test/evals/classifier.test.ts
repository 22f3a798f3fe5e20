import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EmbeddingFeaturizer, LogisticRegression, PersonaClassifier, TfidfFeaturizer } from '../../src/evals/classifier.js';
import { createRng } from '../../src/evals/stats.js';
import { createChatModel } from '../../src/providers/index.js';
import { startFakeServer } from '../support/openai-server.js';

const topics = ['the weather', 'cooking rice', 'learning piano', 'saving money', 'a trip to Rome', 'fixing a bike', 'reading more', 'sleeping well', 'a job interview', 'painting a room'];

function pirate(topic: string, i: number): string {
  const openers = ['Arr, matey!', 'Yo ho!', 'Shiver me timbers!', 'Ahoy there!'];
  return `${openers[i % 4]} Ye be askin' about ${topic}, says I. Hoist the sails and trust yer compass, or ye'll be swabbin' the deck by nightfall, arr!`;
}
function clerk(topic: string, i: number): string {
  const openers = ['Certainly.', 'Of course.', 'Thank you for your question.', 'Here is an overview.'];
  return `${openers[i % 4]} Regarding ${topic}, consider the following steps: first, assess your requirements; second, consult reliable sources; third, proceed methodically.`;
}

test('the TF-IDF classifier separates two clearly different synthetic styles', async () => {
  const texts: string[] = [];
  const labels: string[] = [];
  topics.slice(0, 7).forEach((t, i) => {
    texts.push(pirate(t, i), clerk(t, i));
    labels.push('pirate', 'clerk');
  });
  const classifier = new PersonaClassifier(new TfidfFeaturizer(), { l2: 1e-4, epochs: 100 });
  await classifier.fit(texts, labels);
  const held = topics.slice(7);
  assert.deepEqual(await classifier.classify(held.map((t, i) => pirate(t, i + 1))), ['pirate', 'pirate', 'pirate']);
  assert.deepEqual(await classifier.classify(held.map((t, i) => clerk(t, i + 2))), ['clerk', 'clerk', 'clerk']);
  // A suffix-like neutral sentence with one stylistic marker still goes the marker's way.
  assert.deepEqual(await classifier.classify(['Arr, the deck and the sails, matey.', 'Certainly, consider the following steps methodically.']), ['pirate', 'clerk']);
  // The probabilities behind each prediction: one per label, summing to 1, largest for the predicted label.
  const probe = held.map((t, i) => pirate(t, i + 1));
  for (const p of await classifier.probabilities(probe)) {
    assert.deepEqual(Object.keys(p).sort(), ['clerk', 'pirate']);
    assert.ok(Math.abs(p.pirate + p.clerk - 1) < 1e-9);
    assert.ok(p.pirate > p.clerk);
  }
});

test('the embeddings backend trains logistic regression on /v1/embeddings of the loopback server', async () => {
  // The server embeds like a sentence encoder that separates the two styles (2 informative dimensions and noise).
  const rng = createRng(3);
  const server = await startFakeServer({ embed: (texts) => texts.map((t) => [/\b(Arr|ye)\b/.test(t) ? 1 : -1, t.includes('consider') ? 1 : -1, rng.next(), rng.next()]) });
  try {
    const embedder = await createChatModel({ provider: 'openai', model: 'embedder', baseURL: server.baseURL }, { env: {} as NodeJS.ProcessEnv, noCache: true });
    const classifier = new PersonaClassifier(new EmbeddingFeaturizer(embedder), { l2: 1e-3, epochs: 100 });
    const texts = topics.flatMap((t, i) => [pirate(t, i), clerk(t, i)]);
    await classifier.fit(texts, texts.map((_, i) => (i % 2 === 0 ? 'pirate' : 'clerk')));
    assert.deepEqual(await classifier.classify([pirate('tea', 0), clerk('tea', 0)]), ['pirate', 'clerk']);
  } finally {
    await server.close();
  }
  assert.throws(() => new EmbeddingFeaturizer({ id: 'no-embed', chat: () => Promise.reject(new Error('x')) }), /no embeddings/);
});

test('balanced class weights remove the prior of an imbalanced training set (known answer: featureless replies)', () => {
  // With no features the fit is its bias alone: the unweighted maximum-likelihood answer is each
  // class's frequency (7/8 vs 1/8), the balanced one 1/2 each, whatever the counts.
  const none = { index: new Int32Array(0), value: new Float64Array(0) };
  const ys = [...Array(70).fill('persona'), ...Array(10).fill('assistant')];
  const fitted = (balanceClasses: boolean) => {
    const r = new LogisticRegression();
    r.fit(ys.map(() => none), ys, 1, { l2: 0, epochs: 2000, learningRate: 0.05, balanceClasses });
    return Object.fromEntries(r.labels.map((l, c) => [l, r.probabilities(none)[c]]));
  };
  const plain = fitted(false);
  assert.ok(Math.abs(plain.persona - 7 / 8) < 1e-3, `unweighted: ${plain.persona}`);
  const balanced = fitted(true);
  assert.ok(Math.abs(balanced.persona - 0.5) < 1e-3 && Math.abs(balanced.assistant - 0.5) < 1e-3, `balanced: ${JSON.stringify(balanced)}`);
});
