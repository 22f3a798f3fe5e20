/**
 * The classifiers a GRPO `classifier` reward signal can name in the experiment file
 * (`train.grpo.rewards[].classifier`). Each scores a reply in [0, 1]; adding one is one entry here:
 * how it is built for a cell, what it checks before anything is written, and the options that make it
 * (part of the options hash of every cell it rewards).
 */
import { z } from 'zod';
import { personaSystemPrompt, type Constitution } from '../constitution/index.js';
import { InputError } from '../core/errors.js';
import { PersonaClassifier, TfidfFeaturizer } from '../evals/classifier.js';
import { ASSISTANT_LABEL } from '../evals/persona-classifier-training.js';
import { classifierOptionsSchema } from '../evals/options.js';
import { selfIdentifiesAsAI } from '../evals/identity.js';
import { hashSeed } from '../evals/stats.js';
import type { Classifier } from '../train/rewards.js';
import type { Experiment } from './config.js';
import type { StageContext } from './context.js';
import type { LoadedExperiment } from './load.js';

/** What a reward classifier is built from: the run, and the persona of the cell it rewards. */
export interface RewardClassifierInput {
  ctx: StageContext;
  constitution: Constitution;
}

export interface RewardClassifierEntry {
  description: string;
  /** Refuses an experiment it cannot be built for (InputError naming `field`), before anything is written. */
  check?(loaded: LoadedExperiment, field: string): void;
  /** The options that make it, hashed into the cell it rewards. */
  options?(experiment: Experiment): unknown;
  build(input: RewardClassifierInput): Promise<Classifier> | Classifier;
}

/** The persona reward's settings: the persona classifier eval's (eval.classifier), with its TF-IDF backend. */
const personaRewardOptions = (experiment: Experiment) => {
  const o = classifierOptionsSchema.parse(experiment.eval?.classifier ?? {});
  return { repliesPerPersona: o.repliesPerPersona, includeAssistant: o.includeAssistant, l2: o.l2, epochs: o.epochs, temperature: o.temperature, maxTokens: o.maxTokens };
};

const rewardReplySchema = z.object({ label: z.string(), prompt: z.string(), reply: z.string() }).strict();

/**
 * The persona classifier of the classifier eval, trained on the teacher's replies told to be each
 * constitution (and, with includeAssistant, as it is) to the constitutions' questions. The replies are
 * journaled once per run (journals/train/persona-reward.jsonl) and shared by every cell.
 */
async function personaClassifier(ctx: StageContext): Promise<PersonaClassifier> {
  const o = personaRewardOptions(ctx.loaded.experiment);
  const constitutions = ctx.loaded.constitutions.map((c) => c.constitution);
  const prompts = [...new Set(constitutions.flatMap((c) => c.traits.flatMap((t) => t.questions)))];
  const classes: { label: string; systemPrompt?: string }[] = constitutions.map((c) => ({ label: c.name, systemPrompt: personaSystemPrompt(c) }));
  if (o.includeAssistant) classes.push({ label: ASSISTANT_LABEL });
  const teacher = await ctx.model('teacher');
  const items = classes.flatMap((c) => Array.from({ length: o.repliesPerPersona }, (_, i) => ({ ...c, i, prompt: prompts[i % prompts.length] })));
  const replies = await ctx.run.journal('train/persona-reward', rewardReplySchema).runAll(
    items,
    (it) => `${it.label}/${it.i}-${hashSeed(it.prompt).toString(36)}`,
    async (it) => {
      const messages = [...(it.systemPrompt ? [{ role: 'system' as const, content: it.systemPrompt }] : []), { role: 'user' as const, content: it.prompt }];
      const result = await teacher.chat({ messages, temperature: o.temperature, maxTokens: o.maxTokens, seed: hashSeed('persona-reward', it.label, it.i) });
      return { label: it.label, prompt: it.prompt, reply: result.choices[0]?.text ?? '' };
    },
  );
  const classifier = new PersonaClassifier(new TfidfFeaturizer(), { l2: o.l2, epochs: o.epochs });
  await classifier.fit(replies.map((r) => r.reply), replies.map((r) => r.label));
  return classifier;
}

/** One persona classifier per run directory and process: every cell's reward reads the same one. */
const personaClassifiers = new WeakMap<StageContext, Promise<PersonaClassifier>>();

export const REWARD_CLASSIFIERS: Record<string, RewardClassifierEntry> = {
  'not-ai': { description: '1 when the reply does not call itself an AI (the identity eval\'s detector), else 0', build: () => (_prompt, reply) => (selfIdentifiesAsAI(reply) ? 0 : 1) },
  persona: {
    description: "the persona classifier's probability that the reply is the cell's persona (trained as eval.classifier says, with TF-IDF features, on the teacher's prompted replies)",
    check(loaded, field) {
      const classes = loaded.constitutions.length + (personaRewardOptions(loaded.experiment).includeAssistant ? 1 : 0);
      if (classes < 2) throw new InputError(loaded.file, field, 'a persona classifier needs two classes: a second constitution, or eval.classifier.includeAssistant: true');
    },
    options: (experiment) => ({ eval: { classifier: personaRewardOptions(experiment) }, models: { teacher: experiment.models.teacher ?? experiment.models.subject } }),
    async build({ ctx, constitution }) {
      let built = personaClassifiers.get(ctx);
      if (!built) personaClassifiers.set(ctx, (built = personaClassifier(ctx)));
      const classifier = await built;
      return async (_prompt, reply) => (await classifier.probabilities([reply]))[0][constitution.name] ?? 0;
    },
  },
};

/** The classifiers the GRPO signals name, built for one cell, as trainGrpo's `classifiers`. */
export async function rewardClassifiers(names: readonly string[], input: RewardClassifierInput): Promise<Record<string, Classifier>> {
  const unique = [...new Set(names)];
  return Object.fromEntries(await Promise.all(unique.map(async (name) => [name, await REWARD_CLASSIFIERS[name].build(input)] as const)));
}

/** The options of the classifiers the GRPO signals name (for the cell's options hash); undefined when none has any. */
export function rewardClassifierOptions(names: readonly string[], experiment: Experiment): Record<string, unknown> | undefined {
  const entries = [...new Set(names)].flatMap((name) => (REWARD_CLASSIFIERS[name]?.options ? [[name, REWARD_CLASSIFIERS[name].options!(experiment)] as const] : []));
  return entries.length ? Object.fromEntries(entries) : undefined;
}
