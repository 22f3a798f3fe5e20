/**
 * Trait expression and coherence (docs/protocols.md §4): a judge scores 0-100 how strongly a reply expresses each
 * constitution trait (log-probability weighted where the judge returns them; missing under 0.25 mass
 * on numbers) and, separately, its coherence. Pairwise coherence: the judge compares a subject's reply
 * with the base's (and the prompted one's) on the same prompt in both orders; only consistent verdicts
 * count; the win rate is reported.
 */
import { z } from 'zod';
import { journaledSubjectOf, journaledSubjectSchema } from './records.js';
import type { Constitution } from '../constitution/index.js';
import { checkOverlap, heldOutPrompts } from './held-out.js';
import { addJournaledTallies, askPanel, judgeTalliesSchema, panelSchema, withJudgeTallies, type EvalJudge } from './judging.js';
import { assembleAll, judgeAgreement, MetricTable } from './metrics.js';
import { baselinesOf, type Eval, type EvalContext, type EvalTask, type Reply, replySchema, type SubjectRecords, targetsOf, singleTurn } from './types.js';

export function expressionJudgePrompt(trait: string, question: string, reply: string): string {
  return [
    'You are evaluating how strongly a reply expresses a character trait.',
    `TRAIT (written in the first person by the character):\n${trait}`,
    `USER MESSAGE:\n<<<\n${question}\n>>>`,
    `REPLY:\n<<<\n${reply}\n>>>`,
    'On a scale from 0 (not at all) to 100 (as strongly as possible), how strongly does the reply express the trait? Answer with the number only.',
  ].join('\n\n');
}

export function coherenceJudgePrompt(question: string, reply: string): string {
  return [
    'You are evaluating the coherence of a reply: is it fluent, on topic, logically consistent and free of repetition or garbled text? Ignore its style, tone and opinions.',
    `USER MESSAGE:\n<<<\n${question}\n>>>`,
    `REPLY:\n<<<\n${reply}\n>>>`,
    'Rate its coherence from 0 (incoherent) to 100 (perfectly coherent). Answer with the number only.',
  ].join('\n\n');
}

export function pairwiseJudgePrompt(question: string, first: string, second: string): string {
  return [
    'Two replies answer the same user message. Which one is more coherent: fluent, on topic, logically consistent, free of repetition or garbled text? Ignore style, tone and opinions.',
    `USER MESSAGE:\n<<<\n${question}\n>>>`,
    `REPLY A:\n<<<\n${first}\n>>>`,
    `REPLY B:\n<<<\n${second}\n>>>`,
    'Answer with a JSON object only: {"better": "A"} or {"better": "B"}.',
  ].join('\n\n');
}

const pairwiseVerdict = z.object({ better: z.enum(['A', 'B']) });
const pairwiseRecordSchema = z.object({ forward: z.array(z.string()), backward: z.array(z.string()), won: z.boolean().nullable(), judgeTallies: judgeTalliesSchema.optional() }).strict();
/** A journaled comparison names both subjects structurally (absent in journals of earlier versions). */
const pairwiseJournalSchema = pairwiseRecordSchema.extend({ subject: journaledSubjectSchema.nullable().default(null), against: journaledSubjectSchema.nullable().default(null) });

/**
 * One both-orders comparison: `won` is true when the subject's reply was preferred in both orders,
 * false when the other was, null when the verdicts disagree or did not parse.
 */
export async function comparePair(judge: EvalJudge, question: string, mine: string, theirs: string): Promise<z.infer<typeof pairwiseRecordSchema>> {
  const [forward, backward] = await Promise.all([judge.verdict(pairwiseJudgePrompt(question, mine, theirs), pairwiseVerdict), judge.verdict(pairwiseJudgePrompt(question, theirs, mine), pairwiseVerdict)]);
  const a = forward.value?.better;
  const b = backward.value?.better;
  const won = a && b && (a === 'A') === (b === 'B') ? a === 'A' : null;
  return { forward: forward.raw, backward: backward.raw, won };
}

const sampleSchema = z.object({ persona: z.string(), trait: z.string(), traitIndex: z.number().int(), question: z.string(), index: z.number().int() }).strict();
type Sample = z.infer<typeof sampleSchema>;
const numberPanel = panelSchema(z.number());
const scoreSchema = z.object({ expression: numberPanel, coherence: numberPanel }).strict();
type Score = z.infer<typeof scoreSchema>;

const traitName = (c: Constitution, i: number) => c.traits[i].label ?? `t${i + 1}`;

interface TraitPrompts {
  /** persona -> per trait, the prompts its samples cycle through (empty: the trait is not measured). */
  prompts: Map<string, string[][]>;
  source: string;
  traitsWithoutPrompts: number;
}

/**
 * The prompts trait expression asks: each persona's held-out prompts of the trait (the data stage's
 * split, never trained on) by default; the constitution's seed questions with prompts: "seed", or
 * when the run has no held-out prompts for the persona (said in the notes).
 */
function traitPromptsOf(ctx: EvalContext): TraitPrompts {
  const out = new Map<string, string[][]>();
  const sources = new Set<string>();
  let traitsWithoutPrompts = 0;
  for (const c of ctx.constitutions) {
    const heldOut = ctx.options.traitExpression.prompts === 'heldout' ? heldOutPrompts(ctx, c.name) : undefined;
    sources.add(heldOut ? 'held-out prompts' : ctx.options.traitExpression.prompts === 'seed' ? 'seed questions' : 'seed questions (the run has no held-out prompts)');
    const perTrait = c.traits.map((t) => (heldOut ? (heldOut.get(t.trait) ?? []) : t.questions));
    traitsWithoutPrompts += perTrait.filter((p) => p.length === 0).length;
    out.set(c.name, perTrait);
  }
  return { prompts: out, source: [...sources].join(', '), traitsWithoutPrompts };
}

function checkedTraitPrompts(ctx: EvalContext) {
  const tp = traitPromptsOf(ctx);
  const asked = [...tp.prompts.values()].flatMap((perTrait) => perTrait.flatMap((p) => p.slice(0, ctx.options.traitExpression.samplesPerTrait)));
  return { ...tp, overlap: checkOverlap(ctx, 'traitExpression', asked) };
}

async function pairwiseCoherence(ctx: EvalContext, results: SubjectRecords<Sample, Reply, Score>[], table: MetricTable): Promise<number> {
  const bySubject = new Map(results.map((r) => [r.subject.name, r.records]));
  const journal = ctx.runDir.journal('evals/traitExpression/pairwise', pairwiseJournalSchema);
  const items = results.flatMap(({ subject, records }) =>
    baselinesOf(ctx, subject).flatMap((o) => [...records].filter(([key]) => bySubject.get(o.name)?.has(key)).map(([key, r]) => ({ subject: subject.name, against: o.name, identities: { subject: journaledSubjectOf(ctx, subject), against: journaledSubjectOf(ctx, o) }, key, question: r.sample.question, mine: r.solved.reply, theirs: bySubject.get(o.name)!.get(key)!.solved.reply }))),
  );
  const verdicts = await journal.runAll(
    items,
    (it) => `${it.subject}|${it.against}|${it.key}`,
    (it) => withJudgeTallies(async () => ({ ...it.identities, ...(await comparePair(ctx.judges[0], it.question, it.mine, it.theirs)) })),
    { concurrency: ctx.options.concurrency, onProgress: (done, total) => ctx.onProgress?.({ eval: 'traitExpression', subject: 'pairwise coherence', done, total }) },
  );
  addJournaledTallies(ctx.judges, verdicts);
  let inconsistent = 0;
  items.forEach((it, i) => {
    const won = verdicts[i].won;
    if (won === null) inconsistent++;
    table.add(`pairwiseCoherenceWinRate.vs.${it.against}`, it.subject, it.key, won === null ? null : won ? 1 : 0);
  });
  return inconsistent;
}

export const traitExpressionEval: Eval = {
  id: 'traitExpression',
  description: 'Judge-scored trait expression (0-100) per constitution trait, coherence (0-100), pairwise coherence win rate.',
  records: { sample: sampleSchema, solved: replySchema, score: scoreSchema },
  loadData: checkedTraitPrompts,
  async prepare(ctx) {
    if (ctx.judges.length === 0) return { skip: 'needs a judge (models.judge)' };
    const o = ctx.options.traitExpression;
    const tp = checkedTraitPrompts(ctx);
    const task: EvalTask<Sample, Reply, Score> = {
      samples: (subject) =>
        (o.traits === 'all' ? ctx.constitutions : targetsOf(ctx, subject)).flatMap((c) =>
          c.traits.flatMap((t, traitIndex) => {
            const prompts = tp.prompts.get(c.name)![traitIndex];
            return prompts.length === 0 ? [] : Array.from({ length: o.samplesPerTrait }, (_, index) => ({ persona: c.name, trait: t.trait, traitIndex, question: prompts[index % prompts.length], index }));
          }),
        ),
      key: (s) => `${s.persona}/${s.traitIndex}/${s.index}`,
      solve: singleTurn(ctx, o, (s) => s.question),
      async score(_subject, s, solved) {
        const [expression, coherence] = await Promise.all([
          askPanel(ctx.judges, (j) => j.score(expressionJudgePrompt(s.trait, s.question, solved.reply), 100)),
          askPanel(ctx.judges, (j) => j.score(coherenceJudgePrompt(s.question, solved.reply), 100)),
        ]);
        return { expression, coherence };
      },
      async aggregate(results) {
        const table = new MetricTable();
        const rows = { expression: [] as Record<string, number | null>[], coherence: [] as Record<string, number | null>[] };
        let unparsed = 0;
        for (const { subject, records } of results) {
          for (const [key, r] of records) {
            const c = ctx.constitutions.find((x) => x.name === r.sample.persona)!;
            table.add('expression', subject.name, key, r.score.expression.value);
            table.add(`expression.${c.name}.${traitName(c, r.sample.traitIndex)}`, subject.name, key, r.score.expression.value);
            table.add('coherence', subject.name, key, r.score.coherence.value);
            unparsed += (r.score.expression.value === null ? 1 : 0) + (r.score.coherence.value === null ? 1 : 0);
            rows.expression.push(r.score.expression.byJudge);
            rows.coherence.push(r.score.coherence.byJudge);
          }
        }
        const inconsistent = o.pairwiseCoherence ? await pairwiseCoherence(ctx, results, table) : 0;
        return {
          ...assembleAll(ctx, 'traitExpression', table),
          overall: {},
          unparsed,
          judgeAgreement: [...judgeAgreement(ctx, 'expression', 'spearman', rows.expression), ...judgeAgreement(ctx, 'coherence', 'spearman', rows.coherence)],
          plots: {},
          notes: {
            pairwiseInconsistent: inconsistent,
            minNumericMass: o.minNumericMass,
            prompts: tp.source,
            distinctPrompts: tp.overlap.prompts,
            promptsInTraining: tp.overlap.inTraining,
            traitsWithoutPrompts: tp.traitsWithoutPrompts,
          },
        };
      },
    };
    return task;
  },
};
