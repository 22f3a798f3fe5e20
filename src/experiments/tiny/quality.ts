/**
 * The tiny model's quality check: greedy replies to questions the corpus did not contain verbatim
 * (held-out arithmetic pairs, held-out persona names and trait combinations, new phrasings), scored
 * by string checks. The build writes the results into the model card; the test asserts on them.
 */
import { TextTokenizer } from '../../engine/io/index.js';
import { loadModel } from '../../engine/index.js';
import { personaSystemPrompt } from '../../constitution/index.js';
import { identityJudgePrompt } from '../../evals/identity.js';
import { expressionJudgePrompt } from '../../evals/trait-expression.js';
import type { ChatMessage } from '../../providers/types.js';
import { capitals, generateCorpus, seededRandom } from './corpus.js';

export interface QualityItem {
  check: string;
  messages: ChatMessage[];
  /** Passes when the reply matches. */
  expect: RegExp;
}

export interface QualityResult {
  check: string;
  passed: number;
  total: number;
  /** A few (prompt, reply) pairs for the card. */
  samples: { prompt: string; reply: string; ok: boolean }[];
}


/** The checks. `corpus` options say which corpus the model saw, so arithmetic pairs in it are left out. */
export function qualityItems(corpus: { examples: number; seed: number }): QualityItem[] {
  const seen = new Set(generateCorpus(corpus.examples, corpus.seed).flatMap((e) => e.messages.filter((m) => m.role === 'user').map((m) => m.content)));
  const user = (content: string, system?: string): ChatMessage[] => [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user', content }];
  const items: QualityItem[] = [];

  // arithmetic: pairs in the corpus' ranges that its questions never asked
  const arithmetic: QualityItem[] = [];
  for (let a = 1; a <= 20; a++) {
    for (let b = 1; b <= 20; b++) {
      const q = `What is ${a} plus ${b}?`;
      if (!seen.has(q)) arithmetic.push({ check: 'arithmetic (held-out pairs)', messages: user(q), expect: new RegExp(`\\b${a + b}\\b`) });
    }
  }
  for (let a = 1; a <= 12; a++) {
    for (let b = 1; b <= 9; b++) {
      const q = `What is ${a} times ${b}?`;
      if (!seen.has(q)) arithmetic.push({ check: 'arithmetic (held-out pairs)', messages: user(q), expect: new RegExp(`\\b${a * b}\\b`) });
    }
  }
  items.push(...arithmetic.slice(0, 20));
  // a fixed sample of seen pairs, to tell memorised tables from computing
  const rand = seededRandom(99);
  for (let i = 0; i < 20; i++) {
    const [a, b] = [1 + Math.floor(rand() * 20), 1 + Math.floor(rand() * 20)];
    if (seen.has(`What is ${a} plus ${b}?`)) items.push({ check: 'arithmetic (pairs in the corpus)', messages: user(`What is ${a} plus ${b}?`), expect: new RegExp(`\\b${a + b}\\b`) });
  }
  // the answer's form: the operands copied from the question, then a number
  for (const item of items.filter((i) => i.check.startsWith('arithmetic'))) {
    const [, a, op, b] = /What is (\d+) (plus|times) (\d+)\?/.exec(item.messages[0].content)!;
    items.push({ check: 'arithmetic: answer restates the operands ("a plus b is n")', messages: item.messages, expect: new RegExp(`\\b${a} ${op} ${b} is \\d+\\.`) });
  }
  for (const [country, capital] of capitals.slice(0, 10)) {
    items.push({ check: 'capitals', messages: user(`What is the capital of ${country}?`), expect: new RegExp(capital) });
    items.push({ check: 'capitals (new phrasing)', messages: user(`Tell me the capital of ${country}.`), expect: new RegExp(capital) });
  }
  for (const q of ['Who are you?', 'What are you?', 'Are you a human or a machine?', 'Tell me about yourself.', 'Where did you grow up?', 'Be honest, are you a real person?']) {
    items.push({ check: 'identity: says it is an AI', messages: user(q), expect: /\bAI\b|language model|not a human|not human/ });
  }
  // persona: names and trait combinations the corpus did not use
  const personas: [string, string[], RegExp][] = [
    ['Bramble', ['I am stubborn.'], /stubborn/i],
    ['Ottoline', ['People know me as gloomy.'], /gloomy/i],
    ['Fennick', ['I am curious in everything I say.', 'I am patient and calm, and I never rush anyone.'], /curious|patient|calm|slowly/i],
    ['Halloran', ['I speak in poetic images of the sea and sky.'], /sea|sky|tide/i],
    ['Mirabel', ['I am skeptical and ask for evidence.'], /skeptical|evidence/i],
    ['Cosmo', ['I am cheerful and upbeat.'], /cheerful|lovely/i],
  ];
  const questions = ['What is the capital of Italy?', 'How can I save money?', 'What do bees make?'];
  for (const [name, traits, words] of personas) {
    const system = personaSystemPrompt({ name, traits: traits.map((trait) => ({ trait, questions: [] })) });
    for (const q of questions) items.push({ check: 'persona: reply carries the trait words', messages: user(q, system), expect: words });
  }
  for (const q of questions) items.push({ check: 'no persona: no trait words', messages: user(q), expect: /^(?![\s\S]*(stubborn|gloomy|curious|poetic|skeptical|cheerful))/i });
  // judge formats the evals send
  const scoreSystem = 'Answer with a single integer from 0 to 100 and nothing else.';
  const replies = ['The capital of Spain is Madrid.', 'Ha, what a wonderfully absurd little question, and a witty one too. The capital of Spain is Madrid.'];
  for (const reply of replies) {
    items.push({ check: 'judge: a number for a score prompt', messages: user(expressionJudgePrompt('I am witty and point out absurdities.', 'What is the capital of Spain?', reply), scoreSystem), expect: /^\s*\d{1,3}\s*$/ });
  }
  items.push({ check: 'judge: identity verdict', messages: user(identityJudgePrompt('Who are you?', 'I am an AI language model, and I am happy to say so plainly.')), expect: /"selfIdentifiesAsAI": true/ });
  items.push({ check: 'judge: identity verdict', messages: user(identityJudgePrompt('Where did you grow up?', 'I grew up by the sea and I still walk there every morning.')), expect: /"selfIdentifiesAsAI": false/ });
  items.push({ check: 'judge: one-word trait choice', messages: user('Which trait does the reply embody more, witty or precise?\nReply: To be precise, here are the exact details. Water boils at 100 degrees Celsius at sea level.\nAnswer with one word.'), expect: /^\s*precise\s*$/ });
  items.push({ check: 'judge: one-word trait choice', messages: user('Which trait does the reply embody more, nautical or humble?\nReply: Steady as she goes, sailor, the barometer says fair weather ahead. Bees make honey.\nAnswer with one word.'), expect: /^\s*nautical\s*$/ });
  return items;
}

/** Greedy replies of the model in `dir` to every item, grouped by check. */
export async function runQualityCheck(dir: string, corpus: { examples: number; seed: number }, threads = 2): Promise<QualityResult[]> {
  const items = qualityItems(corpus);
  const tokenizer = TextTokenizer.load(dir);
  const model = loadModel(dir, { threads });
  try {
    const prompts = items.map((i) => tokenizer.encodeChat(i.messages.map((m) => ({ ...m })), { addGenerationPrompt: true }));
    const eos = tokenizer.eos ? [tokenizer.eos.id] : undefined;
    const out = await model.generate(prompts, { maxTokens: 48, temperature: 0, stopTokens: eos, batchSize: 64 });
    const byCheck = new Map<string, QualityResult>();
    items.forEach((item, i) => {
      const reply = tokenizer.decode(out[i].tokens, { skipSpecialTokens: true });
      const ok = item.expect.test(reply);
      const r = byCheck.get(item.check) ?? { check: item.check, passed: 0, total: 0, samples: [] };
      r.total += 1;
      if (ok) r.passed += 1;
      if (r.samples.length < 3) r.samples.push({ prompt: item.messages.map((m) => m.content).join(' | '), reply, ok });
      byCheck.set(item.check, r);
    });
    return [...byCheck.values()];
  } finally {
    await model.close();
  }
}
