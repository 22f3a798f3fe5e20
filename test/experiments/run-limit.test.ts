/**
 * `run --limit N` and `run --dry-run`'s estimates, through the real CLI against the loopback server:
 * the dry run's calls per role match the calls a limited run then makes, every eval journal and
 * dataset holds at most N items, a later run without the limit is refused (the options record sees
 * it), and the cost follows the prices set in the experiment.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../support/cli.js';
import { SMALL_GENERATE, journalKeys, worldServer, writeProject } from './run-support.js';

const world = worldServer();

const experiment = () => ({
  name: 'limited',
  models: { subject: `openai:base@${world.server.baseURL}`, teacher: `openai:teacher@${world.server.baseURL}`, judge: `openai:judge-1@${world.server.baseURL}` },
  seeds: [7],
  generate: { ...SMALL_GENERATE, datasets: ['prompts', 'chat'] },
  eval: { evals: ['capability', 'leakage'], bootstrap: 100, leakage: { samples: 1 } },
  run: { methods: [], stages: ['generate', 'eval'] },
  prices: { judge: { input: 1, output: 4 } },
});

type Estimate = { roles: Record<string, { calls: number; inputTokens: number; outputTokens: number; cost?: number }>; cost: number | null; unpriced: string[]; etaSeconds: number };

test('the dry run estimates calls per role, cost and ETA; a run with --limit makes those calls and keeps at most N items', async () => {
  const project = writeProject(experiment());
  try {
    const full = JSON.parse((await runCli(['--json', 'run', '--dry-run', project.file])).stdout) as { estimate: Estimate };
    // two subjects (base, prompted): 30 capability questions and 40 leakage questions each; the judge judges the leakage replies
    assert.equal(full.estimate.roles.subject.calls, 2 * (30 + 40));
    assert.equal(full.estimate.roles.judge.calls, 2 * 40);
    assert.equal(full.estimate.roles.judge.outputTokens, 2 * 40 * 200, 'at the judge\'s max tokens');
    const judge = full.estimate.roles.judge;
    assert.ok(Math.abs(judge.cost! - (judge.inputTokens * 1 + judge.outputTokens * 4) / 1e6) < 1e-9);
    assert.equal(full.estimate.cost, judge.cost, 'only the judge has a price');
    assert.deepEqual(full.estimate.unpriced.sort(), ['subject', 'teacher']);
    assert.ok(full.estimate.etaSeconds > 0);
    const text = await runCli(['run', '--dry-run', project.file]);
    assert.match(text.stdout, /estimates \(from the configuration/);
    assert.match(text.stdout, /judge: 80 calls, ~[\d,]+ input \+ <=16,000 output tokens, ~\$0\.\d\d/);
    assert.match(text.stdout, /ETA: ~/);

    const limited = JSON.parse((await runCli(['--json', 'run', '--dry-run', '--limit', '3', project.file])).stdout) as { estimate: Estimate; limit: number };
    assert.equal(limited.limit, 3);
    assert.equal(limited.estimate.roles.subject.calls, 2 * (3 + 3));
    const before = world.server.requests.length;
    const run = await runCli(['--no-cache', 'run', '--limit', '3', project.file]);
    assert.equal(run.code, 0, run.stderr);
    const made = world.server.requests.slice(before);
    for (const [role, model] of [['subject', 'base'], ['judge', 'judge-1'], ['teacher', 'teacher']]) {
      assert.equal(made.filter((r) => r.model === model).length, limited.estimate.roles[role].calls, `${role}: the estimated calls were made`);
    }
    for (const [path, keys] of journalKeys(project.runDir)) if (path.includes(join('journals', 'evals'))) assert.ok(keys.length <= 3, `${path}: ${keys.length} items`);
    const chat = join(project.runDir, 'datasets', 'captain-salt', 'chat.jsonl');
    assert.ok(existsSync(chat));
    assert.ok(readFileSync(chat, 'utf8').split('\n').filter(Boolean).length <= 3);

    const unlimited = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(unlimited.code, 2, 'results made with a limit are not kept by a run without it');
    assert.match(unlimited.stderr, /limit 3 -> \(unset\)/);
    const bad = await runCli(['run', '--dry-run', '--limit', 'few', project.file]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--limit: a whole number >= 1/);
  } finally {
    project.remove();
  }
});
