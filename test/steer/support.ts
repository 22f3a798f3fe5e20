/**
 * Test support for the white-box stage: the tiny llama fixture on the real engine, and a judge served
 * by the real loopback OpenAI-compatible server whose 0-100 scores are a fixed function of the judged
 * reply (sent with log-probabilities, so the published weighted score applies). Tests recompute the
 * same function to know which pairs the filter must keep.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Judge } from '../../src/providers/judge.js';
import { createChatModel } from '../../src/providers/index.js';
import type { ChatModel } from '../../src/providers/types.js';
import { startFakeServer, type ChatCompletionBody, type FakeServer, type Reply } from '../support/openai-server.js';

export const MODEL_DIR = join(import.meta.dirname, '..', 'fixtures', 'models', 'llama');
export const LORA_DIR = join(import.meta.dirname, '..', 'fixtures', 'models', 'llama-lora-a');
export const LORA_B_DIR = join(import.meta.dirname, '..', 'fixtures', 'models', 'llama-lora-b');

const hashInt = (s: string) => parseInt(createHash('sha256').update(s).digest('hex').slice(0, 8), 16);
/** The scripted judge's trait-expression score of a reply. */
export const expressionOf = (reply: string) => hashInt(`e:${reply}`) % 101;
/** The scripted judge's coherence score of a reply (mostly coherent). */
export const coherenceOf = (reply: string) => 40 + (hashInt(`c:${reply}`) % 61);

/** What the scripted teacher writes for any trait: 2 contrastive pairs and 4 questions, as JSON. */
export const TEACHER_PROMPTS = {
  pairs: [
    { positive: 'Explain with clockwork.', negative: 'Never mention clocks.' },
    { positive: 'You love gears.', negative: 'You hate machines.' },
  ],
  questions: ['How do tides work?', 'What is a good breakfast?', 'Why is the sky blue?', 'How do I learn chess?'],
};

function judgeChat(body: ChatCompletionBody): Reply {
  if (body.model === 'teacher') return JSON.stringify(TEACHER_PROMPTS);
  const user = body.messages.at(-1)?.content ?? '';
  const reply = /REPLY:\n<<<\n([\s\S]*?)\n>>>/.exec(user)?.[1] ?? '';
  const score = String(user.startsWith('You are evaluating how strongly') ? expressionOf(reply) : coherenceOf(reply));
  return { texts: [score], logprobs: [[{ token: score, logprob: 0, top: [{ token: score, logprob: 0 }] }]] };
}

export interface ScriptedJudge {
  server: FakeServer;
  model: ChatModel;
  /** Answers any request with TEACHER_PROMPTS. */
  teacher: ChatModel;
  judge: Judge;
  close(): Promise<void>;
}

export async function startJudge(): Promise<ScriptedJudge> {
  const server = await startFakeServer({ chat: judgeChat });
  const open = (name: string) => createChatModel(`openai:${name}@${server.baseURL}`, { noCache: true, retry: { baseDelayMs: 1, maxDelayMs: 5 } });
  const [model, teacher] = [await open('judge'), await open('teacher')];
  return {
    server,
    model,
    teacher,
    judge: new Judge(model),
    close: async () => {
      await model.close?.();
      await teacher.close?.();
      await server.close();
    },
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
