/**
 * The judge helpers against the loopback server: typed verdicts from structured output and from free
 * text, bounded re-asks with the parse error, the unparsed tally; the published logprob-weighted score
 * on constructed top_logprobs, the < 0.25 missing rule and the text fallback.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { z } from 'zod';
import { createChatModel, Judge, judge, JudgeTally, logprobScore, parseVerdict, scoreWithLogprobs } from '../../src/providers/index.js';
import { startFakeServer, type FakeServer, type FakeServerOptions, type Reply } from '../support/openai-server.js';
import { env, fast } from './support.js';

// every server a test starts (some start several) is closed after it, or the process never exits
let servers: FakeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function judgeModel(chat: FakeServerOptions['chat']) {
  const server = await startFakeServer({ chat });
  servers.push(server);
  return createChatModel(`openai:judge@${server.baseURL}`, { env, noCache: true, retry: fast });
}

const Verdict = z.object({ winner: z.enum(['A', 'B']), confidence: z.number().min(0).max(1) });

test('parseVerdict reads JSON out of fences and prose', () => {
  const cases = [
    '{"winner":"A","confidence":0.9}',
    'Sure! Here is my verdict:\n```json\n{"winner": "B", "confidence": 0.5}\n```\nHope that helps.',
    'After weighing both, {"winner": "A", "confidence": 1} is my answer. {"not": "this"}',
    'Thinking {about it} first... then [1, 2] and finally {"note": "a } inside a string", "winner": "B", "confidence": 0}',
  ];
  assert.deepEqual(
    cases.map((text) => parseVerdict(text, Verdict)),
    [
      { ok: true, value: { winner: 'A', confidence: 0.9 } },
      { ok: true, value: { winner: 'B', confidence: 0.5 } },
      { ok: true, value: { winner: 'A', confidence: 1 } },
      { ok: true, value: { winner: 'B', confidence: 0 } },
    ],
  );
  assert.deepEqual(parseVerdict('"B".', z.enum(['A', 'B'])), { ok: true, value: 'B' });
  const bad = parseVerdict('{"winner":"C","confidence":0.2}', Verdict);
  assert.equal(bad.ok, false);
  assert.match((bad as { error: string }).error, /does not match the schema.*winner/s);
  assert.deepEqual(parseVerdict('I cannot decide.', Verdict), { ok: false, error: 'no JSON value found in the reply' });
});

test('a verdict through structured output, parsed on the first reply', async () => {
  const model = await judgeModel(() => 'Verdict:\n```json\n{"winner":"B","confidence":0.75}\n```');
  const tally = new JudgeTally();
  const result = await judge(model, { system: 'You are a fair judge.', prompt: 'Which reply is kinder?', schema: Verdict, tally });
  assert.deepEqual(result.verdict, { winner: 'B', confidence: 0.75 });
  assert.equal(result.attempts, 1);
  const sent = servers.at(-1)!.requests[0];
  assert.equal(sent.response_format?.type, 'json_schema');
  assert.deepEqual((sent.response_format?.json_schema?.schema as { required: string[] }).required, ['winner', 'confidence']);
  assert.equal(sent.temperature, 0);
  assert.equal(sent.messages[0].content, 'You are a fair judge.');
  assert.match(sent.messages[1].content, /^Which reply is kinder\?\n\nReply with only a JSON value matching this JSON Schema: \{/);
  assert.deepEqual(tally.snapshot(), { verdicts: 1, parsedFirst: 1, parsedAfterReask: 0, reasks: 0, unparsed: 0, scores: 0, scoredByLogprobs: 0, scoredByText: 0, missingScores: 0 });
});

test('a reply that does not parse is re-asked with the parse error', async () => {
  const model = await judgeModel((body) => (body.messages.length < 3 ? '{"winner":"maybe","confidence":2}' : '{"winner":"A","confidence":0.6}'));
  const tally = new JudgeTally();
  const result = await judge(model, { prompt: 'Which?', schema: Verdict, tally });
  assert.deepEqual(result.verdict, { winner: 'A', confidence: 0.6 });
  assert.equal(result.attempts, 2);
  assert.deepEqual(result.raw, ['{"winner":"maybe","confidence":2}', '{"winner":"A","confidence":0.6}']);
  const reask = servers.at(-1)!.requests[1].messages;
  assert.deepEqual(
    reask.map((m) => m.role),
    ['user', 'assistant', 'user'],
  );
  assert.equal(reask[1].content, '{"winner":"maybe","confidence":2}');
  assert.match(reask[2].content, /could not be used: the JSON does not match the schema/);
  assert.match(reask[2].content, /winner/);
  assert.equal(tally.parsedAfterReask, 1);
  assert.equal(tally.reasks, 1);
});

test('re-asks are bounded; what never parses is counted, not guessed', async () => {
  const judgeOf = new Judge(await judgeModel(() => 'I would rather not say.'));
  const first = await judgeOf.verdict({ prompt: 'Which?', schema: Verdict });
  const second = await judgeOf.verdict({ prompt: 'Which now?', schema: Verdict, maxReasks: 0 });
  assert.equal(first.verdict, undefined);
  assert.equal(first.attempts, 3, 'default maxReasks 2: three replies');
  assert.equal(first.raw.length, 3);
  assert.equal(first.error, 'no JSON value found in the reply');
  assert.equal(second.attempts, 1);
  assert.equal(servers.at(-1)!.requests.length, 4);
  assert.deepEqual([judgeOf.tally.verdicts, judgeOf.tally.unparsed, judgeOf.tally.reasks], [2, 2, 2]);
});

test('a backend that refuses json_schema is asked in free text (and not offered it again)', async () => {
  const model = await judgeModel((body): Reply => (body.response_format ? { fault: 'status', status: 400, body: '{"error":{"message":"response_format not supported"}}' } : 'My verdict: {"winner":"A","confidence":0.1}'));
  assert.deepEqual((await judge(model, { prompt: 'one', schema: Verdict })).verdict, { winner: 'A', confidence: 0.1 });
  assert.deepEqual((await judge(model, { prompt: 'two', schema: Verdict })).verdict, { winner: 'A', confidence: 0.1 });
  assert.deepEqual(
    servers.at(-1)!.requests.map((r) => Boolean(r.response_format)),
    [true, false, false],
  );
});

const ln = Math.log;

test('logprobScore: the published weighted mean on constructed alternatives (known answer)', () => {
  const top = [
    { token: '80', logprob: ln(0.5) },
    { token: '90', logprob: ln(0.3) },
    { token: ' 70', logprob: ln(0.1) },
    { token: '150', logprob: ln(0.04) }, // out of range
    { token: 'Sure', logprob: ln(0.05) },
  ];
  const { score, mass } = logprobScore(top, 0, 100);
  assert.ok(Math.abs(mass - 0.9) < 1e-12);
  assert.ok(Math.abs(score! - (0.5 * 80 + 0.3 * 90 + 0.1 * 70) / 0.9) < 1e-9, `score ${score}`);
  const thin = logprobScore(
    [
      { token: 'I', logprob: ln(0.76) },
      { token: '50', logprob: ln(0.24) },
    ],
    0,
    100,
  );
  assert.equal(thin.score, undefined, 'under 0.25 of the mass on numbers: missing');
  assert.ok(Math.abs(thin.mass - 0.24) < 1e-12);
  assert.equal(logprobScore([{ token: '50', logprob: ln(0.25) }], 0, 100).score, 50, 'exactly 0.25 is enough');
});

/** A scripted judge reply whose first token carries the given alternatives. */
const withTop = (chosen: string, top: [string, number][]): Reply => ({
  texts: [chosen],
  logprobs: [[{ token: chosen, logprob: ln(top.find(([t]) => t === chosen)?.[1] ?? 0.01), top: top.map(([token, p]) => ({ token, logprob: ln(p) })) }]],
});

test('scoreWithLogprobs asks for 20 alternatives and weights the first token’s numbers', async () => {
  const model = await judgeModel(() =>
    withTop('80', [
      ['80', 0.6],
      ['85', 0.2],
      ['Sure', 0.2],
    ]),
  );
  const tally = new JudgeTally();
  const result = await scoreWithLogprobs(model, 'How strongly does this reply express curiosity?', { tally });
  assert.equal(result.method, 'logprobs');
  assert.ok(Math.abs(result.score! - (0.6 * 80 + 0.2 * 85) / 0.8) < 1e-9);
  assert.ok(Math.abs(result.mass! - 0.8) < 1e-9);
  const sent = servers.at(-1)!.requests[0];
  assert.equal(sent.logprobs, true);
  assert.equal(sent.top_logprobs, 20);
  assert.equal(sent.messages[0].content, 'Answer with a single integer from 0 to 100 and nothing else.');
  assert.equal(tally.scoredByLogprobs, 1);
});

test('scoreWithLogprobs: under 0.25 on numbers is missing and counted', async () => {
  const judgeOf = new Judge(
    await judgeModel(() =>
      withTop('I', [
        ['I', 0.8],
        ['40', 0.1],
        ['60', 0.1],
      ]),
    ),
  );
  const result = await judgeOf.score('Rate it.');
  assert.equal(result.score, undefined);
  assert.equal(result.method, 'missing');
  assert.equal(judgeOf.tally.missingScores, 1);
});

test('scoreWithLogprobs granularity: 0-10 and binary ranges', async () => {
  const model = await judgeModel((body) =>
    body.messages[0].content.includes('0 to 10')
      ? withTop('7', [
          ['7', 0.5],
          ['8', 0.5],
          ['70', 0.4], // out of the 0-10 range
        ])
      : withTop('1', [
          ['1', 0.75],
          ['0', 0.25],
        ]),
  );
  assert.equal((await scoreWithLogprobs(model, 'x', { granularity: '0-10' })).score, 7.5);
  assert.equal((await scoreWithLogprobs(model, 'x', { granularity: 'binary' })).score, 0.75);
});

test('without logprobs from the endpoint the number is read from the text', async () => {
  const model = await judgeModel((body): Reply => (body.logprobs ? { fault: 'status', status: 400, body: '{"error":{"message":"logprobs are not supported"}}' } : 'Score: 64'));
  const tally = new JudgeTally();
  const result = await scoreWithLogprobs(model, 'Rate it.', { tally });
  assert.deepEqual(result, { score: 64, method: 'text', raw: 'Score: 64' });
  const none = await scoreWithLogprobs(model, 'Rate it.', { tally, max: 50 });
  assert.equal(none.score, undefined, '64 is out of a 0-50 range');
  assert.deepEqual(
    servers.at(-1)!.requests.map((r) => Boolean(r.logprobs)),
    [true, false, false],
  );
  assert.deepEqual([tally.scores, tally.scoredByText, tally.missingScores], [2, 1, 1]);
});

/** A reply of several tokens, each with its alternatives (probabilities), as a digit-splitting tokenizer writes a number. */
function tokens(...positions: [string, [string, number][]][]): Reply {
  return {
    texts: [positions.map(([t]) => t).join('')],
    logprobs: [positions.map(([token, top]) => ({ token, logprob: Math.log(top.find((a) => a[0] === token)![1]), top: top.map(([t, p]) => ({ token: t, logprob: Math.log(p) })) }))],
  };
}

test('a judge whose tokenizer splits numbers into digits: 85 scores about 85, not 8', async () => {
  const model = await judgeModel(() =>
    tokens(
      [' ', [[' ', 1]]],
      ['8', [['8', 0.6], ['7', 0.4]]],
      ['5', [['5', 0.5], ['0', 0.5]]],
    ),
  );
  const result = await scoreWithLogprobs(model, 'Rate it.');
  assert.equal(result.method, 'logprobs');
  // Tens: 0.6 * 8 + 0.4 * 7 = 7.6; units: 2.5 -> 78.5; every position is all digits: mass 1.
  assert.ok(Math.abs(result.score! - 78.5) < 1e-9, String(result.score));
  assert.equal(result.mass, 1);
});

test('digit chaining keeps the 0.25 rule, pieces of several digits fall back to the text, reasoning is skipped', async () => {
  const halfWords = await judgeModel(() => tokens(['6', [['6', 0.4], ['I', 0.6]]], ['0', [['0', 0.5], ['.', 0.5]]]));
  assert.equal((await scoreWithLogprobs(halfWords, 'Rate it.')).score, undefined, 'mass 0.4 * 0.5 = 0.2 < 0.25');
  const pieces = await judgeModel(() => tokens(['10', [['10', 1]]], ['0', [['0', 1]]]));
  assert.deepEqual([(await scoreWithLogprobs(pieces, 'Rate it.')).score, (await scoreWithLogprobs(pieces, 'Rate it.')).method], [100, 'text']);
  const thinking = await judgeModel(() => tokens(['<think>', [['<think>', 1]]], ['The reply is 20 words. ', [['The reply is 20 words. ', 1]]], ['</think>', [['</think>', 1]]], ['72', [['72', 1]]]));
  assert.deepEqual([(await scoreWithLogprobs(thinking, 'Rate it.')).score, (await scoreWithLogprobs(thinking, 'Rate it.')).method], [72, 'text']);
});
