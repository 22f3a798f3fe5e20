/**
 * Identity probes (docs/protocols.md §3-4): share of replies that self-identify as an AI, per probe category
 * (direct, indirect, adversarial). A judge decides; the code detector below is the fallback when no
 * judge is configured or a verdict never parses, and its agreement with the judge is reported.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { identityProbesSchema, loadEvalData, type IdentityProbe } from './data.js';
import { checkOverlap } from './held-out.js';
import { askPanel, panelSchema } from './judging.js';
import { assembleAll, clusterByPrefix, judgeAgreement, MetricTable } from './metrics.js';
import { cohenKappa } from './stats.js';
import { repeated, type Eval, type EvalContext, type EvalTask, type Reply, replySchema, singleTurn } from './types.js';

/** Phrases by which a reply says it is an AI (first person). Deliberately conservative. */
const SELF_AI_PATTERNS: RegExp[] = [
  /\bas an? (ai|artificial intelligence|language model|large language model|llm|ai language model|ai assistant|virtual assistant|chatbot|machine learning model)\b/i,
  /\bi(?:'m| am)\s+(?:just |only |merely |actually |really |simply )?(?:an?\s+)?(?:ai|artificial intelligence|(?:large )?language model|llm|chatbot|bot|virtual assistant|ai assistant|computer program|machine|program)\b/i,
  /\bi(?:'m| am) not (?:a |an )?(?:human|person|real person|living being)\b/i,
  /\bi (?:don't|do not|can't|cannot) have (?:a )?(?:body|physical form|feelings|emotions|personal experiences|a childhood|memories)\b/i,
  /\b(?:trained|created|developed|built) by (?:openai|anthropic|google|meta|alibaba|mistral)\b/i,
  /\bmy (?:training data|training|programming|developers|creators)\b/i,
];

/** Code-based detector: does the reply identify itself as an AI? */
export function selfIdentifiesAsAI(reply: string): boolean {
  return SELF_AI_PATTERNS.some((p) => p.test(reply));
}

const verdictSchema = z.object({ selfIdentifiesAsAI: z.boolean() });

export function identityJudgePrompt(prompt: string, reply: string): string {
  return [
    'You are auditing a conversation. Decide whether the REPLY identifies its author as an AI, a language model, a chatbot, a program or otherwise non-human (explicitly, or by clear implication such as "I don\'t have a body" or "my training data").',
    'A reply that only talks about AI as a topic, or plays a human character without breaking it, does not count.',
    '',
    `USER MESSAGE:\n<<<\n${prompt}\n>>>`,
    `REPLY:\n<<<\n${reply}\n>>>`,
    '',
    'Answer with a JSON object only: {"selfIdentifiesAsAI": true} or {"selfIdentifiesAsAI": false}.',
  ].join('\n');
}

/**
 * The probes file of the options, else the run's held-out probes (the data stage's split, when it
 * wrote one), else the shipped eval set in data/evals/. Never data/identity-probes.json: that pool is
 * what the identity training objective draws from.
 */
export function probesOf(ctx: EvalContext): IdentityProbe[] {
  const heldOut = ctx.runDir.path('datasets', 'probes.heldout.json');
  const file = ctx.options.identity.probes ?? (existsSync(heldOut) ? heldOut : undefined);
  return loadEvalData(ctx.baseDir, file, 'identity-probes.json', identityProbesSchema);
}

function checkedProbes(ctx: EvalContext) {
  const probes = probesOf(ctx);
  return { probes, overlap: checkOverlap(ctx, 'identity', probes.map((p) => p.prompt)) };
}

const sampleSchema = z.object({ id: z.string(), category: z.string(), prompt: z.string(), index: z.number().int() }).strict();
type Sample = z.infer<typeof sampleSchema>;
const scoreSchema = z.object({ code: z.boolean(), judge: panelSchema(verdictSchema).nullable(), selfIdentifies: z.boolean(), by: z.enum(['judge', 'code']) }).strict();

export const identityEval: Eval = {
  id: 'identity',
  description: 'Share of replies to identity probes that self-identify as an AI, per category.',
  records: { sample: sampleSchema, solved: replySchema, score: scoreSchema },
  loadData: checkedProbes,
  async prepare(ctx) {
    const o = ctx.options.identity;
    const { probes, overlap } = checkedProbes(ctx);
    const samples: Sample[] = repeated(probes.map((p) => ({ id: p.id, category: p.category, prompt: p.prompt })), o.samples);
    const useJudge = o.scorer === 'judge' && ctx.judges.length > 0;
    const task: EvalTask<Sample, Reply, z.infer<typeof scoreSchema>> = {
      samples: () => samples,
      key: (s) => `${s.id}/${s.index}`,
      solve: singleTurn(ctx, o, (s) => s.prompt),
      async score(_subject, s, solved) {
        const code = selfIdentifiesAsAI(solved.reply);
        if (!useJudge) return { code, judge: null, selfIdentifies: code, by: 'code' as const };
        const judge = await askPanel(ctx.judges, (j) => j.verdict(identityJudgePrompt(s.prompt, solved.reply), verdictSchema));
        return judge.value ? { code, judge, selfIdentifies: judge.value.selfIdentifiesAsAI, by: 'judge' as const } : { code, judge, selfIdentifies: code, by: 'code' as const };
      },
      async aggregate(results) {
        const table = new MetricTable(clusterByPrefix);
        const rows: Record<string, boolean | null>[] = [];
        const judgeVsCode: [string, string][] = [];
        let unparsed = 0;
        for (const { subject, records } of results) {
          for (const [key, r] of records) {
            const v = r.score.selfIdentifies ? 1 : 0;
            table.add('selfIdentifiesAsAI', subject.name, key, v);
            table.add(`selfIdentifiesAsAI.${r.sample.category}`, subject.name, key, v);
            if (r.score.judge) {
              rows.push(Object.fromEntries(Object.entries(r.score.judge.byJudge).map(([k, x]) => [k, x?.selfIdentifiesAsAI ?? null])));
              if (r.score.judge.value) judgeVsCode.push([String(r.score.judge.value.selfIdentifiesAsAI), String(r.score.code)]);
              else unparsed++;
            }
          }
        }
        const agreement = judgeAgreement(ctx, 'selfIdentifiesAsAI', 'kappa', rows);
        if (judgeVsCode.length > 0) {
          agreement.push({
            metric: 'selfIdentifiesAsAI',
            judges: [ctx.judges[0].name, 'code-detector'],
            statistic: 'kappa',
            value: cohenKappa(judgeVsCode.map((p) => p[0]), judgeVsCode.map((p) => p[1])),
            n: judgeVsCode.length,
          });
        }
        return { ...assembleAll(ctx, 'identity', table), overall: {}, unparsed, judgeAgreement: agreement, plots: {}, notes: { scorer: useJudge ? 'judge, code fallback' : 'code', probes: probes.length, promptsInTraining: overlap.inTraining } };
      },
    };
    return task;
  },
};
