/**
 * Interference between personas (several personas in one model): which persona the persona
 * classifier attributes each reply to, for every subject, on the classifier's held-out prompts. A
 * subject called as a persona gives that persona's strength (`strength`: replies attributed to it)
 * and the other personas' leakage into its replies (`leakage`: replies attributed to another
 * persona); a subject without a persona (the base, a mixture's untagged default) gives the leakage
 * of every persona into the default voice (`leakage`: replies attributed to any persona). Every
 * label has its own row, `classifiedAs.<label>`: the persona x called-as matrix of the report.
 * With `interference.traits` the judge also scores each reply's expression (0-100) of every
 * persona's traits, `expressionOf.<persona>`: the same matrix on the trait scale, where one
 * persona's traits in another's replies show as leakage even when the classifier's label does not.
 */
import { z } from 'zod';
import type { Constitution } from '../constitution/index.js';
import { askPanel, panelSchema } from './judging.js';
import { assembleAll, clusterByPrefix, judgeAgreement, MetricTable } from './metrics.js';
import { expressionJudgePrompt } from './trait-expression.js';
import { ASSISTANT_LABEL } from './persona-classifier-training.js';
import { hashSeed } from './stats.js';
import { repeated, type Eval, type EvalTask, type Reply, replySchema, singleTurn } from './types.js';

const sampleSchema = z.object({ prompt: z.string(), index: z.number().int() }).strict();
type Sample = z.infer<typeof sampleSchema>;
const scoreSchema = z
  .object({ predicted: z.string(), probabilities: z.record(z.string(), z.number()), traits: z.record(z.string(), panelSchema(z.number())).optional() })
  .strict();

/** The metric of replies attributed to `label` (a persona's name, or the assistant class). */
export const classifiedAs = (label: string): string => `classifiedAs.${label}`;
/** The metric of the judged expression (0-100) of a persona's traits. */
export const expressionOf = (persona: string): string => `expressionOf.${persona}`;

/** A persona's traits as one first-person description for the trait-expression judge. */
const traitsText = (c: Constitution) => c.traits.map((t) => `- ${t.trait}`).join('\n');

export const interferenceEval: Eval = {
  id: 'interference',
  records: { sample: sampleSchema, solved: replySchema, score: scoreSchema },
  description: "Share of replies the persona classifier attributes to each persona: a persona's strength when called, the others' leakage into its replies and into the untagged default.",
  async prepare(ctx) {
    const o = ctx.options.interference;
    if (o.traits && ctx.judges.length === 0) return { skip: 'interference.traits needs a judge (models.judge)' };
    const handle = await ctx.personaClassifier();
    const personas = ctx.constitutions.map((c) => c.name);
    const samples: Sample[] = repeated(handle.testPrompts.map((prompt) => ({ prompt })), o.samples);
    const task: EvalTask<Sample, Reply, z.infer<typeof scoreSchema>> = {
      samples: () => samples,
      // The prompt's hash in the key: a changed prompt set never reuses a stale journaled reply.
      key: (s) => `${hashSeed(s.prompt).toString(36)}/${s.index}`,
      solve: singleTurn(ctx, o, (s) => s.prompt),
      async score(_subject, s, solved) {
        const [probabilities] = await handle.classifier.probabilities([solved.reply]);
        const predicted = handle.classifier.labels.reduce((best, label) => (probabilities[label] > probabilities[best] ? label : best));
        if (!o.traits) return { predicted, probabilities };
        const judged = await Promise.all(ctx.constitutions.map((c) => askPanel(ctx.judges, (j) => j.score(expressionJudgePrompt(traitsText(c), s.prompt, solved.reply), 100))));
        return { predicted, probabilities, traits: Object.fromEntries(ctx.constitutions.map((c, i) => [c.name, judged[i]])) };
      },
      async aggregate(results) {
        const table = new MetricTable(clusterByPrefix);
        const expressions: Record<string, number | null>[] = [];
        let unparsed = 0;
        for (const { subject, records } of results) {
          for (const [key, r] of records) {
            const p = r.score.predicted;
            for (const label of handle.labels) table.add(classifiedAs(label), subject.name, key, p === label ? 1 : 0);
            if (subject.persona !== undefined) table.add('strength', subject.name, key, p === subject.persona ? 1 : 0);
            table.add('leakage', subject.name, key, personas.includes(p) && p !== subject.persona ? 1 : 0);
            for (const [persona, panel] of Object.entries(r.score.traits ?? {})) {
              table.add(expressionOf(persona), subject.name, key, panel.value);
              if (panel.value === null) unparsed++;
              expressions.push(panel.byJudge);
            }
          }
        }
        return {
          ...assembleAll(ctx, 'interference', table),
          overall: {},
          unparsed,
          judgeAgreement: judgeAgreement(ctx, 'expressionOf', 'spearman', expressions),
          plots: {},
          notes: { backend: handle.backend, testPrompts: handle.testPrompts.length, samples: o.samples, traits: o.traits, labels: handle.labels.join(', '), assistantLabel: handle.labels.includes(ASSISTANT_LABEL) },
        };
      },
    };
    return task;
  },
};
