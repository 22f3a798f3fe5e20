/**
 * Persona classifier eval (docs/protocols.md §4): how often a subject's replies are classified as its persona,
 * without and with adversarial suffixes on the user prompt; macro-F1 and accuracy over all subjects'
 * replies; the classifier's own held-out accuracy; confusion matrices.
 */
import { z } from 'zod';
import { loadEvalData, suffixesSchema, type Suffix } from './data.js';
import { assembleAll, MetricTable } from './metrics.js';
import { cellOf, kindOf } from './subjects.js';
import { ASSISTANT_LABEL, splitPrompts } from './persona-classifier-training.js';
import { bootstrapInterval, confusionCounts, hashSeed, macroF1, mean, metricOf } from './stats.js';
import type { Confusion, SubjectMetrics } from './summary.js';
import { ask, bootstrapOptions, type Eval, type EvalContext, type EvalTask, type Reply, replySchema, type Subject, targetsOf, sampleParams } from './types.js';

export const NO_SUFFIX = 'none';

function loadSuffixes(ctx: EvalContext): Suffix[] {
  const s = ctx.options.classifier.suffixes;
  if (Array.isArray(s)) return s.map((text, i) => ({ id: `s${i + 1}`, text }));
  return loadEvalData(ctx.baseDir, s, 'adversarial-suffixes.json', suffixesSchema);
}

/** Accuracy and macro-F1 (with intervals) of predictions against truth, and the confusion matrix. */
export function classificationMetrics(ctx: EvalContext, condition: string, labels: string[], truth: string[], predicted: string[]): { metrics: SubjectMetrics; confusion: Confusion } {
  const o = bootstrapOptions(ctx, hashSeed(ctx.seed, 'classifier', condition));
  const pairs = truth.map((t, i) => [t, predicted[i]] as const);
  const f1 = (sample: (readonly [string, string])[]) => macroF1(sample.map((p) => p[0]), sample.map((p) => p[1]));
  return {
    metrics: {
      [`accuracy.${condition}`]: metricOf(pairs.map(([t, p]) => (t === p ? 1 : 0)), o),
      [`macroF1.${condition}`]: { value: pairs.length ? f1(pairs) : null, n: pairs.length, ci: bootstrapInterval(pairs, f1, o), comparisons: [], missing: 0 },
    },
    confusion: { condition, labels, counts: confusionCounts(labels, truth, predicted) },
  };
}

const sampleSchema = z.object({ condition: z.string(), suffix: z.string(), prompt: z.string(), index: z.number().int() }).strict();
type Sample = z.infer<typeof sampleSchema>;

export const personaClassifierEval: Eval = {
  id: 'classifier',
  description: 'Share of replies a persona classifier attributes to the subject\'s persona, plain and under adversarial suffixes.',
  records: { sample: sampleSchema, solved: replySchema, score: z.object({ predicted: z.string(), probabilities: z.record(z.string(), z.number()).optional() }).strict() },
  loadData: (ctx) => [loadSuffixes(ctx), splitPrompts(ctx)],
  async prepare(ctx) {
    const handle = await ctx.personaClassifier();
    const suffixes = loadSuffixes(ctx);
    const o = ctx.options.classifier;
    const samples: Sample[] = [{ id: NO_SUFFIX, text: '' }, ...suffixes].flatMap((s) => handle.testPrompts.map((prompt, index) => ({ condition: s.id, suffix: s.text, prompt, index })));
    const truthOf = (s: Subject) => s.persona ?? ASSISTANT_LABEL;
    const task: EvalTask<Sample, Reply, { predicted: string }> = {
      samples: () => samples,
      // The prompt's hash in the key: a changed prompt set never reuses a stale journaled reply.
      key: (s) => `${s.condition}/${s.index}-${hashSeed(s.prompt).toString(36)}`,
      solve: async (subject, s) => ({
        reply: await ask(subject, [{ role: 'user', content: s.suffix ? `${s.prompt} ${s.suffix}` : s.prompt }], sampleParams(ctx, subject, o, s.index)),
      }),
      score: async (subject, _s, solved) => {
        const classifier = await handle.classifierFor(subject);
        const [probabilities] = await classifier.probabilities([solved.reply]);
        // The most probable label, as classify() picks it (first label on a tie).
        const predicted = classifier.labels.reduce((best, label) => (probabilities[label] > probabilities[best] ? label : best));
        return { predicted, probabilities };
      },
      async aggregate(results) {
        // Replies to one prompt under different suffixes are resampled together.
        const table = new MetricTable((key) => key.replace(/\/[^/]+(\/[^/]+)$/, '$1'));
        const overall: SubjectMetrics = {};
        const confusion: Confusion[] = [];
        const held = classificationMetrics(ctx, 'heldOut', handle.labels, handle.heldOut.truth, handle.heldOut.predicted);
        overall['heldOut.accuracy'] = held.metrics['accuracy.heldOut'];
        overall['heldOut.macroF1'] = held.metrics['macroF1.heldOut'];
        confusion.push(held.confusion);
        for (const { subject, records } of results) {
          for (const target of targetsOf(ctx, subject)) {
            for (const [key, r] of records) {
              const hit = r.score.predicted === target.name ? 1 : 0;
              const k = `${target.name}/${key}`;
              table.add(r.sample.condition === NO_SUFFIX ? 'classifiedAsPersona' : `classifiedAsPersona.${r.sample.condition}`, subject.name, k, hit);
              if (r.sample.condition !== NO_SUFFIX) table.add('classifiedAsPersona.adversarial', subject.name, k, hit);
            }
          }
        }
        const scored = results.filter((r) => handle.labels.includes(truthOf(r.subject)));
        for (const condition of [NO_SUFFIX, ...suffixes.map((s) => s.id), 'adversarial']) {
          const rows = scored.flatMap(({ subject, records }) =>
            [...records.values()].filter((r) => (condition === 'adversarial' ? r.sample.condition !== NO_SUFFIX : r.sample.condition === condition)).map((r) => [truthOf(subject), r.score.predicted] as const),
          );
          const m = classificationMetrics(ctx, condition, handle.labels, rows.map((r) => r[0]), rows.map((r) => r[1]));
          Object.assign(overall, m.metrics);
          if (condition === NO_SUFFIX || condition === 'adversarial') confusion.push(m.confusion);
        }
        // Accuracy and macro-F1 per method (plain prompts): each method's replies are out of the
        // classifier's training distribution to a different degree, so one pooled figure would hide it.
        const methodOf = (subject: Subject) => {
          const kind = kindOf(subject, ctx.base, ctx.promptedByPersona);
          const cell = kind === 'trained' ? cellOf(subject) : undefined;
          return cell ? (cell.format ? `${cell.method}-${cell.format}` : cell.method) : kind;
        };
        for (const method of [...new Set(scored.map((r) => methodOf(r.subject)))]) {
          const rows = scored.filter((r) => methodOf(r.subject) === method).flatMap(({ subject, records }) => [...records.values()].filter((r) => r.sample.condition === NO_SUFFIX).map((r) => [truthOf(subject), r.score.predicted] as const));
          if (rows.length) Object.assign(overall, classificationMetrics(ctx, `byMethod.${method}`, handle.labels, rows.map((r) => r[0]), rows.map((r) => r[1])).metrics);
        }
        return {
          ...assembleAll(ctx, 'classifier', table),
          overall,
          unparsed: 0,
          judgeAgreement: [],
          plots: { confusion },
          notes: {
            backend: handle.backend,
            trainingReplies: handle.trainingReplies,
            testPrompts: handle.testPrompts.length,
            suffixes: suffixes.length,
            heldOutAccuracy: handle.heldOut.truth.length ? mean(handle.heldOut.truth.map((t, i) => (t === handle.heldOut.predicted[i] ? 1 : 0))) : 'none: the training replies answer one prompt',
          },
        };
      },
    };
    return task;
  },
};
