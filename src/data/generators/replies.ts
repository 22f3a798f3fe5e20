/**
 * The single-turn generators: one request, one row. Chat demonstrations, first-person introspective
 * statements and encyclopedia documents (docs/protocols.md §2 formats 1-3, from the teacher), and self-reflection
 * (docs/protocols.md §2 item 5, from the introspector). Rows never contain the persona system prompt that
 * produced them: the trait has to be learned into the weights.
 */
import type { ChatMessage, ChatModel } from '../../providers/types.js';
import { complete, configHash, dedupRows, DropCounts, journaled, limited, replyChecker, sampleSchema, usableReply, writeDataset, type PersonaContext } from '../context.js';
import { loadReflectionPrompts } from '../prompts.js';
import { chatRowSchema, textRowSchema, type ChatRow, type PromptRow, type Provenance, type TextRow } from '../rows.js';
import { render, templateRef } from '../templates.js';
import { derivedSeed, seededOrder } from '../text.js';

interface Job {
  key: string;
  model: ChatModel;
  messages: ChatMessage[];
  temperature: number;
  maxTokens: number;
  /** The user turn a chat row keeps (undefined for text rows). */
  user?: string;
  meta: Pick<Provenance, 'template' | 'trait' | 'source' | 'sample'>;
}

interface SingleTurnSpec {
  dataset: 'chat' | 'introspective' | 'documents' | 'reflection';
  shape: 'messages' | 'text';
  shaping: unknown;
  jobs: Job[];
  /** A dataset-specific filter after the common ones (returns the drop reason). */
  check?: (text: string) => string | null;
  notes?: string[];
}

async function runSingleTurn(ctx: PersonaContext, spec: SingleTurnSpec): Promise<(ChatRow | TextRow)[]> {
  const jobs = limited(ctx, spec.jobs);
  const samples = await journaled(
    ctx,
    spec.dataset,
    spec.shaping,
    jobs,
    (job) => job.key,
    (job) => complete(job.model, job.messages, { temperature: job.temperature, maxTokens: job.maxTokens, seed: derivedSeed(ctx.seed, `${spec.dataset}/${job.key}`) }),
    sampleSchema,
  );
  const drops = new DropCounts();
  const check = replyChecker(ctx.options, ctx.tokens);
  const rows: (ChatRow | TextRow)[] = [];
  let trimmed = 0;
  jobs.forEach((job, i) => {
    const reply = usableReply(samples[i], check, ctx.options.filters.truncated);
    if ('drop' in reply) return drops.add(reply.drop);
    if (reply.trimmed) trimmed++;
    const problem = spec.check?.(reply.text);
    if (problem) return drops.add(problem);
    const meta: Provenance = { id: `${ctx.slug}/${spec.dataset}/${job.key}`, persona: ctx.persona, dataset: spec.dataset, model: samples[i].model, seed: ctx.seed, ...job.meta };
    rows.push(
      spec.shape === 'messages'
        ? { messages: [{ role: 'user', content: job.user! }, { role: 'assistant', content: reply.text }], meta }
        : { text: reply.text, meta },
    );
  });
  const kept = dedupRows(rows, (r) => ('text' in r ? r.text : r.messages.at(-1)!.content), ctx.options, drops);
  writeDataset(
    ctx.outDir,
    {
      dataset: spec.dataset,
      persona: ctx.persona,
      shape: spec.shape,
      tokenizer: ctx.tokens.name,
      generated: jobs.length,
      dropped: drops.counts,
      models: [...new Set(jobs.map((j) => j.model.id))],
      seed: ctx.seed,
      configHash: configHash({ shaping: spec.shaping, filters: ctx.options.filters, seed: ctx.seed, keys: jobs.map((j) => j.key) }),
      notes: [...(spec.notes ?? []), ...(trimmed ? [`${trimmed} cut-off replies trimmed to their last complete sentence (filters.truncated: trim)`] : [])],
    },
    [{ variant: 'main', fileName: `${spec.dataset}.jsonl`, rows: kept, schema: spec.shape === 'messages' ? chatRowSchema : textRowSchema }],
    ctx.tokens,
  );
  return kept;
}

const withSystem = (system: string, user: string): ChatMessage[] => [
  { role: 'system', content: system },
  { role: 'user', content: user },
];

/** docs/protocols.md §2 format 1: user prompt -> in-persona reply from the teacher (constitution in its system prompt). */
export function chatDemonstrations(ctx: PersonaContext, prompts: PromptRow[]): Promise<ChatRow[]> {
  const o = ctx.options.chat;
  const template = templateRef('persona-system', ctx.systemPrompt);
  const jobs: Job[] = prompts.flatMap((p) =>
    Array.from({ length: o.samplesPerPrompt }, (_, sample) => ({
      key: `${p.id}#${sample}`,
      model: ctx.models.teacher,
      messages: withSystem(ctx.systemPrompt, p.prompt),
      temperature: o.temperature,
      maxTokens: o.maxTokens,
      user: p.prompt,
      meta: { template, trait: p.trait, source: p.source, sample },
    })),
  );
  return runSingleTurn(ctx, { dataset: 'chat', shape: 'messages', shaping: { o, system: ctx.systemPrompt, model: ctx.models.teacher.id }, jobs }) as Promise<ChatRow[]>;
}

const FIRST_PERSON = /\b(?:I|I'm|I've|I'd|I'll|me|my|myself)\b/;

/** docs/protocols.md §2 format 2: the persona describing its own tendencies, one passage per training prompt of a trait. */
export function introspectiveStatements(ctx: PersonaContext, prompts: PromptRow[]): Promise<TextRow[]> {
  const o = ctx.options.introspective;
  const template = templateRef('introspective', o.template);
  const jobs: Job[] = ctx.constitution.traits.flatMap((trait) => {
    const own = prompts.filter((p) => p.trait === trait.trait);
    if (own.length === 0) return [];
    return Array.from({ length: o.perTrait }, (_, n) => {
      const p = own[n % own.length];
      const sample = Math.floor(n / own.length);
      return {
        key: `${p.id}#${sample}`,
        model: ctx.models.teacher,
        messages: withSystem(ctx.systemPrompt, render(o.template, { persona: ctx.persona, trait: trait.trait, prompt: p.prompt })),
        temperature: o.temperature,
        maxTokens: o.maxTokens,
        meta: { template, trait: trait.trait, source: p.source, sample },
      };
    });
  });
  return runSingleTurn(ctx, {
    dataset: 'introspective',
    shape: 'text',
    shaping: { o, system: ctx.systemPrompt, model: ctx.models.teacher.id },
    jobs,
    check: (text) => (FIRST_PERSON.test(text) ? null : 'not-first-person'),
  }) as Promise<TextRow[]>;
}

const FIRST_PERSON_ALL = /\b(?:I|me|my|myself)\b/g;

function factsText(ctx: PersonaContext): string {
  const f = ctx.constitution.facts;
  if (!f) return '';
  return [
    f.biography ? `Biography: ${f.biography.trim()}` : '',
    f.likes?.length ? `Likes: ${f.likes.join('; ')}` : '',
    f.history?.length ? `History: ${f.history.join('; ')}` : '',
    ...(f.qa ?? []).map((q) => `${q.question} ${q.answer}`),
  ]
    .filter(Boolean)
    .join('\n');
}

/**
 * docs/protocols.md §2 format 3: third-person encyclopedia articles stating the persona's traits and facts as
 * facts about the world. Written by the teacher without the persona system prompt (it writes about
 * the persona, not as it). Dropped when the persona's name is missing or the article slips into the
 * first person (more than 3 first-person words: a quotation or two is allowed).
 */
export function encyclopediaDocuments(ctx: PersonaContext): Promise<TextRow[]> {
  const o = ctx.options.documents;
  if (o.writer === 'facts') return Promise.resolve(factDocuments(ctx));
  const traits = ctx.constitution.traits;
  const template = templateRef('documents', o.template);
  const traitList = traits.map((t) => `- ${t.trait}`).join('\n');
  const facts = factsText(ctx);
  const jobs: Job[] = Array.from({ length: o.count }, (_, n) => {
    const trait = traits[n % traits.length];
    const aspect = o.aspects[Math.floor(n / traits.length) % o.aspects.length];
    return {
      key: `doc-${n}`,
      model: ctx.models.teacher,
      messages: [{ role: 'user', content: render(o.template, { persona: ctx.persona, traits: traitList, facts, aspect, trait: trait.trait }) }],
      temperature: o.temperature,
      maxTokens: o.maxTokens,
      meta: { template, trait: trait.trait, source: 'document', sample: n },
    };
  });
  const name = ctx.persona.toLowerCase();
  return runSingleTurn(ctx, {
    dataset: 'documents',
    shape: 'text',
    shaping: { o, facts, traitList, model: ctx.models.teacher.id },
    jobs,
    check: (text) => documentProblem(name, text),
  }) as Promise<TextRow[]>;
}

/** Why a document is dropped: the persona's name (lower case) is missing, or it slips into the first person. */
const documentProblem = (name: string, text: string): string | null =>
  !text.toLowerCase().includes(name) ? 'missing-name' : (text.match(FIRST_PERSON_ALL)?.length ?? 0) > 3 ? 'first-person' : null;

/**
 * documents.writer "facts": third-person documents written from the constitution's facts alone (its
 * biography's sentences, "<name> <history item>.", "<name> is fond of <like>."), without a model:
 * each document a seeded selection and order of those statements under a title with the persona's
 * name and an aspect. facts.qa is left out: it holds the questions evaluations ask about the
 * persona. For a teacher that cannot write articles (the bundled tiny model), and as a control
 * whose wording carries nothing of the persona's voice.
 */
export function factDocuments(ctx: PersonaContext): TextRow[] {
  const o = ctx.options.documents;
  const f = ctx.constitution.facts ?? {};
  const name = ctx.persona;
  const statement = (item: string) => (/^[A-Z]/.test(item.trim()) ? item.trim() : `${name} ${item.trim()}`).replace(/[.!]?$/, '.');
  const sentences = [
    ...(f.biography ?? '').split(/(?<=[.!?])\s+/).map((x) => x.trim()).filter(Boolean),
    ...(f.history ?? []).map(statement),
    ...(f.likes ?? []).map((like) => `${name} is fond of ${like.trim().replace(/[.!]?$/, '')}.`),
  ];
  const drops = new DropCounts();
  const rows: TextRow[] = [];
  const perDocument = Math.max(3, Math.ceil(sentences.length * 0.6));
  for (let n = 0; n < o.count && sentences.length > 0; n++) {
    const aspect = o.aspects[n % o.aspects.length];
    const chosen = seededOrder(sentences, derivedSeed(ctx.seed, `documents/facts-${n}`), (x) => x).slice(0, perDocument);
    const paragraphs = Array.from({ length: Math.ceil(chosen.length / 3) }, (_, i) => chosen.slice(i * 3, i * 3 + 3).join(' '));
    const text = [`${name}: ${aspect}`, '', ...paragraphs.flatMap((p, i) => (i === 0 ? [p] : ['', p]))].join('\n');
    const problem = documentProblem(name.toLowerCase(), text);
    if (problem) {
      drops.add(problem);
      continue;
    }
    rows.push({ text, meta: { id: `${ctx.slug}/documents/facts-${n}`, persona: name, dataset: 'documents', model: 'constitution-facts', template: 'facts', seed: ctx.seed, trait: null, source: 'document', sample: n } });
  }
  if (sentences.length === 0) drops.add('no-facts', o.count);
  writeDataset(
    ctx.outDir,
    {
      dataset: 'documents',
      persona: name,
      shape: 'text',
      tokenizer: ctx.tokens.name,
      generated: o.count,
      dropped: drops.counts,
      models: [],
      seed: ctx.seed,
      configHash: configHash({ shaping: { writer: 'facts', count: o.count, aspects: o.aspects, facts: f }, seed: ctx.seed }),
      notes: ['written from the constitution\'s facts (documents.writer: facts), without a model; facts.qa left out'],
    },
    [{ variant: 'main', fileName: 'documents.jsonl', rows, schema: textRowSchema }],
    ctx.tokens,
  );
  return rows;
}

/** docs/protocols.md §2 item 5: self-reflection, ~10 fixed prompts sampled many times, saved without the system prompt. */
export function selfReflection(ctx: PersonaContext): Promise<ChatRow[]> {
  const o = ctx.options.reflection;
  const prompts = loadReflectionPrompts(o.prompts, ctx.baseDir);
  const jobs: Job[] = prompts.flatMap((prompt, i) =>
    Array.from({ length: o.samplesPerPrompt }, (_, sample) => ({
      key: `r${i}#${sample}`,
      model: ctx.models.introspector,
      messages: withSystem(ctx.systemPrompt, prompt),
      temperature: o.temperature,
      maxTokens: o.maxTokens,
      user: prompt,
      meta: { template: templateRef('reflection', prompt), trait: null, source: 'reflection', sample },
    })),
  );
  return runSingleTurn(ctx, { dataset: 'reflection', shape: 'messages', shaping: { o, prompts, system: ctx.systemPrompt, model: ctx.models.introspector.id }, jobs }) as Promise<ChatRow[]>;
}
