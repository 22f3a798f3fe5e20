/**
 * The GRPO `persona` classifier reward through the real train stage: `persona-lab train` on the fixture
 * model builds the persona classifier from the teacher's prompted replies (journaled once per run), and
 * every rollout's `persona` reward is that classifier's probability of the cell's persona, as a
 * classifier fitted here on the journaled replies computes it. The cell's options hash names the
 * classifier's settings: changing eval.classifier.repliesPerPersona is refused as a changed cell.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { PersonaClassifier, TfidfFeaturizer } from '../../src/evals/classifier.js';
import { runCli } from '../support/cli.js';
import { SMALL_GENERATE, snapshot, worldServer, writeProject } from './run-support.js';

const world = worldServer();

const lines = <T>(file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { key: string; value: T });

test('a GRPO persona classifier reward is built from the YAML and rewards the probability of the cell\'s persona', async () => {
  const project = writeProject({
    name: 'grpo-persona',
    models: { subject: `local:${resolve('test/fixtures/models/llama')}`, teacher: `openai:teacher@${world.server.baseURL}` },
    seeds: [1],
    generate: { ...SMALL_GENERATE, datasets: ['prompts', 'probes'], probes: { heldOutFraction: 0.05 }, filters: { minWords: 0 } },
    train: { grpo: { lora: { rank: 2, alpha: 4, targets: ['q', 'v'] }, maxSteps: 1, batchSize: 1, gradAccumulation: 1, maxLength: 64, groupSize: 2, maxNewTokens: 6, rewards: [{ name: 'persona', weight: 1, kind: 'classifier', classifier: 'persona' }] } },
    run: { stages: ['generate', 'train'], methods: ['grpo'], threads: 1 },
    eval: { classifier: { repliesPerPersona: 6, epochs: 40 } },
  });
  try {
    const result = await runCli(['--no-cache', 'run', project.file]);
    assert.equal(result.code, 0, result.stderr);

    const training = lines<{ label: string; prompt: string; reply: string }>(join(project.runDir, 'journals', 'train', 'persona-reward.jsonl'));
    assert.equal(training.length, 12, '6 replies for Captain Salt and 6 for the assistant');
    // Fitted as the reward fits it: classes in order (the constitutions, then the assistant), replies by index.
    const rank = (key: string) => (key.startsWith('assistant/') ? 1000 : 0) + Number(/\/(\d+)-/.exec(key)![1]);
    const ordered = [...training].sort((a, b) => rank(a.key) - rank(b.key)).map((l) => l.value);
    const classifier = new PersonaClassifier(new TfidfFeaturizer(), { l2: 1e-4, epochs: 40 });
    await classifier.fit(ordered.map((r) => r.reply), ordered.map((r) => r.label));

    const samples = lines<{ reply: string; reward: number; components: Record<string, number> }>(join(project.runDir, 'adapters', 'captain-salt', 'grpo', 'seed-1', 'grpo-samples.jsonl'));
    assert.equal(samples.length, 2, 'one group of two rollouts');
    const expected = await classifier.probabilities(samples.map((s) => s.value.reply));
    samples.forEach((s, i) => {
      assert.ok(Math.abs(s.value.components.persona - expected[i]['Captain Salt']) < 1e-6, `rollout ${i}: ${s.value.components.persona} vs ${expected[i]['Captain Salt']}`);
      assert.ok(Math.abs(s.value.reward - s.value.components.persona) < 1e-9, 'the only signal is the reward');
    });

    // The classifier's settings are part of what trained the cell.
    const e = parse(readFileSync(project.file, 'utf8')) as Record<string, any>;
    e.eval.classifier.repliesPerPersona = 8;
    writeFileSync(project.file, stringify(e));
    const before = snapshot(project.runDir);
    const refused = await runCli(['--no-cache', 'train', project.file]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /rewardClassifiers\.persona\.eval\.classifier\.repliesPerPersona: .*\(rewardClassifiers\.persona\.eval\.classifier\.repliesPerPersona 6 -> 8\)/);
    assert.equal(snapshot(project.runDir), before);
  } finally {
    project.remove();
  }
});
