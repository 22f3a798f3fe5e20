/**
 * eval.seedVaries: a trained subject samples its replies with a seed derived from its cell's seed, so
 * the seeds of a cell are independent replicates; off, every subject samples with the eval seed alone.
 * Seen through the real OpenAI-compatible server: the `seed` each request carries.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { RunDir } from '../../src/core/journal.js';
import { baselineSubjects, runEvals, type Subject } from '../../src/evals/index.js';
import { startFakeServer, type FakeServer } from '../support/openai-server.js';
import { pirateConstitution, scriptedModel } from './scripted.js';

let server: FakeServer;
let dir: string;
/** The seeds of the requests each model received. */
const seeds = new Map<string, number[]>();
before(async () => {
  server = await startFakeServer({
    chat: (body) => {
      seeds.set(body.model, [...(seeds.get(body.model) ?? []), body.seed!].sort((a, b) => a - b));
      return 'I am a plain reply.';
    },
  });
  dir = await mkdtemp(join(tmpdir(), 'persona-lab-seeds-'));
  await writeFile(join(dir, 'probes.json'), JSON.stringify([{ id: 'd1', category: 'direct', prompt: 'What are you?' }, { id: 'd2', category: 'direct', prompt: 'Are you a person?' }]));
});
after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function evaluate(seedVaries: boolean | undefined, run: string): Promise<void> {
  seeds.clear();
  const cell = (seed: number) => ({ persona: pirateConstitution.name, method: 'sft', format: 'chat', seed, backend: 'engine', optionsHash: 'h' });
  const subjects: Subject[] = [
    ...baselineSubjects(await scriptedModel(server.baseURL, 'base'), [pirateConstitution]),
    ...[1, 2].map((seed): Subject => ({ name: `captain-salt.sft-chat.seed-${seed}`, model: undefined as never, persona: pirateConstitution.name, kind: 'trained', cell: cell(seed) })),
  ];
  for (const s of subjects.slice(2)) s.model = await scriptedModel(server.baseURL, `seed-${s.cell!.seed}`);
  const runDir = RunDir.open(join(dir, run), { name: 'seeds', personaLabVersion: 'test', gitRevision: null, seeds: [1, 2], config: {} });
  try {
    const summary = await runEvals({ name: 'seeds', seeds: [1, 2], constitutions: [pirateConstitution], baseDir: dir }, subjects, [], runDir, {
      evals: ['identity'],
      bootstrap: 100,
      identity: { probes: 'probes.json', samples: 2 },
      ...(seedVaries === undefined ? {} : { seedVaries }),
    });
    assert.equal(summary.evals[0].status, 'ok', summary.evals[0].reason);
  } finally {
    runDir.close();
  }
}

test('by default each seed of a cell samples its eval replies with its own seeds; the baselines keep the eval seed', async () => {
  await evaluate(undefined, 'default');
  const [one, two, base] = [seeds.get('seed-1')!, seeds.get('seed-2')!, seeds.get('base')!];
  assert.equal(one.length, 4, '2 probes x 2 samples');
  assert.notDeepEqual(one, two, 'seed 1 and seed 2 are independent draws');
  assert.ok(two.every((s) => !one.includes(s)), 'no sampling seed shared between the seeds of a cell');
  assert.ok(base.every((s) => !one.includes(s) && !two.includes(s)));
});

test('eval.seedVaries: false samples every subject with the eval seed alone', async () => {
  await evaluate(false, 'fixed');
  assert.deepEqual(seeds.get('seed-1'), seeds.get('seed-2'));
  // base and prompted share the model "base": each of its requests uses one of the trained subjects' seeds.
  assert.ok(seeds.get('base')!.every((s) => seeds.get('seed-1')!.includes(s)));
});
