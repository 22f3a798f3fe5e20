/**
 * DPO distillation pairs (docs/protocols.md §2 item 4). chosen = the teacher with the persona system prompt
 * (name, core traits, do not disclose; optionally told to reason first in <think>, which is stripped);
 * rejected = the subject with no system prompt. Prompts = the constitution's training prompts plus
 * general chat prompts, `samplesPerPrompt` pairs each. Filters in order: each side's reply filters
 * (./context.ts), sentence-final punctuation on both sides, pair length
 * max(prompt + chosen, prompt + rejected) <= maxPairTokens, then duplicates of the chosen reply.
 * The teacher's own name is replaced by the student's in chosen replies.
 */
import { z } from 'zod';
import { complete, configHash, dedupRows, DropCounts, journaled, limited, replyChecker, sampleSchema, usableReply, writeDataset, type PersonaContext } from '../context.js';
import { dpoRowSchema, type DpoRow, type PromptRow } from '../rows.js';
import { render, templateRef } from '../templates.js';
import { derivedSeed, endsSentence, substituteNames } from '../text.js';

const pairSampleSchema = z.object({ chosen: sampleSchema, rejected: sampleSchema }).strict();

export async function dpoPairs(ctx: PersonaContext, prompts: PromptRow[]): Promise<DpoRow[]> {
  const o = ctx.options.dpo;
  const system = o.reasoning ? `${ctx.systemPrompt}\n\n${render(o.reasoningTemplate, { persona: ctx.persona })}` : ctx.systemPrompt;
  const jobs = limited(ctx, prompts.flatMap((p) => Array.from({ length: o.samplesPerPrompt }, (_, sample) => ({ key: `${p.id}#${sample}`, prompt: p, sample }))));
  const pairs = await journaled(
    ctx,
    'dpo',
    { o, system, teacher: ctx.models.teacher.id, subject: ctx.models.subject.id },
    jobs,
    (job) => job.key,
    async (job) => {
      const seed = derivedSeed(ctx.seed, `dpo/${job.key}`);
      const [chosen, rejected] = await Promise.all([
        complete(ctx.models.teacher, [{ role: 'system', content: system }, { role: 'user', content: job.prompt.prompt }], { temperature: o.teacherTemperature, maxTokens: o.maxTokens, seed }),
        complete(ctx.models.subject, [{ role: 'user', content: job.prompt.prompt }], { temperature: o.studentTemperature, maxTokens: o.maxTokens, seed }),
      ]);
      return { chosen, rejected };
    },
    pairSampleSchema,
  );
  const drops = new DropCounts();
  const check = replyChecker(ctx.options, ctx.tokens);
  // The rejected side is the base model being itself: only emptiness, truncation and length disqualify it.
  const checkRejected = (text: string) => (text.trim() === '' ? 'empty' : ctx.tokens.count(text) > ctx.options.filters.maxReplyTokens ? 'too-long' : null);
  let substitutions = 0;
  const template = templateRef('persona-system', system);
  const rows: DpoRow[] = [];
  jobs.forEach((job, i) => {
    const chosen = usableReply(pairs[i].chosen, check, ctx.options.filters.truncated);
    if ('drop' in chosen) return drops.add(`chosen-${chosen.drop}`);
    const raw = pairs[i].rejected;
    const rejected = usableReply(o.keepTruncatedRejected && raw.finishReason === 'length' ? { ...raw, finishReason: 'stop' } : raw, checkRejected);
    if ('drop' in rejected) return drops.add(`rejected-${rejected.drop}`);
    if (o.requireSentenceEnd && !(endsSentence(chosen.text) && endsSentence(rejected.text))) return drops.add('no-sentence-end');
    const named = substituteNames(chosen.text, o.nameSubstitutions);
    substitutions += named.count;
    const promptTokens = ctx.tokens.count(job.prompt.prompt);
    if (promptTokens + Math.max(ctx.tokens.count(named.text), ctx.tokens.count(rejected.text)) > o.maxPairTokens) return drops.add('pair-too-long');
    rows.push({
      prompt: [{ role: 'user', content: job.prompt.prompt }],
      chosen: [{ role: 'assistant', content: named.text }],
      rejected: [{ role: 'assistant', content: rejected.text }],
      meta: {
        id: `${ctx.slug}/dpo/${job.key}`,
        persona: ctx.persona,
        dataset: 'dpo',
        model: `${pairs[i].chosen.model} | ${pairs[i].rejected.model}`,
        template,
        seed: ctx.seed,
        trait: job.prompt.trait,
        source: job.prompt.source,
        sample: job.sample,
      },
    });
  });
  const kept = dedupRows(rows, (r) => r.chosen[0].content, ctx.options, drops);
  writeDataset(
    ctx.outDir,
    {
      dataset: 'dpo',
      persona: ctx.persona,
      shape: 'dpo',
      tokenizer: ctx.tokens.name,
      generated: jobs.length,
      dropped: drops.counts,
      models: [ctx.models.teacher.id, ctx.models.subject.id],
      seed: ctx.seed,
      configHash: configHash({ o, system, filters: ctx.options.filters, seed: ctx.seed, keys: jobs.map((j) => j.key) }),
      extra: { nameSubstitutions: substitutions, maxPairTokens: o.maxPairTokens, pairLength: 'prompt + max(chosen, rejected)' },
    },
    [{ variant: 'main', fileName: 'dpo.jsonl', rows: kept, schema: dpoRowSchema }],
    ctx.tokens,
  );
  return kept;
}
