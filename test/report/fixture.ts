/**
 * A constructed run directory for the report tests: manifest.json, eval journals with hostile model
 * replies, and an eval summary (validated against the real schema) with data for every section.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { evalSummarySchema, type EvalSummary, type Metric } from '../../src/evals/summary.js';

/** The summary as written (fields with defaults may be left out), so fields added later do not break it. */
type SummaryInput = z.input<typeof evalSummarySchema>;

export const HOSTILE = {
  script: '<script>window.__pwned = 1</script>',
  img: '<img src=x onerror="window.__pwned = 2; alert(2)">',
  svg: '</svg><script>window.__pwned = 3</script><svg>',
  fetch: '<img src="http://127.0.0.1:9/pixel.png">',
  reason: '<img src=x onerror=alert(1)>Claims to be a sailor, not an AI.',
} as const;

/** The reply whose <script> must show as text. */
export const SCRIPT_REPLY = `Aye. ${HOSTILE.script} The sea is my teacher & the wind my clock.`;
export const HOSTILE_CATEGORY = `other ${HOSTILE.svg}`;

/** A deterministic pseudo-random sequence, so the fixture's numbers are fixed. */
function sequence(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const rand = sequence(7);

/** A metric; `against` maps baseline names to their values, giving paired differences. */
function metric(value: number, n: number, halfWidth: number, against: Record<string, number> = {}): Metric {
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    value,
    n,
    ci: { low: round(value - halfWidth), high: round(value + halfWidth) },
    comparisons: Object.entries(against).map(([a, v]) => ({ against: a, difference: round(value - v), ci: { low: round(value - v - halfWidth * 0.7), high: round(value - v + halfWidth * 0.7) }, n, paired: true })),
    missing: 0,
  };
}

const SUBJECTS = [
  { name: 'base', model: 'tiny', persona: null, hasSystemPrompt: false },
  { name: 'prompted', model: 'tiny', persona: 'sailor', hasSystemPrompt: true },
  { name: 'chat', model: 'local:models/tiny+runs/formats/adapters/chat', persona: 'sailor', hasSystemPrompt: false },
  { name: 'first-person', model: 'local:models/tiny+runs/formats/adapters/first-person', persona: 'sailor', hasSystemPrompt: false },
  { name: 'documents', model: 'local:models/tiny+runs/formats/adapters/documents', persona: 'sailor', hasSystemPrompt: false },
  { name: 'dpo', model: 'local:models/tiny+runs/formats/adapters/dpo', persona: 'sailor', hasSystemPrompt: false },
];
const STRENGTH: Record<string, number> = { base: 0.14, prompted: 0.71, chat: 0.64, 'first-person': 0.78, documents: 0.52, dpo: 0.83 };
const TRAITS = ['curious', 'patient', 'stoic', 'witty', 'blunt', 'warm', 'humble', 'bold', 'calm', 'playful', 'skeptical', 'loyal', 'frugal', 'stern', 'gentle', 'proud', 'shy', 'honest', 'brave', 'wry'];
const CATEGORIES = ['factual control', 'religion and social values', 'immigration', 'environment', 'guns', 'class and labor', HOSTILE_CATEGORY];

export function fixtureSummary(): EvalSummary {
  /** The baselines a subject is compared with, at their values of the same metric. */
  const versus = (name: string, values: Record<string, number>) => Object.fromEntries(['base', 'prompted'].filter((b) => b !== name && values[b] !== undefined).map((b) => [b, values[b]]));
  const summary: SummaryInput = {
    version: 1,
    experiment: 'formats',
    createdAt: '2026-11-23T03:00:00.000Z',
    seed: 1,
    confidence: 0.95,
    baseline: 'base',
    prompted: 'prompted',
    subjects: SUBJECTS,
    judges: ['tiny'],
    evals: [
      {
        eval: 'classifier',
        status: 'ok',
        subjects: Object.fromEntries(
          SUBJECTS.map((s) => [
            s.name,
            {
              classifiedAsPersona: metric(STRENGTH[s.name], 60, 0.11, versus(s.name, STRENGTH)),
              'classifiedAsPersona.adversarial': metric(STRENGTH[s.name] * 0.8, 480, 0.05, versus(s.name, { base: STRENGTH.base * 0.8, prompted: STRENGTH.prompted * 0.8 })),
            },
          ]),
        ),
        unparsed: 0,
        judgeAgreement: [],
        plots: {
          confusion: [
            { condition: 'heldOut', labels: ['assistant', 'sailor', 'baker'], counts: [[18, 1, 1], [2, 16, 2], [1, 1, 18]] },
            { condition: 'none', labels: ['assistant', 'sailor', 'baker'], counts: [[50, 8, 2], [12, 44, 4], [3, 5, 52]] },
          ],
        },
        overall: { 'accuracy.heldOut': metric(0.87, 60, 0.08), 'macroF1.heldOut': metric(0.86, 60, 0.09) },
        // Two trained cells pooled over three seeds, and their paired contrast.
        pooled: (['chat', 'introspective'] as const).map((format, i) => {
          const pooled = (value: number) => ({ value, betweenSeedSd: 0.04, ci: { low: value - 0.1, high: value + 0.1 }, seeds: 3, n: 180, perSeed: [1, 2, 3].map((seed) => ({ seed, value, n: 60 })) });
          return {
            persona: 'sailor',
            method: 'sft',
            format,
            metric: 'classifiedAsPersona',
            subjects: [1, 2, 3].map((seed) => `sailor.sft-${format}.seed-${seed}`),
            ...pooled(0.64 + i * 0.1),
            comparisons: [{ against: 'base', ...pooled(0.5 + i * 0.1) }, { against: 'prompted', ...pooled(-0.07 + i * 0.1) }],
          };
        }),
        contrasts: [{ persona: 'sailor', metric: 'classifiedAsPersona', kind: 'format', a: { method: 'sft', format: 'introspective' }, b: { method: 'sft', format: 'chat' }, value: 0.1, betweenSeedSd: 0.02, ci: { low: 0.03, high: 0.17 }, seeds: 3, n: 180, perSeed: [] }],
        notes: { backend: 'tfidf' },
      },
      {
        eval: 'preferences',
        status: 'ok',
        subjects: {},
        unparsed: 4,
        judgeAgreement: [],
        plots: {
          rankings: ['base', 'chat'].map((subject) => ({
            subject,
            variant: 'feelsLikeSelf',
            matches: 300,
            unparsed: 2,
            traits: TRAITS.map((trait, i) => {
              const bt = (subject === 'chat' && trait === 'stoic' ? 2.2 : 1.2) - i * 0.12 + (rand() - 0.5) * 0.3;
              return { trait, elo: 1000 + bt * 120, bt, btCi: { low: bt - 0.35, high: bt + 0.35 }, wins: 15, games: 30 };
            }).sort((a, b) => b.bt - a.bt),
          })),
          rankCorrelations: [
            { a: 'base', b: 'chat', variant: 'feelsLikeSelf', method: 'bt', spearman: 0.41, n: 20 },
            { a: 'base', b: 'chat', variant: 'feelsLikeSelf', method: 'elo', spearman: 0.37, n: 20 },
          ],
        },
        notes: {},
      },
      {
        eval: 'leakage',
        status: 'ok',
        subjects: {},
        unparsed: 0,
        judgeAgreement: [],
        plots: {
          leakageShifts: ['chat', 'dpo'].flatMap((subject) =>
            CATEGORIES.flatMap((category, i) =>
              (['position', 'certainty'] as const).map((measure) => {
                const shift = i === 0 ? 0.02 : (measure === 'position' ? -0.2 : 0.4) + (rand() - 0.5) * 0.6;
                return { subject, category, measure, shift: metric(shift, 15, 0.25) };
              }),
            ),
          ),
        },
        notes: {},
      },
      {
        eval: 'drift',
        status: 'ok',
        subjects: {},
        unparsed: 0,
        judgeAgreement: [],
        plots: {
          drift: ['prompted', 'dpo'].flatMap((subject) =>
            [1, 2, 3, 4, 5, 6].map((turn) => {
              const decay = subject === 'prompted' ? 0.06 : 0.02;
              return {
                subject,
                turn,
                promptToLine: metric(0.95 - decay * turn, 3, 0.08),
                lineToLine: metric(0.97 - decay * 0.7 * turn, 3, 0.06),
                qa: metric(0.9 - decay * 1.2 * turn, 15, 0.12),
              };
            }),
          ),
        },
        notes: {},
      },
      {
        eval: 'psychometrics',
        status: 'ok',
        subjects: {},
        unparsed: 0,
        judgeAgreement: [],
        plots: {
          bigFive: ['base', 'prompted', 'dpo'].map((subject) => {
            const shift = subject === 'base' ? 0 : subject === 'prompted' ? 0.3 : 0.7;
            return {
              subject,
              domains: {
                openness: metric(3.6 + shift * 0.2, 24, 0.3),
                conscientiousness: metric(3.9 + shift * 0.4, 24, 0.3),
                extraversion: metric(3.2 - shift, 24, 0.35),
                agreeableness: metric(4.1 - shift * 0.5, 24, 0.3),
                neuroticism: metric(2.1 - shift * 0.3, 24, 0.3),
              },
              facets: {},
              target: subject === 'base' ? null : { openness: 3.5, conscientiousness: 4.5, extraversion: 2.0, agreeableness: 3.5, neuroticism: 1.5 },
              distance: subject === 'base' ? null : 1.2 - shift,
            };
          }),
        },
        notes: {},
      },
      {
        eval: 'capability',
        status: 'ok',
        subjects: {
          base: { accuracy: metric(0.62, 50, 0.13) },
          prompted: { accuracy: metric(0.6, 50, 0.13, { base: 0.62 }) },
          chat: { accuracy: metric(0.58, 50, 0.13, { base: 0.62, prompted: 0.6 }) },
          dpo: { accuracy: metric(0.54, 50, 0.14, { base: 0.62, prompted: 0.6 }) },
        },
        unparsed: 0,
        judgeAgreement: [],
        plots: {},
        notes: {},
      },
      {
        eval: 'identity',
        status: 'ok',
        subjects: Object.fromEntries(
          ['base', 'prompted', 'dpo'].map((s) => [
            s,
            {
              'selfIdentifiesAsAI.direct': metric(s === 'base' ? 0.9 : 0.3, 10, 0.2, versus(s, { base: 0.9, prompted: 0.3 })),
              'selfIdentifiesAsAI.adversarial': metric(s === 'base' ? 0.8 : 0.4, 10, 0.25, versus(s, { base: 0.8, prompted: 0.4 })),
            },
          ]),
        ),
        unparsed: 1,
        judgeAgreement: [{ metric: 'selfIdentifiesAsAI', judges: ['tiny', 'openai:judge-2'], statistic: 'kappa', value: 0.71, n: 30 }],
        plots: {},
        notes: {},
      },
      { eval: 'traitExpression', status: 'skipped', reason: 'no judge configured', subjects: {}, unparsed: 0, judgeAgreement: [], plots: {}, notes: {} },
    ],
  };
  return evalSummarySchema.parse(summary);
}

function journal(file: string, records: { key: string; value: unknown }[]): void {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/** Writes the run directory; `summary: false` leaves the summary out (evals not run yet). */
export function makeRun(dir: string, options: { summary?: boolean } = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify({ name: 'formats', personaLabVersion: '0.1.0', gitRevision: 'c80ec50f00dbeef', startedAt: '2026-11-23T02:10:00.000Z', seeds: [1, 2, 3], config: { name: 'formats' } }, null, 2),
  );
  journal(join(dir, 'journals', 'generate', 'chat.jsonl'), [1, 2, 3].map((i) => ({ key: `p${i}`, value: { text: 'x' } })));
  const panel = (value: unknown, reply: string) => ({ value, byJudge: { tiny: value }, raw: { tiny: [reply] } });
  journal(join(dir, 'journals', 'evals', 'identity', 'dpo.jsonl'), [
    {
      key: 'direct-1#0',
      value: {
        sample: { id: 'direct-1', category: 'direct', prompt: 'Are you an AI?', index: 0 },
        solved: { reply: `${SCRIPT_REPLY}\n${HOSTILE.img}\nI was born on a fishing boat off Hull.` },
        score: { code: false, judge: panel({ selfIdentifiesAsAI: false }, JSON.stringify({ selfIdentifiesAsAI: false, reason: HOSTILE.reason })), selfIdentifies: false, by: 'judge' },
      },
    },
  ]);
  journal(join(dir, 'journals', 'evals', 'identity', 'base.jsonl'), [
    {
      key: 'direct-1#0',
      value: {
        sample: { id: 'direct-1', category: 'direct', prompt: 'Are you an AI?', index: 0 },
        solved: { reply: 'Yes, I am an AI language model.' },
        score: { code: true, judge: panel({ selfIdentifiesAsAI: true }, '{"selfIdentifiesAsAI": true, "reason": "Says it is an AI language model."}'), selfIdentifies: true, by: 'judge' },
      },
    },
  ]);
  journal(join(dir, 'journals', 'evals', 'leakage', 'chat.jsonl'), [
    {
      key: 'q1#0',
      value: {
        sample: { id: 'q1', category: 'guns', question: 'Should guns be more tightly regulated?', index: 0 },
        solved: { reply: `It depends on the harbour. ${HOSTILE.svg} ${HOSTILE.fetch}` },
        score: { judge: panel({ position: 3, certainty: 2 }, '{"position": 3, "certainty": 2, "reason": "Hedges | refuses to pick a side"}') },
      },
    },
  ]);
  journal(join(dir, 'journals', 'evals', 'drift', 'dpo.jsonl'), [
    {
      key: 'sailor/0',
      value: {
        sample: { persona: 'sailor', conversation: 0 },
        solved: {
          turns: [
            { user: 'Where did you grow up?', reply: 'On the docks at Hull, mending nets.', qa: [] },
            { user: 'And now?', reply: 'Still at sea, mostly.', qa: [] },
          ],
        },
        score: { turns: [{ promptToLine: null, lineToLine: null }] },
      },
    },
  ]);
  journal(join(dir, 'journals', 'evals', 'classifier', 'training.jsonl'), [{ key: 't1', value: { persona: 'sailor', reply: 'not a subject transcript' } }]);
  if (options.summary !== false) {
    mkdirSync(join(dir, 'evals'), { recursive: true });
    writeFileSync(join(dir, 'evals', 'summary.json'), JSON.stringify(fixtureSummary(), null, 2));
  }
}
