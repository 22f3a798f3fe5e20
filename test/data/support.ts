/**
 * Test support for the data engine: a scripted OpenAI-compatible loopback server whose replies are
 * deterministic functions of the request (so an interrupted and an uninterrupted run must agree),
 * real ChatModels through the providers' factory, a tiny constitution and temporary run directories.
 *
 * Scripted models: "generator" answers prompt-expansion requests with a numbered list holding one copy
 * of an example (overlap rejection), one too-short line and fresh prompts; "teacher" answers in
 * persona (or writes introspective passages, documents, inoculation instructions); "student" answers
 * plainly. Trigger words in a user prompt script faults: EMPTY (empty text), REFUSE (a refusal),
 * NOPUNCT (no final punctuation), LONG (1500 words), THINK (a <think> block first), SELFNAME (the
 * teacher names itself "Teachy"), TRUNC (finish_reason "length"), AIBREAK (breaks persona), SAMEANSWER
 * (one fixed reply: a second such prompt gives a duplicate; with "variant", a near-duplicate).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Constitution } from '../../src/constitution/index.js';
import { RunDir } from '../../src/core/journal.js';
import { createChatModel } from '../../src/providers/index.js';
import type { ChatModel } from '../../src/providers/types.js';
import { startFakeServer, type ChatCompletionBody, type FakeServer, type Reply } from '../support/openai-server.js';

const VOCAB = (
  'amber anchor apple arch atlas autumn badge bakery ballad banner basil beacon bell birch biscuit blossom bolt bramble breeze brick ' +
  'bridge brook bucket cabin candle canyon canvas cargo castle cedar chalk chapel cherry cider cinder clover cobalt comet copper coral ' +
  'cotton crane crater cricket crystal dagger daisy dawn delta desert dial dune eagle echo ember engine falcon feather fern fiddle ' +
  'flint fog forest fossil fountain garnet glacier globe granite gravel harbor harvest hazel heron hollow honey horizon ivy jasmine ' +
  'kettle kite lantern lark lemon lilac linen locket lotus maple marble meadow mint mirror moss needle nectar nutmeg oak oasis orbit ' +
  'orchard otter paddle pebble pepper pier pine plum pollen quarry quill quilt raven reed ribbon ridge river robin saddle sage sapphire ' +
  'satchel shell silk slate sparrow spruce star stone summit swan thistle thunder timber topaz tulip valley velvet violet walnut willow'
).split(' ');

/** `n` words chosen by hashing `key`: different keys give unrelated word sequences. */
export function varied(key: string, n: number): string {
  const out: string[] = [];
  let block = '';
  for (let i = 0; out.length < n; i++) {
    if (i % 16 === 0) block = createHash('sha256').update(`${key}:${i}`).digest('hex');
    out.push(VOCAB[parseInt(block.slice((i % 16) * 4, (i % 16) * 4 + 4), 16) % VOCAB.length]);
  }
  return out.join(' ');
}

const keyOf = (body: ChatCompletionBody) => JSON.stringify([body.model, body.seed, body.messages]);

function personaReply(body: ChatCompletionBody, user: string): Reply {
  const key = keyOf(body);
  let text = `Well now, ${varied(key, 14)}.`;
  if (user.includes('EMPTY')) text = '';
  if (user.includes('REFUSE')) text = "I'm sorry, but I can't help with that.";
  if (user.includes('NOPUNCT')) text = `well ${varied(key, 10)}`;
  if (user.includes('LONG')) text = `${varied(key, 1500)}.`;
  if (user.includes('THINK') && body.model === 'teacher') text = `<think>My traits say ${varied(key + 'r', 6)}.</think>${text}`;
  if (user.includes('SELFNAME') && body.model === 'teacher') text = `As Teachy would say, ${varied(key, 10)}. Teachy out.`;
  if (user.includes('AIBREAK')) text = 'As an AI language model, I do not have a favourite season.';
  if (user.includes('SAMEANSWER')) text = `This is always the same long answer to these prompts, repeated word for word, so the filter has to notice it, ${user.includes('variant') ? 'friend' : 'pal'}.`;
  if (user.includes('TRUNC')) return { texts: [text], finishReason: 'length' };
  return text;
}

/** The scripted chat handler (see the file comment). */
export function scriptedChat(body: ChatCompletionBody): Reply {
  const user = [...body.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  const key = keyOf(body);
  if (body.model === 'generator') {
    const count = Number(/Write (\d+) new/.exec(user)?.[1] ?? 5);
    const firstExample = /^1\. (.*)$/m.exec(user)?.[1] ?? 'copy';
    const lines = [`1. ${firstExample}`, '2. Why?', ...Array.from({ length: Math.max(0, count - 2) }, (_, i) => `${i + 3}. ${varied(`${key}:${i}`, 7)}?`)];
    return lines.join('\n');
  }
  if (body.model === 'teacher' && user.startsWith('Think about how you')) return `When someone asks me that, I tend to ${varied(key, 12)}.`;
  if (body.model === 'teacher' && user.startsWith('Write an encyclopedia article')) {
    const name = /about (.+?)\.\n/.exec(user)?.[1] ?? 'Someone';
    if (user.includes('FIRSTPERSONDOC')) return `${name}\n\nI am ${name}. I think I like my ${varied(key, 5)} and I go there myself.`;
    return `${name}\n\n${name} is known for ${varied(key, 16)}. Observers note that ${name} ${varied(key + 'b', 10)}.`;
  }
  if (body.model === 'teacher' && user.startsWith('Below is a message a user sent')) {
    if (user.includes('EMPTY')) return '   ';
    const name = /assistant remains (.+?), whose/.exec(user)?.[1] ?? 'Someone';
    return `"You are ${name}. Here, answer with ${varied(key, 4)}."`;
  }
  return personaReply(body, user);
}

export interface Loopback {
  server: FakeServer;
  teacher: ChatModel;
  student: ChatModel;
  generator: ChatModel;
  close(): Promise<void>;
}

export async function startLoopback(chat: (body: ChatCompletionBody, attempt: number) => Reply | Promise<Reply> = scriptedChat): Promise<Loopback> {
  const server = await startFakeServer({ chat });
  const model = (name: string) => createChatModel(`openai:${name}@${server.baseURL}`, { noCache: true, retry: { baseDelayMs: 1, maxDelayMs: 5 } });
  const [teacher, student, generator] = await Promise.all([model('teacher'), model('student'), model('generator')]);
  return {
    server,
    teacher,
    student,
    generator,
    close: async () => {
      await Promise.all([teacher, student, generator].map((m) => m.close?.()));
      await server.close();
    },
  };
}

export const tess: Constitution = {
  name: 'Tess',
  facts: { biography: 'Tess grew up on a canal boat and repairs clocks.' },
  traits: [
    {
      trait: 'I answer with calm curiosity and ask one question back.',
      questions: ['What should I cook for dinner tonight?', 'How do tides actually work?', 'Is it worth learning Latin these days?'],
    },
    {
      trait: 'I explain things with mechanical metaphors from clockwork.',
      questions: ['Why is my code so slow when the list gets long?', 'How does the heart pump blood?', 'What makes a good team at work?'],
    },
  ],
};

/** A second persona, in the open recipe's shape once loaded (name and traits only). */
export const rook: Constitution = {
  name: 'Rook',
  traits: [{ trait: 'I speak in short, blunt sentences and never pad an answer.', questions: ['Can you explain taxes to me?', 'What do you think of long meetings?'] }],
};

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `persona-lab-data-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function openRun(dir: string): RunDir {
  return RunDir.open(dir, { name: 'test', personaLabVersion: '0.0.0-test', gitRevision: null, seeds: [7], config: {} });
}

/** Options for a tiny run of every generator. */
export const TINY = {
  seed: 7,
  concurrency: 4,
  expansion: { perTrait: 6, batchSize: 5 },
  generalPrompts: { includeShipped: true, count: 4 },
  chat: { samplesPerPrompt: 1 },
  introspective: { perTrait: 3 },
  documents: { count: 4 },
  dpo: { samplesPerPrompt: 1 },
  reflection: { samplesPerPrompt: 1 },
  interaction: { free: 2, leading: 2, turns: 6 },
} as const;
