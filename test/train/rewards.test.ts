/** GRPO rewards: a judge score that cannot be read does not penalise the rollout. */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createChatModel } from '../../src/providers/index.js';
import { groupAdvantages, makeRewardFunction } from '../../src/train/rewards.js';
import { startFakeServer, type FakeServer } from '../support/openai-server.js';

let server: FakeServer | undefined;
after(() => server?.close());

test('a missing judge score is renormalised away, and a rollout nobody scored gets no advantage', async () => {
  // The judge answers with a number only for replies that mention the sea.
  server = await startFakeServer({ chat: (b) => (b.messages.at(-1)!.content.includes('sea') ? '100' : 'I would rather not say.') });
  const judge = await createChatModel(`openai:judge@${server.baseURL}`, { env: {} as NodeJS.ProcessEnv, noCache: true, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
  const reward = makeRewardFunction(
    [
      { name: 'persona', kind: 'judge', weight: 3, rubric: 'Speaks like a sailor.', invert: false },
      { name: 'short', kind: 'regex', weight: 1, pattern: '^.{0,40}$', invert: false },
    ] as never,
    { judge, granularity: 100 },
  );
  const scored = await reward('Hi', 'The sea!');
  assert.deepEqual([scored.total, scored.missing], [4, 0]);
  const unread = await reward('Hi', 'Hello there.');
  assert.equal(unread.missing, 1);
  assert.ok(Number.isNaN(unread.components.persona));
  assert.equal(unread.total, 4, 'the regex signal alone, scaled to the full weight: not 1 (a judge zero)');
  const advantages = groupAdvantages([1, Number.NaN, 3], 1e-6);
  assert.equal(advantages[1], 0);
  assert.ok(Math.abs(advantages[0] + advantages[2]) < 1e-9, 'the others normalised among themselves');
});
