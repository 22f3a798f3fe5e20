/**
 * Training data and training of the persona classifier (docs/protocols.md §4), shared by the classifier and the
 * prefill evals. Training replies come from the base model told to be each persona (and, as the
 * "assistant" class, the base model as it is), on prompts that the evaluation never uses.
 */
import { z } from 'zod';
import { personaSystemPrompt } from '../constitution/index.js';
import { EmbeddingFeaturizer, PersonaClassifier, TfidfFeaturizer } from './classifier.js';
import { generalPromptsSchema, loadEvalData } from './data.js';
import { createRng, hashSeed, shuffle } from './stats.js';
import { kindOf } from './subjects.js';
import { ask, type EvalContext, type Subject } from './types.js';

export const ASSISTANT_LABEL = 'assistant';

export interface PersonaClassifierHandle {
  /** Fitted on every training reply (the classifier's own held-out prompts aside). */
  classifier: PersonaClassifier;
  /**
   * The classifier that scores `subject`: with crossFit, one fitted without the subject's own
   * training replies (never one that saw them); else `classifier`.
   */
  classifierFor(subject: Subject): Promise<PersonaClassifier>;
  labels: string[];
  /** Prompts kept out of training, for the evals to use. */
  testPrompts: string[];
  /** The classifier's own held-out split: the replies to held-out training prompts. */
  heldOut: { truth: string[]; predicted: string[] };
  backend: string;
  trainingReplies: number;
}

const trainingReplySchema = z.object({ label: z.string(), prompt: z.string(), reply: z.string(), owner: z.string().optional().describe('The subject whose replies these are (absent: the generator told to be the label).') }).strict();

/**
 * A fixed, seeded split: held-out prompts come from the eval set's general prompts only (never seen by
 * training-data generation); classifier training uses the rest plus the constitutions' seed questions.
 */
export function splitPrompts(ctx: EvalContext): { test: string[]; train: string[] } {
  const general = shuffle(loadEvalData(ctx.baseDir, ctx.options.generalPrompts, 'general-prompts.json', generalPromptsSchema), createRng(hashSeed(ctx.seed, 'prompt-split')));
  const nTest = Math.min(ctx.options.classifier.testPrompts, Math.ceil(general.length / 2));
  const test = general.slice(0, nTest);
  const train = [...new Set([...general.slice(nTest), ...ctx.constitutions.flatMap((c) => c.traits.flatMap((t) => t.questions))])].filter((p) => !test.includes(p));
  return { test, train };
}

interface TrainingItem {
  label: string;
  i: number;
  prompt: string;
  /** The subject that answers (its own system prompt), or the generator told to be `label`. */
  subject?: Subject;
  systemPrompt?: string;
}

export async function trainPersonaClassifier(ctx: EvalContext): Promise<PersonaClassifierHandle> {
  const o = ctx.options.classifier;
  // runEvals checked that a named generator is one of the subjects.
  const generator = (o.generator ? ctx.subjects.find((s) => s.name === o.generator) : undefined) ?? ctx.base ?? ctx.subjects[0];
  const { test, train } = splitPrompts(ctx);
  const classes: { label: string; systemPrompt?: string }[] = ctx.constitutions.map((c) => ({ label: c.name, systemPrompt: personaSystemPrompt(c) }));
  if (o.includeAssistant) classes.push({ label: ASSISTANT_LABEL });
  const items: TrainingItem[] = classes.flatMap((c) => Array.from({ length: o.repliesPerPersona }, (_, i) => ({ ...c, i, prompt: train[i % train.length] })));
  // Replies from every method: each subject with a persona answers too (trained, steered, capped, ...),
  // except the prompted baselines, whose replies the generator told to be each persona already are.
  const answering = o.crossFit ? ctx.subjects.filter((s) => s.persona !== undefined && s !== generator && classes.some((c) => c.label === s.persona) && kindOf(s, ctx.base, ctx.promptedByPersona) !== 'prompted') : [];
  for (const subject of answering) items.push(...Array.from({ length: o.repliesPerSubject }, (_, i) => ({ label: subject.persona!, i, prompt: train[i % train.length], subject })));
  const journal = ctx.runDir.journal('evals/classifier/training', trainingReplySchema);
  const replies = await journal.runAll(
    items,
    (it) => `${it.subject ? `${it.subject.name}:` : ''}${it.label}/${it.i}-${hashSeed(it.prompt).toString(36)}`,
    async (it) => {
      const params = { temperature: o.temperature, maxTokens: o.maxTokens };
      if (it.subject) return { label: it.label, prompt: it.prompt, owner: it.subject.name, reply: await ask(it.subject, [{ role: 'user', content: it.prompt }], { ...params, seed: hashSeed(ctx.seed, it.subject.name, it.i) }) };
      return { label: it.label, prompt: it.prompt, reply: await ask({ ...generator, systemPrompt: undefined }, [{ role: 'user', content: it.prompt }], { ...params, seed: hashSeed(ctx.seed, it.label, it.i) }, it.systemPrompt) };
    },
    { concurrency: ctx.options.concurrency, onProgress: (done, total) => ctx.onProgress?.({ eval: 'classifier', subject: 'classifier training data', done, total }) },
  );

  // The classifier's own held-out set is split by prompt: no held-out prompt is answered in its training replies.
  const prompts = shuffle([...new Set(replies.map((r) => r.prompt))], createRng(hashSeed(ctx.seed, 'classifier-holdout')));
  const heldPrompts = new Set(prompts.slice(0, Math.min(prompts.length - 1, Math.max(1, Math.round(prompts.length * o.heldOutFraction)))));
  const held = replies.filter((r) => heldPrompts.has(r.prompt));
  const fit = replies.filter((r) => !heldPrompts.has(r.prompt));
  const embedder = o.embedder === 'judge' ? ctx.judges[0]?.model : generator.model;
  if (o.backend === 'embeddings' && !embedder) throw new Error('classifier backend "embeddings" needs a judge model to embed with');
  const fitted = async (without?: string) => {
    const rows = fit.filter((r) => without === undefined || r.owner !== without);
    const classifier = new PersonaClassifier(o.backend === 'embeddings' ? new EmbeddingFeaturizer(embedder!) : new TfidfFeaturizer(), { l2: o.l2, epochs: o.epochs, balanceClasses: o.balanceClasses });
    await classifier.fit(rows.map((r) => r.reply), rows.map((r) => r.label));
    return classifier;
  };
  const classifier = await fitted();
  const owners = new Set(fit.map((r) => r.owner).filter((x): x is string => x !== undefined));
  const bySubject = new Map<string, Promise<PersonaClassifier>>();
  const predicted = await classifier.classify(held.map((r) => r.reply));
  return {
    classifier,
    async classifierFor(subject) {
      if (!o.crossFit || !owners.has(subject.name)) return classifier;
      let c = bySubject.get(subject.name);
      if (!c) bySubject.set(subject.name, (c = fitted(subject.name)));
      return c;
    },
    labels: classes.map((c) => c.label),
    testPrompts: test,
    heldOut: { truth: held.map((r) => r.label), predicted },
    backend: o.backend === 'embeddings' ? `embeddings(${embedder!.id}) + logistic regression` : 'tfidf(word 1-2, char 3-5) + logistic regression',
    trainingReplies: replies.length,
  };
}
