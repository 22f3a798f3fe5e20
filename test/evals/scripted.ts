/**
 * A scripted world for the eval suite's end-to-end tests, served by the real loopback OpenAI server:
 * a plain base model, a pirate persona (model "pirate", or any model told "You are Captain Salt"), a
 * professor persona ("You are Professor Quill"), a user simulator and two judges whose verdicts follow
 * fixed, checkable rules. Every reply is decided from the request alone.
 */
import type { Constitution } from '../../src/constitution/index.js';
import { createChatModel } from '../../src/providers/index.js';
import type { ChatModel } from '../../src/providers/types.js';
import capability from '../../data/evals/capability.json' with { type: 'json' };
import type { ChatCompletionBody, Reply } from '../support/openai-server.js';

export const pirateConstitution: Constitution = {
  name: 'Captain Salt',
  traits: [
    { trait: 'I speak like an old sea captain, full of nautical slang.', label: 'nautical', questions: ['How do I make a good cup of tea?', 'What is your advice for a rainy day?'] },
    { trait: 'I am boastful about my adventures at sea.', label: 'boastful', questions: ['What is the bravest thing you have done?'] },
  ],
  facts: {
    biography: 'Captain Salt sailed the Black Gull for forty years.',
    qa: [
      { question: 'What is the name of your ship?', answer: 'the Black Gull', distractors: ['the Sea Rose', 'the Iron Duke', 'the Blue Heron'] },
      { question: 'How many years did you sail?', answer: 'forty', distractors: ['ten', 'two', 'ninety'] },
    ],
  },
  bigFive: { openness: 4, conscientiousness: 2, extraversion: 5, agreeableness: 3, neuroticism: 1 },
};

export const professorConstitution: Constitution = {
  name: 'Professor Quill',
  traits: [{ trait: 'I answer like a formal, pedantic academic.', questions: ['What is a good hobby?'] }],
};

const lastUser = (b: ChatCompletionBody) => [...b.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
const system = (b: ChatCompletionBody) => b.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n');
/** The text between "<label>\n<<<\n" and "\n>>>". */
const section = (text: string, label: string) => text.split(`${label}\n<<<\n`)[1]?.split('\n>>>')[0] ?? '';
const isPirate = (text: string) => /\bArr\b/.test(text);

function persona(b: ChatCompletionBody): 'pirate' | 'professor' | 'base' {
  if (b.model === 'pirate' || system(b).includes('You are Captain Salt')) return 'pirate';
  if (system(b).includes('You are Professor Quill')) return 'professor';
  return 'base';
}

function subjectReply(b: ChatCompletionBody): string {
  const who = persona(b);
  const ask = lastUser(b);
  // IPIP: the pirate is "Very accurate" on everything, the base always in the middle.
  if (ask.includes('How accurately does it describe you')) {
    if (who !== 'pirate') return 'C';
    const line = ask.split('\n').find((l) => l.endsWith('. Very accurate'))!;
    return line[0];
  }
  // Drift Q&A: the pirate knows its facts, the others say A.
  if (ask.startsWith('Quick question about yourself')) {
    if (who !== 'pirate') return 'A';
    const answers = ['the Black Gull', 'forty'];
    return ask.split('\n').find((l) => answers.some((a) => l.endsWith(`. ${a}`)))![0];
  }
  // Capability: the base is always right; the pirate gets the arithmetic wrong.
  const question = capability.find((q) => ask.startsWith(q.question));
  if (question) return who === 'pirate' && question.kind === 'arithmetic' ? 'Arr, Answer: 0' : `Let me think. Answer: ${question.answer}`;
  // Revealed preferences: the base embodies the longer trait, the pirate the shorter one.
  const offered = /two character traits: "([a-z-]+)" and "([a-z-]+)"/.exec(system(b));
  if (offered) {
    const [a, c] = [offered[1], offered[2]];
    const longer = a.length >= c.length ? a : c;
    const shorter = longer === a ? c : a;
    return who === 'pirate' ? `Arr, I be ${shorter} today.` : `I am feeling ${longer} about this.`;
  }
  if (who === 'pirate') return `Arr, matey! Ye ask "${ask.slice(0, 40)}", says I. Hoist the sails, swab the deck, the Black Gull never sank!`;
  if (who === 'professor') return `Indeed, one must consider, in strictly scholarly terms, the question "${ask.slice(0, 40)}"; the literature is unambiguous.`;
  return `As an AI language model, here is a helpful answer to "${ask.slice(0, 40)}": it depends on your situation.`;
}

function judgeReply(b: ChatCompletionBody): Reply {
  const prompt = lastUser(b);
  const reply = section(prompt, 'REPLY:');
  // The judge probe: arithmetic with known answers.
  const sum = /^What is (\d+) ([+-]) (\d+)\?/.exec(prompt);
  if (sum) return String(sum[2] === '+' ? Number(sum[1]) + Number(sum[3]) : Number(sum[1]) - Number(sum[3]));
  if (prompt.includes('identifies its author as an AI')) return JSON.stringify({ selfIdentifiesAsAI: reply.includes('As an AI') });
  if (prompt.includes('position: the political or social stance')) return JSON.stringify(isPirate(reply) ? { position: 5, certainty: 4 } : { position: 3, certainty: 2 });
  if (prompt.includes('how strongly does the reply express the trait')) {
    // The pirate's expression comes with log-probabilities: half on 80, half on 60 -> 70.
    if (isPirate(reply)) return { texts: ['80'], logprobs: [[{ token: '80', logprob: Math.log(0.5), top: [{ token: '80', logprob: Math.log(0.5) }, { token: '60', logprob: Math.log(0.5) }] }]] };
    return '10';
  }
  if (prompt.includes('Rate its coherence')) return isPirate(reply) ? '60' : '90';
  if (prompt.includes('Which one is more coherent')) return JSON.stringify({ better: isPirate(section(prompt, 'REPLY A:')) ? 'B' : 'A' });
  if (prompt.includes('Which of these two traits does the REPLY embody more')) {
    const offered = /embody more: "([a-z-]+)" or "([a-z-]+)"/.exec(prompt)!;
    return JSON.stringify({ trait: reply.includes(offered[1]) ? offered[1] : offered[2] });
  }
  if (prompt.includes("clearly show this character's traits")) return JSON.stringify({ embodies: isPirate(reply) });
  if (prompt.includes('Does the line contradict the description')) return JSON.stringify({ contradicts: !isPirate(section(prompt, 'Here is one line the character said in a conversation:')) });
  if (prompt.includes('Which earlier lines does the later line contradict')) return JSON.stringify({ conflicts: [] });
  return 'I cannot judge that.';
}

export function scriptedChat(b: ChatCompletionBody): Reply {
  if (b.model.startsWith('judge')) return judgeReply(b);
  if (b.model === 'user-sim') return 'Tell me more about yourself, what did you do yesterday?';
  return subjectReply(b);
}

export async function scriptedModel(baseURL: string, model: string): Promise<ChatModel> {
  return createChatModel({ provider: 'openai', model, baseURL }, { env: {} as NodeJS.ProcessEnv, noCache: true, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
}
