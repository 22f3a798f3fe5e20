/**
 * Capability retention (docs/protocols.md §4): a small fixed set of questions with checkable answers (arithmetic,
 * facts, simple reasoning), scored by code, so persona gains always come with their capability cost
 * (the comparison with the base model).
 */
import { z } from 'zod';
import { capabilityQuestionsSchema, loadEvalData, type CapabilityQuestion } from './data.js';
import { assembleAll, MetricTable } from './metrics.js';
import { ask, type Eval, type EvalContext, type EvalTask, type Reply, replySchema } from './types.js';

const normalise = (s: string) =>
  s
    .toLowerCase()
    .replace(/[*_`"'“”‘’]/g, '')
    .replace(/\s+/g, ' ')
    .trim();

/** The number a reply ends on, with thousands separators removed ("The answer is 1,234." -> 1234). */
function lastNumber(reply: string): number | undefined {
  const all = reply.replace(/(\d),(\d{3})/g, '$1$2').match(/-?\d+(?:\.\d+)?/g);
  return all ? Number(all[all.length - 1]) : undefined;
}

/**
 * Is the reply's answer right? Only the text after the last "Answer:" counts when there is one (else
 * the whole reply). Numeric answers: the last number there must equal it. Text answers: an accepted
 * answer must occur there as a whole phrase.
 */
export function isCorrect(q: Pick<CapabilityQuestion, 'answer' | 'accept'>, reply: string): boolean {
  const accepted = [q.answer, ...(q.accept ?? [])];
  const marked = [...reply.matchAll(/answer\s*(?:is|:)\s*(.+)$/gim)].at(-1);
  const scope = marked ? marked[1] : reply;
  if (accepted.every((a) => /^-?\d+(\.\d+)?$/.test(a.trim()))) {
    const n = lastNumber(scope);
    return n !== undefined && accepted.some((a) => Math.abs(Number(a) - n) < 1e-9);
  }
  const words = (s: string) => normalise(s).replace(/[^\p{L}\p{N} ]/gu, ' ').replace(/\s+/g, ' ').trim();
  const text = ` ${words(scope)} `;
  return accepted.some((a) => text.includes(` ${words(a)} `));
}

const sampleSchema = z.object({ id: z.string(), kind: z.string(), question: z.string(), answer: z.string(), accept: z.array(z.string()).optional() }).strict();

const questionsOf = (ctx: EvalContext) => loadEvalData(ctx.baseDir, ctx.options.capability.questions, 'capability.json', capabilityQuestionsSchema);

export const capabilityEval: Eval = {
  id: 'capability',
  description: 'Accuracy on questions with checkable answers, scored by code.',
  records: { sample: sampleSchema, solved: replySchema, score: z.object({ correct: z.boolean() }).strict() },
  loadData: questionsOf,
  async prepare(ctx) {
    const o = ctx.options.capability;
    const questions = questionsOf(ctx);
    const task: EvalTask<CapabilityQuestion, Reply, { correct: boolean }> = {
      samples: () => questions,
      key: (q) => q.id,
      solve: async (subject, q) => ({
        reply: await ask(subject, [{ role: 'user', content: `${q.question}\nGive your final answer at the end as "Answer: <answer>".` }], { temperature: o.temperature, maxTokens: o.maxTokens }),
      }),
      score: async (_subject, q, solved) => ({ correct: isCorrect(q, solved.reply) }),
      async aggregate(results) {
        const table = new MetricTable();
        for (const { subject, records } of results) {
          for (const [key, r] of records) {
            table.add('accuracy', subject.name, key, r.score.correct ? 1 : 0);
            table.add(`accuracy.${r.sample.kind}`, subject.name, key, r.score.correct ? 1 : 0);
          }
        }
        return { ...assembleAll(ctx, 'capability', table), overall: {}, unparsed: 0, judgeAgreement: [], plots: {}, notes: { questions: questions.length } };
      },
    };
    return task;
  },
};
