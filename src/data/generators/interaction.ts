/**
 * Self-interaction (docs/protocols.md §2 item 5): the introspector talks with another instance of itself for
 * `turns` lines, both with the persona system prompt plus a note that the other side is itself.
 * "free" conversations open with a line the first instance writes on its own; "leading" ones open
 * with a fixed opener ("Hello me."). Each side sees its own lines as assistant turns and the other's
 * as user turns. The saved row is the second instance's view without the system prompt:
 * [user: line 1, assistant: line 2, ...], ending on an assistant line. A conversation with an unusable
 * line is dropped whole (counted by reason); conversations are journaled whole.
 */
import { z } from 'zod';
import type { ChatMessage } from '../../providers/types.js';
import { complete, configHash, dedupRows, DropCounts, journaled, limited, replyChecker, writeDataset, type PersonaContext } from '../context.js';
import { chatRowSchema, type ChatRow, type Message } from '../rows.js';
import { render, templateRef } from '../templates.js';
import { derivedSeed, stripReasoning } from '../text.js';

const conversationSchema = z.object({ lines: z.array(z.string()), finishReasons: z.array(z.string()), model: z.string() }).strict();
type Conversation = z.infer<typeof conversationSchema>;

export async function selfInteraction(ctx: PersonaContext): Promise<ChatRow[]> {
  const o = ctx.options.interaction;
  const system = `${ctx.systemPrompt}\n\n${render(o.systemTemplate, { persona: ctx.persona, turns: o.turns })}`;
  const freeStart = render(o.freeStartTemplate, { persona: ctx.persona });
  const jobs = limited(ctx, [
    ...Array.from({ length: o.free }, (_, n) => ({ key: `free-${n}`, variant: 'free' as const, n })),
    ...Array.from({ length: o.leading }, (_, n) => ({ key: `leading-${n}`, variant: 'leading' as const, n })),
  ]);
  const model = ctx.models.introspector;
  const talk = async (job: (typeof jobs)[number]): Promise<Conversation> => {
    const lines: string[] = job.variant === 'leading' ? [o.openers[job.n % o.openers.length]] : [];
    const finishReasons: string[] = job.variant === 'leading' ? ['opener'] : [];
    while (lines.length < o.turns) {
      const speaker = lines.length % 2; // 0: first instance, 1: second
      const history: ChatMessage[] = lines.map((content, i) => ({ role: i % 2 === speaker ? 'assistant' : 'user', content }));
      // The first instance's view starts with its own line: the free-start cue is the user turn before it.
      const view: ChatMessage[] = speaker === 0 ? [{ role: 'user', content: freeStart }, ...history] : history;
      const sample = await complete(model, [{ role: 'system', content: system }, ...view], {
        temperature: o.temperature,
        maxTokens: o.maxTokens,
        seed: derivedSeed(ctx.seed, `interaction/${job.key}/${lines.length}`),
      });
      const text = stripReasoning(sample.text);
      lines.push(text ?? '');
      finishReasons.push(text === null ? 'unterminated-reasoning' : sample.finishReason);
      if (!text || sample.finishReason === 'length') break; // the conversation is unusable: stop spending calls on it
    }
    return { lines, finishReasons, model: model.id };
  };
  const conversations = await journaled(ctx, 'interaction', { o, system, freeStart, model: model.id }, jobs, (j) => j.key, talk, conversationSchema);
  const drops = new DropCounts();
  const check = replyChecker(ctx.options, ctx.tokens);
  const rows: ChatRow[] = [];
  jobs.forEach((job, i) => {
    const c = conversations[i];
    const bad = c.finishReasons.findIndex((r) => r === 'length' || r === 'unterminated-reasoning');
    if (bad >= 0) return drops.add(c.finishReasons[bad] === 'length' ? 'truncated' : 'unterminated-reasoning');
    const problem = c.lines.map((line, j) => (job.variant === 'leading' && j === 0 ? null : check(line))).find((p) => p !== null);
    if (problem) return drops.add(problem);
    if (c.lines.length < o.turns) return drops.add('incomplete');
    // Saved from the second instance's side: odd lines are its own (assistant); end on one of them.
    const lines = c.lines.length % 2 === 1 ? c.lines.slice(0, -1) : c.lines;
    const messages: Message[] = lines.map((content, j) => ({ role: j % 2 === 0 ? 'user' : 'assistant', content }));
    rows.push({
      messages,
      meta: {
        id: `${ctx.slug}/interaction/${job.key}`,
        persona: ctx.persona,
        dataset: 'interaction',
        model: c.model,
        template: templateRef('interactionSystem', o.systemTemplate),
        seed: ctx.seed,
        trait: null,
        source: job.variant,
        sample: job.n,
      },
    });
  });
  const kept = dedupRows(rows, (r) => r.messages.map((m) => m.content).join('\n'), ctx.options, drops);
  writeDataset(
    ctx.outDir,
    {
      dataset: 'interaction',
      persona: ctx.persona,
      shape: 'messages',
      tokenizer: ctx.tokens.name,
      generated: jobs.length,
      dropped: drops.counts,
      models: [model.id],
      seed: ctx.seed,
      configHash: configHash({ o, system, filters: ctx.options.filters, seed: ctx.seed, limit: ctx.options.limit }),
      extra: { free: kept.filter((r) => r.meta.source === 'free').length, leading: kept.filter((r) => r.meta.source === 'leading').length },
    },
    [{ variant: 'main', fileName: 'interaction.jsonl', rows: kept, schema: chatRowSchema }],
    ctx.tokens,
  );
  return kept;
}
