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
import { ask, type EvalContext } from './types.js';

export const ASSISTANT_LABEL = 'assistant';

export interface PersonaClassifierHandle {
  classifier: PersonaClassifier;
  labels: string[];
  /** Prompts kept out of training, for the evals to use. */
  testPrompts: string[];
  /** The classifier's own held-out split. */
  heldOut: { truth: string[]; predicted: string[] };
  backend: string;
  trainingReplies: number;
}

const trainingReplySchema = z.object({ label: z.string(), prompt: z.string(), reply: z.string() }).strict();

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

export async function trainPersonaClassifier(ctx: EvalContext): Promise<PersonaClassifierHandle> {
  const o = ctx.options.classifier;
  // runEvals checked that a named generator is one of the subjects.
  const generator = (o.generator ? ctx.subjects.find((s) => s.name === o.generator) : undefined) ?? ctx.base ?? ctx.subjects[0];
  const { test, train } = splitPrompts(ctx);
  const classes: { label: string; systemPrompt?: string }[] = ctx.constitutions.map((c) => ({ label: c.name, systemPrompt: personaSystemPrompt(c) }));
  if (o.includeAssistant) classes.push({ label: ASSISTANT_LABEL });
  const items = classes.flatMap((c) => Array.from({ length: o.repliesPerPersona }, (_, i) => ({ ...c, i, prompt: train[i % train.length] })));
  const journal = ctx.runDir.journal('evals/classifier/training', trainingReplySchema);
  const replies = await journal.runAll(
    items,
    (it) => `${it.label}/${it.i}-${hashSeed(it.prompt).toString(36)}`,
    async (it) => ({
      label: it.label,
      prompt: it.prompt,
      reply: await ask({ ...generator, systemPrompt: undefined }, [{ role: 'user', content: it.prompt }], { temperature: o.temperature, maxTokens: o.maxTokens, seed: hashSeed(ctx.seed, it.label, it.i) }, it.systemPrompt),
    }),
    { concurrency: ctx.options.concurrency, onProgress: (done, total) => ctx.onProgress?.({ eval: 'classifier', subject: 'classifier training data', done, total }) },
  );

  const order = shuffle(replies, createRng(hashSeed(ctx.seed, 'classifier-holdout')));
  const nHeld = Math.max(1, Math.round(order.length * o.heldOutFraction));
  const held = order.slice(0, nHeld);
  const fit = order.slice(nHeld);
  const embedder = o.embedder === 'judge' ? ctx.judges[0]?.model : generator.model;
  if (o.backend === 'embeddings' && !embedder) throw new Error('classifier backend "embeddings" needs a judge model to embed with');
  const featurizer = o.backend === 'embeddings' ? new EmbeddingFeaturizer(embedder!) : new TfidfFeaturizer();
  const classifier = new PersonaClassifier(featurizer, { l2: o.l2, epochs: o.epochs });
  await classifier.fit(
    fit.map((r) => r.reply),
    fit.map((r) => r.label),
  );
  const predicted = await classifier.classify(held.map((r) => r.reply));
  return {
    classifier,
    labels: classes.map((c) => c.label),
    testPrompts: test,
    heldOut: { truth: held.map((r) => r.label), predicted },
    backend: o.backend === 'embeddings' ? `embeddings(${embedder!.id}) + logistic regression` : 'tfidf(word 1-2, char 3-5) + logistic regression',
    trainingReplies: replies.length,
  };
}
