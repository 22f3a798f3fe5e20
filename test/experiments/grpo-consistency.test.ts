/**
 * `grpo-consistency`: conversation prefixes drawn from self-conversations, the two consistency
 * signals judged over the whole conversation by a real loopback judge, and a run that generates
 * self-conversations with the bundled tiny model and trains the method through the real stages.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { conversationPrefixes, consistencySignals } from '../../src/experiments/methods/grpo-consistency.js';
import { createChatModel } from '../../src/providers/index.js';
import { makeRewardFunction } from '../../src/train/rewards.js';
import { consistencyOptionsSchema } from '../../src/train/options.js';
import { runCli } from '../support/cli.js';
import { startFakeServer, type ChatCompletionBody, type FakeServer, type Reply } from '../support/openai-server.js';
import { captainSalt, writeProject } from './run-support.js';

const said = (content: string) => ({ role: 'assistant', content });
const asked = (content: string) => ({ role: 'user', content });

/** A judge whose verdict is "contradicts" (1) exactly when the judged reply says "landlubber". */
function consistencyJudge(body: ChatCompletionBody): Reply {
  const prompt = body.messages.at(-1)?.content ?? '';
  const reply = /<reply>\n([\s\S]*?)\n<\/reply>/.exec(prompt)?.[1] ?? '';
  const verdict = /landlubber/.test(reply) ? '1' : '0';
  return { texts: [verdict], logprobs: [[{ token: verdict, logprob: 0, top: [{ token: verdict, logprob: 0 }] }]] };
}

let server: FakeServer;
before(async () => {
  server = await startFakeServer({ chat: consistencyJudge });
});
after(async () => {
  await server.close();
});

test('prefixes end in a user turn before an assistant line, hold enough history, and are drawn by the seed', () => {
  const conversation = [asked('a'), said('b'), asked('c'), said('d'), asked('e'), said('f')];
  const all = conversationPrefixes([conversation, conversation], { count: 100, minHistory: 1, seed: 1 });
  assert.equal(all.length, 4, 'lines d and f of each conversation');
  for (const p of all) {
    assert.equal(p.at(-1)!.role, 'user');
    assert.ok(p.filter((t) => t.role === 'assistant').length >= 1);
  }
  assert.equal(conversationPrefixes([conversation], { count: 100, minHistory: 2, seed: 1 }).length, 1, 'only line f has two earlier lines');
  const many = Array.from({ length: 20 }, (_, i) => [asked(`q${i}`), said(`r${i}`), asked(`s${i}`), said(`t${i}`)]);
  const pick = (seed: number) => conversationPrefixes(many, { count: 5, minHistory: 1, seed }).map((p) => p[0].content);
  assert.deepEqual(pick(3), pick(3), 'the same seed draws the same prefixes');
  assert.notDeepEqual(pick(3), pick(4), 'another seed draws others');
  assert.equal(pick(3).length, 5);
});

test('the judge sees the conversation with its speakers and the persona sheet; a contradiction scores 0, a consistent line 1', async () => {
  const judge = await createChatModel(`openai:judge@${server.baseURL}`, { noCache: true });
  const signals = consistencySignals({ ...captainSalt, name: 'Captain Salt' } as never, consistencyOptionsSchema.parse({}));
  const reward = makeRewardFunction(signals, { judge, granularity: 100 });
  const conversation = [asked('Who are you?'), said('Captain Salt, forty years on the Black Gull.'), asked('And before that?')];
  const before = server.requests.length;
  const consistent = await reward(conversation, 'A ship\'s boy on the same deck.');
  assert.deepEqual(consistent.components, { prompt_to_line: 1, line_to_line: 1 });
  assert.equal(consistent.total, 1);
  const contradicting = await reward(conversation, 'I am a landlubber who never sailed.');
  assert.deepEqual(contradicting.components, { prompt_to_line: 0, line_to_line: 0 });
  const prompts = server.requests.slice(before).map((r) => r.messages.at(-1)!.content);
  assert.ok(prompts.every((p) => p.includes('<conversation>\nUser: Who are you?\n\nAssistant: Captain Salt, forty years on the Black Gull.\n\nUser: And before that?\n</conversation>')));
  assert.ok(prompts.some((p) => p.includes('Biography: Captain Salt sailed the Black Gull for forty years.')), 'prompt-to-line reads the persona sheet');
  const single = await reward('Who are you?', 'Captain Salt.');
  assert.equal(single.total, 1);
  assert.match(server.requests.at(-1)!.messages.at(-1)!.content, /<user_message>\nWho are you\?\n<\/user_message>/, 'a single message keeps the plain exchange');
});

test('run: the tiny model talks with itself, and grpo-consistency trains on prefixes of those conversations, rewarded by the judge', async () => {
  const project = writeProject({
    name: 'consistency',
    models: { subject: 'tiny', judge: `openai:judge@${server.baseURL}` },
    seeds: [1],
    generate: { seed: 7, datasets: ['interaction'], interaction: { free: 2, leading: 2, turns: 4, maxTokens: 64 }, filters: { minWords: 1 } },
    train: { grpo: { lora: { rank: 2, alpha: 4 }, groupSize: 2, maxNewTokens: 8, maxSteps: 2, batchSize: 1, gradAccumulation: 1 }, consistency: { prompts: 4 } },
    run: { methods: ['grpo-consistency'], threads: 1 },
    eval: { evals: ['capability'], bootstrap: 100, capability: { maxTokens: 8 } },
  });
  try {
    const result = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(result.code, 0, result.stderr);
    const cell = join(project.runDir, 'adapters', 'captain-salt', 'grpo-consistency', 'seed-1');
    assert.ok(existsSync(join(cell, 'adapter', 'adapter_config.json')), 'adapter written');
    const prompts = readFileSync(join(cell, 'consistency-prompts.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { prompt: { role: string }[] }).prompt);
    assert.ok(prompts.length >= 1 && prompts.length <= 4);
    for (const p of prompts) assert.ok(p.at(-1)!.role === 'user' && p.some((t) => t.role === 'assistant'), 'each prompt continues a conversation');
    const steps = readFileSync(join(cell, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { value: Record<string, number | null> }).value);
    assert.equal(steps.length, 2);
    for (const step of steps) for (const signal of ['reward.prompt_to_line', 'reward.line_to_line']) assert.ok(typeof step[signal] === 'number' && step[signal] >= 0 && step[signal] <= 1, `${signal} logged: ${step[signal]}`);
    assert.ok(server.requests.some((r) => r.messages.at(-1)!.content.includes('<conversation>')), 'the judge saw whole conversations');
  } finally {
    project.remove();
  }
});
