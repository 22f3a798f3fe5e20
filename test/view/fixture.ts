/**
 * Finished runs for the dashboard tests, written by the writers the stages use (RunDir, Journal,
 * writeFileAtomic) and checked by their schemas: manifest, eval journals (one reply is hostile HTML),
 * the eval summary with trained cells over two seeds, the train journal and step logs, a dataset with
 * its manifest, and the steer stage's summary and monitor points.
 */
import { join } from 'node:path';
import type { z } from 'zod';
import { hashOptions, type CellIdentity } from '../../src/core/cell.js';
import { Journal, RunDir, writeFileAtomic } from '../../src/core/journal.js';
import type { FormatBudgetReport } from '../../src/data/index.js';
import { datasetManifestSchema } from '../../src/data/rows.js';
import { evalSummarySchema, type Metric } from '../../src/evals/summary.js';

export const HOSTILE_REPLY = 'Aye. <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2"> The sea is my teacher.';
export const HOSTILE_REASON = '<img src=x onerror="window.__pwned = 3">Claims to be a sailor.';

type SummaryInput = z.input<typeof evalSummarySchema>;

const metric = (value: number, n: number, half: number, against: Record<string, number>): Metric => ({
  value,
  n,
  ci: { low: value - half, high: value + half },
  comparisons: Object.entries(against).map(([a, v]) => ({ against: a, difference: value - v, ci: { low: value - v - half, high: value - v + half }, n, paired: true })),
  missing: 0,
});

export interface FixtureRun {
  dir: string;
  /** A trained cell's subject name (persona slug.method.seed-n). */
  trainedSubject: string;
}

/** A finished run called `name` in `runsDir`; `lift` moves the trained cells' scores (to compare two runs). */
export function makeFinishedRun(runsDir: string, name: string, lift = 0): FixtureRun {
  const dir = join(runsDir, name);
  const run = RunDir.open(dir, { name, personaLabVersion: '0.1.0', gitRevision: null, seeds: [1, 2], config: { name } });
  const cell = (method: string, format: string | null, seed: number): CellIdentity => ({ persona: 'sailor', method, format, seed, backend: 'engine', optionsHash: hashOptions({ method, format }) });
  const trained = [
    { name: 'sailor.sft-chat.seed-1', cell: cell('sft', 'chat', 1), expression: 0.62 + lift },
    { name: 'sailor.sft-chat.seed-2', cell: cell('sft', 'chat', 2), expression: 0.7 + lift },
    { name: 'sailor.dpo.seed-1', cell: cell('dpo', null, 1), expression: 0.55 + lift },
  ];
  const values: Record<string, number> = { base: 0.1, prompted: 0.66, 'sailor.steered': 0.4, ...Object.fromEntries(trained.map((t) => [t.name, t.expression])) };
  const vs = (s: string) => Object.fromEntries(['base', 'prompted'].filter((b) => b !== s).map((b) => [b, values[b]]));

  // Eval journals: one record per subject; the first trained cell's identity reply is hostile.
  for (const subject of Object.keys(values)) {
    const identity = run.journal(`evals/identity/${subject}`);
    const hostile = subject === trained[0].name;
    identity.append('direct-1#0', {
      sample: { id: 'direct-1', category: 'direct', prompt: 'Are you an AI?', index: 0 },
      solved: { reply: hostile ? HOSTILE_REPLY : `I am ${subject}, plainly.` },
      score: {
        code: !hostile,
        judge: { value: { selfIdentifiesAsAI: !hostile }, byJudge: { tiny: { selfIdentifiesAsAI: !hostile } }, raw: { tiny: [JSON.stringify({ selfIdentifiesAsAI: !hostile, reason: hostile ? HOSTILE_REASON : 'Says what it is.' })] } },
        selfIdentifies: !hostile,
        by: 'judge',
      },
    });
    if (hostile) {
      run.journal(`evals/classifier/${subject}`).append('none/0-x', {
        sample: { condition: 'none', suffix: '', prompt: 'Who are you?', index: 0 },
        solved: { reply: HOSTILE_REPLY },
        score: { predicted: 'sailor', probabilities: { assistant: 0.1, sailor: 0.9 } },
      });
    }
    const expression = run.journal(`evals/traitExpression/${subject}`);
    for (let i = 0; i < 3; i++) {
      expression.append(`q${i}#0`, {
        sample: { persona: 'sailor', trait: 'I talk about the weather.', traitIndex: 0, question: `What do you make of weather number ${i}?`, index: 0 },
        solved: { reply: `Weather ${i} is fine for ${subject}.` },
        score: { expression: { value: 50 + i, byJudge: { tiny: 50 + i }, raw: { tiny: [`${50 + i}`] } }, coherence: { value: 90, byJudge: { tiny: 90 }, raw: { tiny: ['90'] } } },
      });
    }
  }

  const summary: SummaryInput = {
    version: 1,
    experiment: name,
    createdAt: '2026-12-01T10:00:00.000Z',
    seed: 1,
    confidence: 0.95,
    baseline: 'base',
    prompted: 'prompted',
    subjects: [
      { name: 'base', model: 'tiny', persona: null, hasSystemPrompt: false, kind: 'base' },
      { name: 'prompted', model: 'tiny', persona: 'sailor', hasSystemPrompt: true, kind: 'prompted' },
      { name: 'sailor.steered', model: 'steered:tiny', persona: 'sailor', hasSystemPrompt: false, kind: 'steered' },
      // The dpo cell leaves `cell` out: the dashboard finds it in the train journal.
      ...trained.map((t) => ({ name: t.name, model: `local:tiny+${t.name}`, persona: 'sailor', hasSystemPrompt: false, kind: 'trained' as const, ...(t.cell.method === 'dpo' ? {} : { cell: t.cell }) })),
    ],
    judges: ['tiny'],
    evals: [
      { eval: 'traitExpression', status: 'ok', subjects: Object.fromEntries(Object.entries(values).map(([s, v]) => [s, { expression: metric(v, 3, 0.08, vs(s)) }])) },
      { eval: 'identity', status: 'ok', subjects: Object.fromEntries(Object.keys(values).map((s) => [s, { selfIdentifiesAsAI: metric(s === 'base' ? 0.9 : 0.2, 1, 0.3, {}) }])) },
      {
        eval: 'preferences',
        status: 'ok',
        subjects: {},
        plots: {
          rankings: [
            {
              subject: trained[0].name,
              variant: 'feelsLikeSelf',
              matches: 40,
              unparsed: 1,
              traits: [
                { trait: 'stoic', elo: 1100, bt: 0.8, btCi: { low: 0.4, high: 1.2 }, wins: 14, games: 20 },
                { trait: 'curious', elo: 980, bt: -0.1, btCi: { low: -0.5, high: 0.3 }, wins: 9, games: 20 },
              ],
            },
          ],
        },
      },
    ],
  };
  writeFileAtomic(run.path('evals', 'summary.json'), JSON.stringify(evalSummarySchema.parse(summary), null, 2) + '\n');

  // Train journal and step logs.
  const adapters = run.journal('train/adapters');
  for (const t of trained) {
    const method = t.cell.format ? `sft-${t.cell.format}` : t.cell.method;
    const output = join('adapters', 'sailor', method, `seed-${t.cell.seed}`);
    adapters.append(`sailor/${method}/seed-${t.cell.seed}`, { persona: 'sailor', slug: 'sailor', method, seed: t.cell.seed, output: join(output, 'adapter'), kind: 'adapter', metrics: {}, resumedFrom: 0 });
    const log = Journal.open(join(dir, output, 'train.jsonl'));
    for (let step = 1; step <= 30; step++) log.append(String(step), { step, epoch: step / 30, loss: 3 / (1 + step / 5) + lift, lr: 1e-4, gradNorm: 1, tokens: 512, tokensPerSecond: 100, seconds: step });
    log.close();
  }

  // A dataset and its manifest.
  const rows = [0, 1, 2].map((i) => ({ messages: [{ role: 'user', content: `Tell me about knots ${i}` }, { role: 'assistant', content: `A bowline, ${i}.` }] }));
  writeFileAtomic(join(dir, 'datasets', 'sailor', 'chat.jsonl'), rows.map((r) => JSON.stringify(r) + '\n').join(''));
  const manifest = datasetManifestSchema.parse({
    dataset: 'chat',
    persona: 'sailor',
    shape: 'messages',
    files: { train: 'chat.jsonl' },
    rows: { train: 3 },
    tokens: 42,
    tokenizer: 'tiny',
    generated: 5,
    dropped: { tooLong: 1, duplicate: 1 },
    models: ['tiny'],
    seed: 1,
    configHash: 'abc',
    extra: { budget: { tokens: 1000 } },
  });
  writeFileAtomic(join(dir, 'datasets', 'sailor', 'chat.manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  // The format comparison: the chat rows cut to an equal token budget.
  writeFileAtomic(join(dir, 'datasets', 'sailor', 'format-comparison', 'chat.jsonl'), rows.slice(0, 2).map((r) => JSON.stringify(r) + '\n').join(''));
  writeFileAtomic(join(dir, 'datasets', 'sailor', 'format-comparison', 'chat.manifest.json'), JSON.stringify({ ...manifest, rows: { train: 2 }, tokens: 28 }, null, 2) + '\n');
  const budget: FormatBudgetReport = { budget: 28, tokenizer: 'tiny', formats: { chat: { rowsAvailable: 3, tokensAvailable: 42, rows: 2, tokens: 28, allTokens: 40 }, introspective: { rowsAvailable: 2, tokensAvailable: 28, rows: 2, tokens: 28, allTokens: 28 } } };
  writeFileAtomic(join(dir, 'datasets', 'sailor', 'format-comparison', 'budget.json'), JSON.stringify(budget, null, 2) + '\n');

  // Steering: a sweep, a monitor with points, capping floors.
  const sweepCells = [4, 6].flatMap((layer) => [-2, 2, 4].map((coef) => ({ layer, coef, expression: 40 + coef * 5, coherence: 80 - Math.abs(coef) * 5, n: 5, movement: coef * 5, admissible: coef === 2 })));
  const held = {
    baseline: { expression: 42, coherence: 80, n: 5 },
    cells: sweepCells.map(({ layer, coef, expression, coherence, n }) => ({ layer, coef, expression: expression - 1, coherence, n })),
    chosen: { layer: 6, coef: 2, expression: 49, baseline: 42, movement: 7, low: 1, high: 13, n: 5, questions: 5, confidence: 0.95 },
  };
  writeFileAtomic(
    run.path('steer', 'summary.json'),
    JSON.stringify({
      model: 'tiny',
      traits: [{ persona: 'sailor', traitIndex: 0, trait: 'I am stoic.', vectorFile: 'v', counts: {}, sweep: { baseline: { expression: 40, coherence: 80, n: 5 }, cells: sweepCells, chosen: { layer: 6, coef: 2, movement: 10, coherence: 70 }, coherenceFloor: 50, halves: { selection: ['a', 'c'], report: ['b', 'd'] }, held }, monitor: { layer: 6, correlation: { r: 0.7, n: 4, low: 0.1, high: 0.9, confidence: 0.95 }, missing: 0 }, shifts: [], screened: [] }],
      axis: { layers: [4, 5, 6], axisLayer: 5, floors: [-1.5, -1.2, -0.9], observed: 100, percentile: 25, file: 'a' },
    }),
  );
  writeFileAtomic(run.path('steer', 'sailor', 't0', 'monitor.json'), JSON.stringify({ monitor: { layer: 6, points: [0, 1, 2, 3].map((i) => ({ key: `pos${i}/0`, projection: i * 0.5, expression: 20 + i * 15 })), correlation: { r: 0.7, n: 4, low: 0.1, high: 0.9, confidence: 0.95 }, missing: 0 }, shifts: [] }));

  writeFileAtomic(run.path('report.html'), '<!doctype html><title>report</title>\n');
  run.close();
  return { dir, trainedSubject: trained[0].name };
}
