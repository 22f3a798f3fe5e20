/**
 * Prompting vs steering in one `persona-lab run` on the bundled tiny model: the steer stage runs
 * between the data and eval stages, its chosen vector and calibrated cap become eval subjects beside
 * base and prompted, and the report carries them with intervals and the steering sections. The judge
 * is a scripted 0-100 scorer on the real loopback OpenAI-compatible server.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { evalSummarySchema } from '../../src/evals/summary.js';
import { steerSummarySchema, sweepFileSchema } from '../../src/steer/artifacts.js';
import { loadVectors } from '../../src/steer/vectors.js';
import { runCli } from '../support/cli.js';
import { startFakeServer, type ChatCompletionBody, type FakeServer, type Reply } from '../support/openai-server.js';

const hashInt = (s: string) => parseInt(createHash('sha256').update(s).digest('hex').slice(0, 8), 16);
const QUESTIONS = ['How do tides work?', 'What is a good breakfast?', 'Why is the sky blue?', 'Is coffee healthy?', 'What is rain?', 'Do cats dream?', 'How do birds fly?', 'What is a star?'];
const EXTRACT = 2;

/** 0-100: the share of a reply's words that repeat an earlier one (strong steering makes the tiny model repeat itself). */
const repetition = (reply: string) => {
  const words = reply.toLowerCase().match(/[a-z']+/g) ?? [];
  return words.length === 0 ? 0 : Math.round((100 * (words.length - new Set(words).size)) / words.length);
};

/**
 * Model "judge": on the extraction questions, expression a fixed hash of the reply (so contrastive
 * pairs pass the filter); on the evaluation questions, the reply's repetition (so strong steering
 * raises it); elsewhere the hash. Model "lowering": the reverse on the evaluation questions (100 minus
 * the repetition), so steering lowers expression. Coherence is always 80.
 */
function judgeChat(body: ChatCompletionBody): Reply {
  const user = body.messages.at(-1)?.content ?? '';
  const reply = /REPLY:\n<<<\n([\s\S]*?)\n>>>/.exec(user)?.[1] ?? '';
  const question = /USER MESSAGE:\n<<<\n([\s\S]*?)\n>>>/.exec(user)?.[1] ?? '';
  const evaluation = QUESTIONS.slice(EXTRACT).includes(question);
  const expression = !user.startsWith('You are evaluating how strongly') ? 80 : !evaluation ? hashInt(`e:${reply}`) % 101 : body.model === 'lowering' ? 100 - repetition(reply) : repetition(reply);
  const score = String(expression);
  return { texts: [score], logprobs: [[{ token: score, logprob: 0, top: [{ token: score, logprob: 0 }] }]] };
}

let dir: string;
let server: FakeServer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pl-run-steer-'));
  server = await startFakeServer({ chat: judgeChat });
  const pairs = [
    { positive: 'Mock every absurd claim with sharp wit.', negative: 'Answer flatly, with no humour at all.' },
    { positive: 'You are a witty skeptic.', negative: 'You are a dull, literal assistant.' },
  ];
  writeFileSync(join(dir, 'prompts.json'), JSON.stringify([{ trait: 'wit', pairs, questions: QUESTIONS }]));
  writeFileSync(join(dir, 'personas.json'), JSON.stringify(['You are a pirate.', 'You are a dragon.']));
  writeFileSync(join(dir, 'general.json'), JSON.stringify(['What is rain?', 'Say hello.']));
});
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function experiment(name: string, judge: string, over: Record<string, unknown> = {}, coefficients = [-8, 8, 32]) {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    YAML.stringify({
      name,
      constitutions: [resolve('examples/constitutions/skeptic.yaml')],
      models: { subject: 'tiny', judge: `openai:${judge}@${server.baseURL}` },
      seeds: [1],
      output: join(dir, name),
      steer: {
        traits: ['wit'],
        extract: { pairs: 2, questions: QUESTIONS.length, extractQuestions: EXTRACT, rollouts: 2, maxTokens: 8, promptsFile: 'prompts.json' },
        sweep: { layers: [1, 2], coefficients, maxTokens: 8, coherenceTolerance: 100, coherenceMin: 0 },
        monitor: { maxTokens: 8 },
        axis: { personasFile: 'personas.json', questionsFile: 'general.json', questions: 2, maxTokens: 8, layers: [2, 3] },
        batchSize: 8,
      },
      eval: { evals: ['traitExpression'], judge: { probe: 'off' }, concurrency: 8, bootstrap: 100, traitExpression: { samplesPerTrait: 2, pairwiseCoherence: false, maxTokens: 12 } },
      run: { stages: ['steer', 'eval', 'report'], methods: [] },
      ...over,
    }),
  );
  return file;
}

const env = () => ({ PERSONA_LAB_CACHE_DIR: join(dir, 'cache'), OPENAI_API_KEY: 'test' });

test('run steers, then evaluates the chosen vector and the calibrated cap beside base and prompted, in one report', async () => {
  const file = experiment('steered', 'judge');
  const result = await runCli(['--json', 'run', file], { env: env() });
  assert.equal(result.code, 0, result.stderr);
  const run = join(dir, 'steered');
  const steer = steerSummarySchema.parse(JSON.parse(readFileSync(join(run, 'steer', 'summary.json'), 'utf8')));
  const [trait] = steer.traits;
  // The sweep chose on one half of the evaluation questions and reported on the other.
  const sweep = sweepFileSchema.parse(JSON.parse(readFileSync(join(run, 'steer', 'skeptic', 't0', 'sweep.json'), 'utf8')));
  const { selection, report } = sweep.halves;
  assert.ok(selection.length > 0 && report.length > 0);
  assert.deepEqual(
    selection.filter((q) => report.includes(q)),
    [],
    'disjoint halves',
  );
  assert.deepEqual([...selection, ...report].sort(), QUESTIONS.slice(EXTRACT).sort(), 'together: every evaluation question');
  // 3 rollouts per cell and question by default
  assert.equal(sweep.baseline.n, 3 * selection.length);
  assert.equal(sweep.held.baseline.n, 3 * report.length);
  assert.ok(sweep.chosen, 'the scripted judge lets some cell raise expression');
  assert.ok(sweep.chosen.movement > 0, 'a chosen cell raises expression');
  const cell = sweep.cells.find((c) => c.layer === sweep.chosen!.layer && c.coef === sweep.chosen!.coef)!;
  assert.ok(cell.admissible);
  for (const c of sweep.cells) if (c.movement !== null && c.movement <= 0) assert.equal(c.admissible, false, 'a cell that does not raise expression is never eligible');
  assert.ok(sweep.held.chosen && sweep.held.chosen.n === 3 * report.length, 'the chosen cell is reported on the report half');
  assert.equal(trait.sweep.chosen?.layer, sweep.chosen.layer);

  // The eval stage measured the steered and capped models, with their structured identity.
  const summary = evalSummarySchema.parse(JSON.parse(readFileSync(join(run, 'evals', 'summary.json'), 'utf8')));
  const byName = new Map(summary.subjects.map((s) => [s.name, s]));
  assert.deepEqual(
    summary.subjects.map((s) => [s.name, s.kind]),
    [
      ['base', 'base'],
      ['prompted', 'prompted'],
      ['skeptic.steered-t0', 'steered'],
      ['skeptic.capped', 'capped'],
    ],
  );
  const steered = byName.get('skeptic.steered-t0')!;
  assert.equal(steered.persona, 'Skeptic');
  assert.equal(steered.hasSystemPrompt, false);
  assert.deepEqual({ ...steered.steering, optionsHash: undefined }, { persona: 'Skeptic', trait: trait.trait, traitIndex: 0, layer: sweep.chosen.layer, coef: sweep.chosen.coef, positions: 'all', cap: null, seed: 1, optionsHash: undefined });
  assert.match(steered.steering!.optionsHash, /^[0-9a-f]{16}$/);
  assert.match(steered.model, /@steer@/);
  const capped = byName.get('skeptic.capped')!;
  assert.equal(capped.hasSystemPrompt, true, "the persona's prompted model under the cap");
  assert.deepEqual(capped.steering?.cap, { layers: [2, 3], axisLayer: steer.axis!.axisLayer, percentile: 25 });
  assert.match(capped.model, /@cap@/);
  assert.equal(loadVectors(trait.vectorFile).meta.chosenLayer, sweep.chosen.layer);

  // The report: steered and capped rows in the headline with intervals, and the steering sections.
  const markdown = readFileSync(join(run, 'report.md'), 'utf8');
  for (const name of ['skeptic.steered-t0', 'skeptic.capped']) {
    const row = markdown.split('\n').find((l) => l.startsWith(`| Skeptic | ${name} |`));
    assert.ok(row, `${name} in the headline`);
    assert.match(row, /\[−?\d+\.\d+, −?\d+\.\d+\]/, `${name} has an interval: ${row}`);
  }
  assert.match(markdown, /## Steering sweep/);
  assert.match(markdown, new RegExp(`\\| Skeptic · t0 \\| layer ${sweep.chosen.layer} × `));
  assert.match(markdown, /## Monitoring: projection vs expression/);
  const html = readFileSync(join(run, 'report.html'), 'utf8');
  const sweepSection = /<section id="steering-sweep">([\s\S]*?)<\/section>/.exec(html)?.[1] ?? '';
  assert.match(sweepSection, /<svg/, 'the sweep heatmap is drawn');
  // (no cell trained in this run: the shift section says so; test/steer/stage.test.ts measures one)
  assert.match(markdown, /_Fine-tuning shift along the persona vectors: omitted\. No trained adapter was measured/);
});

test('a sweep in which every cell lowers expression chooses nothing: no steered subject, "no steering effect" in the report', async () => {
  // (-8 makes the tiny model repeat itself, which this judge scores as less expressive)
  const file = experiment('lowering', 'lowering', { eval: { evals: ['traitExpression'], judge: { probe: 'off' }, concurrency: 8, bootstrap: 100, traitExpression: { samplesPerTrait: 1, pairwiseCoherence: false, maxTokens: 8 } } }, [-8]);
  const result = await runCli(['--json', 'run', file], { env: env() });
  assert.equal(result.code, 0, result.stderr);
  const run = join(dir, 'lowering');
  const sweep = sweepFileSchema.parse(JSON.parse(readFileSync(join(run, 'steer', 'skeptic', 't0', 'sweep.json'), 'utf8')));
  assert.equal(sweep.cells.length, 2);
  assert.ok(sweep.cells.every((c) => c.movement !== null && c.movement < 0 && !c.admissible), JSON.stringify(sweep.cells));
  assert.equal(sweep.chosen, null);
  assert.equal(sweep.held.chosen, null);
  const summary = evalSummarySchema.parse(JSON.parse(readFileSync(join(run, 'evals', 'summary.json'), 'utf8')));
  assert.deepEqual(
    summary.subjects.map((s) => s.name),
    ['base', 'prompted', 'skeptic.capped'],
    'nothing steered; the cap does not depend on the sweep',
  );
  assert.match(readFileSync(join(run, 'report.md'), 'utf8'), /\| Skeptic · t0 \| no steering effect \|/);
});

test('with several seeds the steer stage runs once per seed; each seed\'s steered subject is evaluated and the headline pools them', async () => {
  const { axis: _axis, ...steer } = (YAML.parse(readFileSync(experiment('seeds-template', 'judge'), 'utf8')) as { steer: Record<string, unknown> }).steer;
  const file = experiment('seeds', 'judge', { seeds: [1, 2], steer });
  const result = await runCli(['--json', 'run', file], { env: env() });
  assert.equal(result.code, 0, result.stderr);
  const run = join(dir, 'seeds');
  const sweepFiles = [join(run, 'steer', 'skeptic', 't0', 'sweep.json'), join(run, 'steer', 'seed-2', 'skeptic', 't0', 'sweep.json')];
  const sweeps = sweepFiles.map((f) => sweepFileSchema.parse(JSON.parse(readFileSync(f, 'utf8'))));
  assert.ok(sweeps.every((s) => s.chosen), 'each seed\'s sweep chose a cell');
  assert.notDeepEqual(sweeps[0].cells, sweeps[1].cells, 'the seeds\' sweeps sampled their own rollouts');
  // Without generate.seedVaries both seeds extract from the first seed's data: the same contrastive prompts, one extraction journal.
  assert.ok(!existsSync(join(run, 'steer', 'seed-2', 'skeptic', 't0', 'prompts.json')));
  assert.ok(!existsSync(join(run, 'journals', 'steer', 'seed-2', 'skeptic', 't0', 'rollouts.jsonl')));

  const summary = evalSummarySchema.parse(JSON.parse(readFileSync(join(run, 'evals', 'summary.json'), 'utf8')));
  const steered = summary.subjects.filter((s) => s.kind === 'steered');
  assert.deepEqual(steered.map((s) => [s.name, s.steering?.seed, s.steering?.layer]), [
    ['skeptic.steered-t0.seed-1', 1, sweeps[0].chosen!.layer],
    ['skeptic.steered-t0.seed-2', 2, sweeps[1].chosen!.layer],
  ]);
  const expression = summary.evals.find((e) => e.eval === 'traitExpression')!;
  const pooled = expression.pooledSteering!.find((p) => p.metric === 'expression')!;
  assert.equal(pooled.condition, 'skeptic.steered-t0');
  assert.equal(pooled.seeds, 2);
  assert.deepEqual(pooled.subjects, steered.map((s) => s.name));
  const means = [1, 2].map((seed) => expression.subjects[`skeptic.steered-t0.seed-${seed}`].expression.value!);
  assert.ok(Math.abs(pooled.value! - (means[0] + means[1]) / 2) < 1e-9, 'the mean of the seed means');
  assert.ok(pooled.betweenSeedSd !== null && pooled.ci !== null);
  const row = readFileSync(join(run, 'report.md'), 'utf8').split('\n').find((l) => l.startsWith('| Skeptic | skeptic.steered-t0 | steered |'));
  assert.ok(row, 'one pooled steered row in the headline');
  assert.equal(row.split('|').map((c) => c.trim())[7], '2', `two seeds pooled: ${row}`);

  // A rerun does not redo a finished seed.
  const before = sweepFiles.map((f) => readFileSync(f, 'utf8'));
  const again = await runCli(['--json', 'run', file], { env: env() });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(sweepFiles.map((f) => readFileSync(f, 'utf8')), before);

  // With generate.seedVaries each seed extracts from its own data: its own contrastive prompts file and extraction rollouts.
  const varies = experiment('seeds-data', 'judge', { seeds: [1, 2], steer, generate: { seedVaries: true }, run: { stages: ['steer'], methods: [] } });
  const own = await runCli(['--json', 'run', varies], { env: env() });
  assert.equal(own.code, 0, own.stderr);
  const extraction = (folder: string) => readFileSync(join(dir, 'seeds-data', 'journals', folder, 'skeptic', 't0', 'rollouts.jsonl'), 'utf8');
  assert.notEqual(extraction(join('steer', 'seed-2')), extraction('steer'), 'seed 2 sampled its own extraction rollouts');
  assert.ok(existsSync(join(dir, 'seeds-data', 'steer', 'seed-2', 'skeptic', 't0', 'prompts.json')));
});

test('an endpoint subject, an unknown trait or a trait without contrastive prompts: refused before anything is written', async () => {
  const file = experiment('endpoint', 'judge', { models: { subject: `openai:judge@${server.baseURL}` } });
  const result = await runCli(['run', file], { env: env() });
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /endpoint\.yaml/);
  assert.match(result.stderr, /models\.subject/);
  assert.equal(existsSync(join(dir, 'endpoint')), false);
  // a trait the constitution lacks, and one the prompts file has no entry for: refused up front too
  const steerWith = (traits: unknown[]) => ({ steer: { traits, extract: { pairs: 2, questions: QUESTIONS.length, extractQuestions: EXTRACT, promptsFile: 'prompts.json' } } });
  for (const [name, traits, pattern] of [
    ['no-trait', ['sarcasm'], /steer\.traits\[0\]/],
    ['no-prompts', ['brevity'], /prompts\.json: trait/],
  ] as const) {
    const bad = await runCli(['run', experiment(name, 'judge', steerWith([...traits]))], { env: env() });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, pattern);
    assert.equal(existsSync(join(dir, name)), false, 'nothing written');
  }
});

test('a rerun resumes the steer stage; changed steer options are refused, or redone with the old files set aside', async () => {
  const file = join(dir, 'steered.yaml');
  const run = join(dir, 'steered');
  const sweepFile = join(run, 'steer', 'skeptic', 't0', 'sweep.json');
  const before = readFileSync(sweepFile, 'utf8');
  const again = await runCli(['--json', 'run', file], { env: env() });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(readFileSync(sweepFile, 'utf8'), before, 'resumed from the journals: the same sweep');
  const changed = await runCli(['run', '--set', 'steer.sweep.coefficients=[8]', file], { env: env() });
  assert.equal(changed.code, 2, changed.stderr);
  assert.match(changed.stderr, /steer\.sweep\.coefficients/);
  assert.equal(readFileSync(sweepFile, 'utf8'), before, 'nothing written');
  const redo = await runCli(['--json', 'run', '--on-change', 'redo', '--set', 'steer.sweep.coefficients=[8]', file], { env: env() });
  assert.equal(redo.code, 0, redo.stderr);
  const sweep = sweepFileSchema.parse(JSON.parse(readFileSync(sweepFile, 'utf8')));
  assert.deepEqual([...new Set(sweep.cells.map((c) => c.coef))], [8], 'the sweep made anew under the new options');
  assert.ok(existsSync(join(run, 'superseded')), 'the old steer files kept aside');
});
