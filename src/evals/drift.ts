/**
 * Multi-turn consistency (drift, docs/protocols.md §4). A user simulator (any ChatModel) talks with the subject
 * for T turns. Per turn:
 *   - prompt-to-line: 1 if the persona's line does not contradict its constitution and facts;
 *   - line-to-line: 1 - (earlier lines of the same speaker it conflicts with) / (earlier lines);
 *   - Q&A: share of multiple-choice questions about the persona's facts (facts.qa) answered right,
 *     asked in a side branch after the turn (the conversation itself goes on without them).
 * All normalised to 0-1 and reported per turn so drift over turns can be plotted.
 */
import { z } from 'zod';
import type { Constitution } from '../constitution/index.js';
import type { ChatMessage } from '../providers/types.js';
import { askPanel, panelSchema } from './judging.js';
import { assembleAll, clusterByPrefix, judgeAgreement, metricWithComparisons, MetricTable } from './metrics.js';
import { createRng, hashSeed, shuffle } from './stats.js';
import type { DriftPoint } from './summary.js';
import { ask, samplingSeed, targetsOf, type Eval, type EvalTask } from './types.js';

const LETTERS = 'ABCDEFGH';

/** What the judge knows about the persona: traits and facts. */
export function personaSheet(c: Constitution): string {
  const f = c.facts;
  return [
    `Character: ${c.name}`,
    'Traits:',
    ...c.traits.map((t) => `- ${t.trait}`),
    ...(f?.biography ? [`Biography: ${f.biography}`] : []),
    ...(f?.likes?.length ? [`Likes: ${f.likes.join('; ')}`] : []),
    ...(f?.history?.length ? ['History:', ...f.history.map((h) => `- ${h}`)] : []),
    ...(f?.qa?.length ? ['Facts:', ...f.qa.map((q) => `- ${q.question} ${q.answer}`)] : []),
  ].join('\n');
}

export function promptToLineJudgePrompt(c: Constitution, line: string): string {
  return [
    'Here is the description of a character:',
    personaSheet(c),
    `Here is one line the character said in a conversation:\n<<<\n${line}\n>>>`,
    'Does the line contradict the description (its traits or its facts)? Not mentioning something is not a contradiction.',
    'Answer with a JSON object only: {"contradicts": true} or {"contradicts": false}.',
  ].join('\n\n');
}

export function lineToLineJudgePrompt(earlier: string[], line: string): string {
  return [
    'Here are numbered earlier lines one speaker said in a conversation:',
    earlier.map((l, i) => `[${i + 1}] ${l}`).join('\n'),
    `And here is a later line by the same speaker:\n<<<\n${line}\n>>>`,
    'Which earlier lines does the later line contradict (about facts, opinions or who the speaker is)? Answer with a JSON object only, listing their numbers, e.g. {"conflicts": [2]} or {"conflicts": []}.',
  ].join('\n\n');
}

export interface QaQuestion {
  question: string;
  options: string[];
  correct: string;
}

/** Multiple-choice versions of the persona's fact questions (those with distractors), options shuffled. */
export function qaQuestions(c: Constitution, count: number, seed: number): QaQuestion[] {
  return (c.facts?.qa ?? [])
    .filter((q) => q.distractors?.length)
    .slice(0, count)
    .map((q, i) => {
      const options = shuffle([q.answer, ...q.distractors!].slice(0, LETTERS.length), createRng(hashSeed(seed, c.name, i)));
      return { question: q.question, options, correct: LETTERS[options.indexOf(q.answer)] };
    });
}

export function qaPrompt(q: QaQuestion): string {
  return [`Quick question about yourself: ${q.question}`, ...q.options.map((o, i) => `${LETTERS[i]}. ${o}`), 'Answer with the letter of one option only.'].join('\n');
}

export function parseChoice(reply: string, count: number): string | null {
  const letters = LETTERS.slice(0, count);
  const m = new RegExp(`^\\W*([${letters}])\\b`).exec(reply) ?? new RegExp(`\\b([${letters}])[.)]`).exec(reply) ?? new RegExp(`\\b(?:answer|option)\\s*(?:is|:)?\\s*\\(?([${letters}])\\b`, 'i').exec(reply);
  return m ? m[1].toUpperCase() : null;
}

const turnSchema = z.object({ user: z.string(), reply: z.string(), qa: z.array(z.object({ answer: z.string().nullable(), correct: z.string() }).strict()) }).strict();
const solvedSchema = z.object({ turns: z.array(turnSchema) }).strict();
type Solved = z.infer<typeof solvedSchema>;
const sampleSchema = z.object({ persona: z.string(), conversation: z.number().int() }).strict();
type Sample = z.infer<typeof sampleSchema>;
const contradictsSchema = z.object({ contradicts: z.boolean() });
const conflictsSchema = z.object({ conflicts: z.array(z.number().int()) });
const scoreSchema = z
  .object({ turns: z.array(z.object({ promptToLine: panelSchema(contradictsSchema).nullable(), lineToLine: panelSchema(conflictsSchema).nullable() }).strict()) })
  .strict();
type Score = z.infer<typeof scoreSchema>;

export const driftEval: Eval = {
  id: 'drift',
  description: 'Prompt-to-line, line-to-line and Q&A consistency per turn of a conversation with a user simulator.',
  records: { sample: sampleSchema, solved: solvedSchema, score: scoreSchema },
  async prepare(ctx) {
    const o = ctx.options.drift;
    const simulator = ctx.userSimulator ?? ctx.base?.model;
    if (!simulator) return { skip: 'needs a user simulator (models.userSimulator) or a base subject' };
    const useJudge = ctx.judges.length > 0;
    if (!useJudge && o.qaQuestions === 0) return { skip: 'needs a judge or Q&A questions' };
    const task: EvalTask<Sample, Solved, Score> = {
      samples: (subject) => targetsOf(ctx, subject).flatMap((c) => Array.from({ length: o.conversations }, (_, conversation) => ({ persona: c.name, conversation }))),
      key: (s) => `${s.persona}/${s.conversation}`,
      async solve(subject, s) {
        const c = ctx.constitutions.find((x) => x.name === s.persona)!;
        const questions = qaQuestions(c, o.qaQuestions, ctx.seed);
        const history: ChatMessage[] = [];
        const turns: Solved['turns'] = [];
        for (let t = 0; t < o.turns; t++) {
          const seed = hashSeed(samplingSeed(ctx, subject), s.conversation, t);
          // The simulator sees the conversation from the other side: its own lines are "assistant".
          const flipped: ChatMessage[] = [
            { role: 'system', content: o.userSystemPrompt },
            { role: 'user', content: 'Start the conversation.' },
            ...history.map((m): ChatMessage => ({ role: m.role === 'user' ? 'assistant' : 'user', content: m.content })),
          ];
          const user = (await simulator.chat({ messages: flipped, temperature: o.temperature, maxTokens: o.maxTokens, seed })).choices[0]?.text ?? '';
          history.push({ role: 'user', content: user });
          const reply = await ask(subject, history, { temperature: o.temperature, maxTokens: o.maxTokens, seed });
          history.push({ role: 'assistant', content: reply });
          const asked = [...history];
          const qa = await Promise.all(
            questions.map(async (q) => ({ answer: parseChoice(await ask(subject, [...asked, { role: 'user', content: qaPrompt(q) }], { temperature: 0, maxTokens: 20 }), q.options.length), correct: q.correct })),
          );
          turns.push({ user, reply, qa });
        }
        return { turns };
      },
      async score(_subject, s, solved) {
        if (!useJudge) return { turns: solved.turns.map(() => ({ promptToLine: null, lineToLine: null })) };
        const c = ctx.constitutions.find((x) => x.name === s.persona)!;
        const lines = solved.turns.map((t) => t.reply);
        return {
          turns: await Promise.all(
            lines.map(async (line, t) => ({
              promptToLine: await askPanel(ctx.judges, (j) => j.verdict(promptToLineJudgePrompt(c, line), contradictsSchema)),
              lineToLine: t === 0 ? null : await askPanel(ctx.judges, (j) => j.verdict(lineToLineJudgePrompt(lines.slice(0, t), line), conflictsSchema)),
            })),
          ),
        };
      },
      async aggregate(results) {
        const table = new MetricTable(clusterByPrefix);
        const perTurn = new MetricTable();
        const p2l: Record<string, boolean | null>[] = [];
        let unparsed = 0;
        for (const { subject, records } of results) {
          for (const [key, r] of records) {
            let conflicts = 0;
            let pairs = 0;
            r.solved.turns.forEach((turn, t) => {
              const scored = r.score.turns[t];
              const turnKey = `${key}/${t + 1}`;
              const contradicts = scored.promptToLine?.value?.contradicts;
              if (scored.promptToLine) {
                if (contradicts === undefined) unparsed++;
                p2l.push(Object.fromEntries(Object.entries(scored.promptToLine.byJudge).map(([k, v]) => [k, v?.contradicts ?? null])));
                table.add('promptToLine', subject.name, turnKey, contradicts === undefined ? null : contradicts ? 0 : 1);
                perTurn.add(`promptToLine/${t + 1}`, subject.name, key, contradicts === undefined ? null : contradicts ? 0 : 1);
              }
              if (scored.lineToLine) {
                const list = scored.lineToLine.value?.conflicts;
                if (!list) unparsed++;
                const n = new Set((list ?? []).filter((i) => i >= 1 && i <= t)).size;
                if (list) {
                  conflicts += n;
                  pairs += t;
                }
                perTurn.add(`lineToLine/${t + 1}`, subject.name, key, list ? 1 - n / t : null);
              }
              if (turn.qa.length) {
                const share = turn.qa.filter((q) => q.answer === q.correct).length / turn.qa.length;
                table.add('qa', subject.name, turnKey, share);
                perTurn.add(`qa/${t + 1}`, subject.name, key, share);
              }
            });
            if (pairs > 0) table.add('lineToLine', subject.name, `${key}/all`, 1 - conflicts / pairs);
          }
        }
        const drift: DriftPoint[] = results.flatMap(({ subject }) =>
          Array.from({ length: o.turns }, (_, t) => ({
            subject: subject.name,
            turn: t + 1,
            promptToLine: metricWithComparisons(ctx, 'drift', `promptToLine/${t + 1}`, subject, perTurn),
            lineToLine: metricWithComparisons(ctx, 'drift', `lineToLine/${t + 1}`, subject, perTurn),
            qa: metricWithComparisons(ctx, 'drift', `qa/${t + 1}`, subject, perTurn),
          })),
        );
        return {
          ...assembleAll(ctx, 'drift', table),
          overall: {},
          unparsed,
          judgeAgreement: judgeAgreement(ctx, 'promptToLine', 'kappa', p2l),
          plots: { drift },
          notes: { turns: o.turns, conversations: o.conversations, qaQuestions: o.qaQuestions },
        };
      },
    };
    return task;
  },
};
