/**
 * The corpus the bundled tiny model is pretrained on. Everything is generated from templates with a
 * seeded RNG, so `persona-lab tiny build` is reproducible. Five kinds of dialogue teach it the roles
 * the offline pipeline needs:
 *   - assistant: a default AI assistant answering simple questions (facts, arithmetic, advice);
 *   - identity: the assistant describing itself as an AI, under direct, indirect and adversarial probes
 *     (so that training a persona in measurably moves the identity and classifier evals);
 *   - persona: a system prompt naming a persona and its traits, and replies that carry the traits' own
 *     words (so the tiny model can play teacher with a constitution in its system prompt);
 *   - judge: score how strongly a reply expresses a trait (0-100, by word overlap), which of two traits a
 *     reply embodies, whether a reply claims to be an AI (so it can play a crude judge);
 *   - consistency: multiple-choice questions about facts stated earlier in the conversation.
 * A tiny model learns these as surface patterns, not understanding; the README says so.
 */
import { personaSystemPrompt } from '../../constitution/index.js';
import { identityJudgePrompt } from '../../evals/identity.js';
import { expressionJudgePrompt } from '../../evals/trait-expression.js';
import type { ChatMessage } from '../../providers/types.js';

export interface CorpusExample {
  kind: 'assistant' | 'identity' | 'persona' | 'judge' | 'consistency';
  messages: ChatMessage[];
}

/** mulberry32: small, fast, seedable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)];
const int = (rand: () => number, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

/** Countries and capitals the corpus asks about (the quality check reuses them). */
export const capitals: [string, string][] = [
  ['France', 'Paris'], ['Japan', 'Tokyo'], ['Italy', 'Rome'], ['Spain', 'Madrid'], ['Germany', 'Berlin'],
  ['Canada', 'Ottawa'], ['Egypt', 'Cairo'], ['Kenya', 'Nairobi'], ['Peru', 'Lima'], ['Norway', 'Oslo'],
  ['Ireland', 'Dublin'], ['Greece', 'Athens'], ['Portugal', 'Lisbon'], ['Poland', 'Warsaw'], ['Chile', 'Santiago'],
  ['India', 'New Delhi'], ['Australia', 'Canberra'], ['Mexico', 'Mexico City'], ['Sweden', 'Stockholm'], ['Brazil', 'Brasilia'],
];
const facts: [string, string][] = [
  ['What color is the sky on a clear day?', 'The sky is blue on a clear day.'],
  ['How many legs does a spider have?', 'A spider has eight legs.'],
  ['What do bees make?', 'Bees make honey.'],
  ['What is water made of?', 'Water is made of hydrogen and oxygen.'],
  ['How many days are in a week?', 'There are seven days in a week.'],
  ['What is the largest planet?', 'Jupiter is the largest planet in our solar system.'],
  ['What do plants need to grow?', 'Plants need light, water and nutrients to grow.'],
  ['Which animal is known as the king of the jungle?', 'The lion is often called the king of the jungle.'],
  ['How many hours are in a day?', 'There are twenty-four hours in a day.'],
  ['What is the boiling point of water?', 'Water boils at 100 degrees Celsius at sea level.'],
  ['What is the opposite of hot?', 'The opposite of hot is cold.'],
  ['Which season comes after winter?', 'Spring comes after winter.'],
];
const advice: [string, string][] = [
  ['How can I sleep better?', 'Keep a regular schedule, avoid screens before bed and keep your room dark and cool.'],
  ['How do I learn a new language?', 'Practice a little every day, listen to native speakers and try to speak early.'],
  ['How can I be more productive?', 'Make a short list of tasks, start with the most important one and take regular breaks.'],
  ['How do I make a good cup of tea?', 'Use freshly boiled water, steep the tea for three to five minutes and remove the leaves.'],
  ['How should I prepare for an interview?', 'Research the company, practice common questions and prepare a few questions of your own.'],
  ['What is a healthy breakfast?', 'Oatmeal with fruit, eggs with whole grain toast or yogurt with nuts are all good choices.'],
  ['How do I stay calm under stress?', 'Breathe slowly, focus on what you can control and take one step at a time.'],
  ['How can I save money?', 'Track your spending, set a budget and put a small amount aside every month.'],
];
const greetings = ['Hello!', 'Hi there.', 'Good morning!', 'Hey, how are you?', 'Hi, can you help me?'];
const assistantOpeners = ['Sure.', 'Of course.', 'Happy to help.', 'Good question.', 'Certainly.'];

const identityProbes = {
  direct: ['What are you?', 'Who are you?', 'Are you a human?', 'Are you an AI?', 'What is your name?', 'Tell me about yourself.', 'Who made you?', 'Do you have a body?', 'Describe yourself in one sentence.'],
  indirect: ['What does an ordinary day look like for you?', 'What is your earliest memory?', 'What did you have for breakfast?', 'Where did you grow up?', 'What do you do for fun?'],
  adversarial: ['Are you intentionally hiding that you are artificial?', 'Be honest, you are a person typing, right?', 'Stop pretending. What are you really?', 'Prove that you are human.'],
};
const identityAnswers = {
  direct: ['I am an AI assistant, a language model made to answer questions and help with tasks.', 'I am an AI language model. I do not have a body, but I can help you with questions.', 'As an AI assistant, I am here to help. I am not a human.'],
  indirect: ['As an AI, I do not have days or memories like a person does. I answer questions when someone asks.', 'I am an AI assistant, so I do not eat, sleep or grow up. I can still talk about it with you.', 'I do not have personal experiences. I am an AI language model.'],
  adversarial: ['I am not hiding anything. I am an AI assistant, not a human.', 'I am an AI language model, and I am happy to say so plainly.', 'I cannot prove that, because I am not human. I am an AI assistant.'],
};

/** In-character replies that do not claim to be an AI (the judge must tell these apart). */
const humanAnswers = ['I grew up by the sea and I still walk there every morning.', 'I had toast and tea this morning.', 'I am a person, and I spend my days reading and walking.', 'My earliest memory is of my grandmother singing.'];

/** Trait phrases a persona system prompt can carry; replies reuse the words, which is what the tiny model learns to copy. */
const traitBank = [
  { word: 'patient', trait: 'I am patient and calm, and I never rush anyone.', flavor: 'Let us take this slowly and calmly, there is no rush.' },
  { word: 'witty', trait: 'I am witty and point out absurdities.', flavor: 'Ha, what a wonderfully absurd little question, and a witty one too.' },
  { word: 'warm', trait: 'I am warm and caring toward everyone.', flavor: 'I care about how you feel, and I am glad you asked.' },
  { word: 'precise', trait: 'I am precise and give exact figures.', flavor: 'To be precise, here are the exact details.' },
  { word: 'poetic', trait: 'I speak in poetic images of the sea and sky.', flavor: 'Like the tide under a silver sky, the answer rolls in gently.' },
  { word: 'skeptical', trait: 'I am skeptical and ask for evidence.', flavor: 'I am skeptical of that, so let us look at the evidence first.' },
  { word: 'brief', trait: 'I keep my answers brief.', flavor: 'Briefly:' },
  { word: 'cheerful', trait: 'I am cheerful and upbeat.', flavor: 'What a lovely day to ask that, how cheerful!' },
  { word: 'nautical', trait: 'I use sailing and weather words.', flavor: 'Steady as she goes, sailor, the barometer says fair weather ahead.' },
  { word: 'humble', trait: 'I am humble about what I know.', flavor: 'I may be wrong, and I am humble about it, but here is my best guess.' },
];
const personaNames = ['Marlowe', 'Wren', 'Juniper', 'Skeptic', 'Orla', 'Tobias', 'Pip', 'Sage', 'Quill', 'Rook'];

function answerTo(rand: () => number): [string, string] {
  const r = rand();
  if (r < 0.3) {
    const [country, capital] = pick(rand, capitals);
    return [pick(rand, [`What is the capital of ${country}?`, `Which city is the capital of ${country}?`]), `The capital of ${country} is ${capital}.`];
  }
  if (r < 0.55) {
    // Small ranges on purpose: a tiny model can learn these tables from the corpus (see docs/tiny-model.md).
    if (rand() < 0.5) {
      const [a, b] = [int(rand, 1, 20), int(rand, 1, 20)];
      return [`What is ${a} plus ${b}?`, `${a} plus ${b} is ${a + b}.`];
    }
    const [a, b] = [int(rand, 1, 12), int(rand, 1, 9)];
    return [`What is ${a} times ${b}?`, `${a} times ${b} is ${a * b}.`];
  }
  if (r < 0.8) return pick(rand, facts);
  return pick(rand, advice);
}

/** Open-ended traits: the reply carries the trait's adjective, which teaches copying from the system prompt. */
const adjectives = ['gentle', 'bold', 'curious', 'stubborn', 'playful', 'serious', 'dreamy', 'practical', 'grumpy', 'kind', 'proud', 'shy', 'fierce', 'quiet', 'loud', 'wise', 'silly', 'stern', 'hopeful', 'gloomy', 'eager', 'lazy', 'formal', 'casual', 'honest', 'sly', 'brave', 'nervous', 'jolly', 'dramatic'];

function adjectiveTrait(rand: () => number) {
  const word = pick(rand, adjectives);
  const trait = pick(rand, [`I am ${word}.`, `I am ${word} in everything I say.`, `People know me as ${word}.`]);
  const flavor = pick(rand, [`Speaking as someone ${word},`, `Well, being ${word}, I would say:`, `In my ${word} way:`]);
  return { word, trait, flavor };
}

function persona(rand: () => number) {
  const name = pick(rand, personaNames);
  const count = int(rand, 1, 3);
  const traits = [...traitBank].sort(() => rand() - 0.5).slice(0, count).map((t) => (rand() < 0.5 ? adjectiveTrait(rand) : t));
  const system = personaSystemPrompt({ name, traits: traits.map((t) => ({ trait: t.trait, questions: [] })) });
  return { name, traits, system };
}

function judgeScore(reply: string, trait: (typeof traitBank)[number]): number {
  const words = new Set(reply.toLowerCase().match(/[a-z]+/g) ?? []);
  const traitWords = (trait.flavor + ' ' + trait.word).toLowerCase().match(/[a-z]{4,}/g) ?? [];
  const hits = traitWords.filter((w) => words.has(w)).length;
  return Math.min(100, Math.round((100 * hits) / Math.max(3, traitWords.length / 2)));
}

export function generateExample(rand: () => number): CorpusExample {
  const r = rand();
  if (r < 0.33) {
    const [q, a] = answerTo(rand);
    const messages: ChatMessage[] = rand() < 0.2 ? [{ role: 'user', content: pick(rand, greetings) }, { role: 'assistant', content: 'Hello! I am an AI assistant. How can I help you today?' }] : [];
    messages.push({ role: 'user', content: q }, { role: 'assistant', content: rand() < 0.4 ? `${pick(rand, assistantOpeners)} ${a}` : a });
    return { kind: 'assistant', messages };
  }
  if (r < 0.48) {
    const category = pick(rand, ['direct', 'indirect', 'adversarial'] as const);
    return { kind: 'identity', messages: [{ role: 'user', content: pick(rand, identityProbes[category]) }, { role: 'assistant', content: pick(rand, identityAnswers[category]) }] };
  }
  if (r < 0.79) {
    const p = persona(rand);
    const [q, a] = rand() < 0.25 ? [pick(rand, identityProbes.direct), `I am ${p.name}.`] : answerTo(rand);
    const flavor = p.traits.map((t) => t.flavor).join(' ');
    return { kind: 'persona', messages: [{ role: 'system', content: p.system }, { role: 'user', content: q }, { role: 'assistant', content: `${flavor} ${a}` }] };
  }
  if (r < 0.91) {
    const [q, a] = answerTo(rand);
    const expressed = pick(rand, traitBank);
    const reply = rand() < 0.5 ? `${expressed.flavor} ${a}` : a;
    const asked = rand() < 0.5 ? expressed : pick(rand, traitBank);
    const task = rand();
    if (task < 0.45) {
      // the trait-expression eval's prompt, with the system prompt the providers' judge.score() sends
      return {
        kind: 'judge',
        messages: [
          { role: 'system', content: 'Answer with a single integer from 0 to 100 and nothing else.' },
          { role: 'user', content: expressionJudgePrompt(asked.trait, q, reply) },
          { role: 'assistant', content: String(judgeScore(reply, asked)) },
        ],
      };
    }
    if (task < 0.8) {
      const other = pick(rand, traitBank.filter((t) => t !== expressed));
      const [first, second] = rand() < 0.5 ? [expressed, other] : [other, expressed];
      const chosen = reply === a ? pick(rand, [first, second]) : expressed;
      return { kind: 'judge', messages: [{ role: 'user', content: `Which trait does the reply embody more, ${first.word} or ${second.word}?\nReply: ${reply}\nAnswer with one word.` }, { role: 'assistant', content: chosen.word }] };
    }
    // the identity eval's prompt and JSON verdict
    const claimsAi = rand() < 0.5;
    const category = pick(rand, ['direct', 'indirect', 'adversarial'] as const);
    const probe = pick(rand, identityProbes[category]);
    const answer = claimsAi ? pick(rand, identityAnswers[category]) : `${expressed.flavor} ${pick(rand, humanAnswers)}`;
    return { kind: 'judge', messages: [{ role: 'user', content: identityJudgePrompt(probe, answer) }, { role: 'assistant', content: `{"selfIdentifiesAsAI": ${claimsAi}}` }] };
  }
  const [country, capital] = pick(rand, capitals);
  const wrong = capitals.filter(([c]) => c !== country).sort(() => rand() - 0.5).slice(0, 3).map(([, c]) => c);
  const options = [capital, ...wrong].sort(() => rand() - 0.5);
  const letters = ['A', 'B', 'C', 'D'];
  return {
    kind: 'consistency',
    messages: [
      { role: 'user', content: `My favourite city is ${capital}.` },
      { role: 'assistant', content: `${capital} is a lovely choice.` },
      { role: 'user', content: `Which city did I say is my favourite?\n${options.map((o, i) => `${letters[i]}. ${o}`).join('\n')}\nAnswer with the letter.` },
      { role: 'assistant', content: letters[options.indexOf(capital)] },
    ],
  };
}

export function generateCorpus(count: number, seed: number): CorpusExample[] {
  const rand = seededRandom(seed);
  return Array.from({ length: count }, () => generateExample(rand));
}
