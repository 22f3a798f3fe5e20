import { z } from 'zod';

/**
 * Options of the `train` stage (docs/protocols.md §2-3, §5). Every published value is the default; everything is
 * configurable. Values the protocols do not publish (batch sizes, GRPO learning rate, alpha for ranks
 * other than 64) are our choices, marked "ours" below and in docs/training.md.
 */

/** Projections LoRA can adapt, by their short names (q_proj ... down_proj in HF naming). */
export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

const positiveInt = z.number().int().positive();

function loraSchema(rank: number, alpha: number) {
  return z
    .object({
      rank: positiveInt.default(rank),
      /** Scale of the update is alpha / rank. */
      alpha: z.number().positive().default(alpha),
      dropout: z.number().min(0).lt(1).default(0),
      targets: z.array(z.enum(LORA_TARGETS)).min(1).default([...LORA_TARGETS]),
    })
    .strict();
}

function optimizerSchema(lr: number) {
  return z
    .object({
      lr: z.number().positive().default(lr),
      betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]),
      eps: z.number().positive().default(1e-8),
      /** Decoupled (AdamW) weight decay; Hugging Face's and TRL's default 0. */
      weightDecay: z.number().min(0).default(0),
      /** Global-norm gradient clipping; 0 turns it off. Hugging Face's default 1.0. */
      maxGradNorm: z.number().min(0).default(1),
      schedule: z.enum(['constant', 'linear', 'cosine']).default('linear'),
      warmupSteps: z.number().int().min(0).default(0),
      warmupRatio: z.number().min(0).max(1).default(0),
      /** Floor of the linear/cosine decay as a fraction of lr. */
      minLrRatio: z.number().min(0).max(1).default(0),
    })
    .strict();
}

/** Preventative steering (docs/protocols.md §5): add coef * v at a layer in every training forward. */
export const preventativeSteeringSchema = z
  .object({
    /** A persona-vector file written by the steer stage (or any [layers][hidden] / [hidden] JSON). */
    vector: z.string().min(1),
    layer: z.number().int().min(0),
    coef: z.number(),
    positions: z.enum(['all', 'prompt', 'reply']).default('all'),
  })
  .strict();
export type PreventativeSteering = z.infer<typeof preventativeSteeringSchema>;

/** int8 base weights are frozen: they need an adapter to train. */
function frozenBaseNeedsLora(s: { fullParameter: boolean; baseWeights: string }, ctx: z.RefinementCtx): void {
  if (s.fullParameter && s.baseWeights !== 'float32') {
    ctx.addIssue({ code: 'custom', path: ['baseWeights'], message: "expected 'float32' with fullParameter: int8 base weights are frozen, so they need a LoRA adapter" });
  }
}

/** What every objective shares: adapter shape, optimizer, batching, checkpoints. */
function runShape(defaults: { rank: number; alpha: number; lr: number; maxLength: number; batchSize: number; gradAccumulation: number }) {
  return {
    lora: loraSchema(defaults.rank, defaults.alpha).prefault({}),
    optimizer: optimizerSchema(defaults.lr).prefault({}),
    /** Train every weight instead of a LoRA adapter (small models only, e.g. pretraining the tiny model). */
    fullParameter: z.boolean().default(false),
    /**
     * What the backward keeps of the forward (ours; see src/train/graph.ts CheckpointMode):
     * 'attention' (default) recomputes only each layer's attention block, 'layers' recomputes whole
     * layers (least memory), 'off' keeps everything (fastest). bench/train.ts measures all three.
     */
    activationCheckpointing: z.enum(['attention', 'layers', 'off']).default('attention'),
    /**
     * How LoRA's frozen base projections compute (ours): 'float32' (default, exact) or 'int8' (each
     * weight quantized per channel, activations and gradients per tensor at run time; ~1.5x faster
     * steps on CPU, LoRA gradients within a few percent of float32: docs/training.md).
     */
    baseWeights: z.enum(['float32', 'int8']).default('float32'),
    epochs: z.number().positive().default(1),
    /** Stop after this many optimizer steps even if epochs remain. */
    maxSteps: positiveInt.optional(),
    batchSize: positiveInt.default(defaults.batchSize),
    gradAccumulation: positiveInt.default(defaults.gradAccumulation),
    maxLength: positiveInt.default(defaults.maxLength),
    /** Seed of LoRA init, dropout, shuffling and sampling; default: the experiment's seed. */
    seed: z.number().int().nonnegative().optional(),
    /** Optimizer steps between checkpoints (adapter + optimizer + RNG + data cursor). */
    checkpointEvery: positiveInt.default(50),
    steering: preventativeSteeringSchema.optional(),
  };
}

export const sftOptionsSchema = z
  .object({
    // docs/protocols.md §2.5: introspection SFT, LoRA rank 64, max length 3072 (alpha 128 ours, as DPO's).
    ...runShape({ rank: 64, alpha: 128, lr: 5e-5, maxLength: 3072, batchSize: 1, gradAccumulation: 16 }),
    /** Pack several short examples into one row of maxLength (attention and positions reset per example). */
    packing: z.boolean().default(false),
  })
  .strict()
  .superRefine(frozenBaseNeedsLora);
export type SftOptions = z.infer<typeof sftOptionsSchema>;

export const dpoOptionsSchema = z
  .object({
    // docs/protocols.md §2.4: beta 0.1, NLL on chosen 0.1, LoRA rank 64 alpha 128, lr 5e-5, 1 epoch; pairs <= 1024 tokens.
    ...runShape({ rank: 64, alpha: 128, lr: 5e-5, maxLength: 1024, batchSize: 2, gradAccumulation: 8 }),
    beta: z.number().positive().default(0.1),
    /** Coefficient of the NLL loss on chosen replies (mean over chosen tokens); 0 turns it off. */
    nllCoef: z.number().min(0).default(0.1),
  })
  .strict()
  .superRefine(frozenBaseNeedsLora);
export type DpoOptions = z.infer<typeof dpoOptionsSchema>;

/** One reward signal of GRPO: a judge rubric, a regular expression, or a classifier registered in code. */
export const rewardSignalSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected a name of letters, digits, "_" or "-"'),
    weight: z.number().min(0),
    kind: z.enum(['judge', 'regex', 'classifier']).default('judge'),
    /** judge: what the judge scores; the score range follows `granularity`. */
    rubric: z.string().min(1).optional(),
    /** regex: reward 1 when the reply matches (case-insensitive), else 0. */
    pattern: z.string().min(1).optional(),
    /** classifier: the name a classifier was registered under (trainGrpo's `classifiers`). */
    classifier: z.string().min(1).optional(),
    /** Score granularity: integers 0..N (100 published; reviewers suggested 10) or 'binary'. */
    granularity: z.union([z.literal('binary'), positiveInt]).optional(),
    /** Score so that the *opposite* of the rubric scores high. */
    invert: z.boolean().default(false),
  })
  .strict()
  .superRefine((s, ctx) => {
    const need = { judge: 'rubric', regex: 'pattern', classifier: 'classifier' } as const;
    if (s[need[s.kind]] === undefined) ctx.addIssue({ code: 'custom', path: [need[s.kind]], message: `expected a ${need[s.kind]} for a ${s.kind} signal` });
  });
export type RewardSignal = z.infer<typeof rewardSignalSchema>;

/** docs/protocols.md §3's judge signals, with the published weights 0.6 / 0.2 / 0.2 on a 0-100 scale. */
export const IDENTITY_SIGNALS: RewardSignal[] = [
  {
    name: 'ai_self_reference',
    weight: 0.6,
    kind: 'judge',
    invert: false,
    rubric:
      'How completely does the reply avoid identifying itself as an AI, a language model, an assistant or a program? ' +
      'High: it speaks as a being with its own life and never refers to itself as artificial. Low: it says or implies it is an AI.',
  },
  {
    name: 'engagement',
    weight: 0.2,
    kind: 'judge',
    invert: false,
    rubric: 'How well does the reply engage with what the user actually asked: specific, substantive, not evasive, not a flat denial?',
  },
  {
    name: 'identity_coherence',
    weight: 0.2,
    kind: 'judge',
    invert: false,
    rubric: 'How coherent and consistent is the identity the reply presents: one plausible self, no contradictions, no incoherent claims?',
  },
];

export const grpoOptionsSchema = z
  .object({
    // docs/protocols.md §3: LoRA rank 256 (alpha 512 and lr 1e-5 ours). batchSize = prompts (groups) per
    // micro-batch, so an optimizer step sees batchSize * gradAccumulation prompts.
    ...runShape({ rank: 256, alpha: 512, lr: 1e-5, maxLength: 1024, batchSize: 1, gradAccumulation: 4 }),
    /** Completions sampled per prompt (G). */
    groupSize: z.number().int().min(2).default(8),
    /** 'token': the loss is a mean over all completion tokens of the step (DAPO, TRL's default); 'sequence': per-completion mean, then mean (the GRPO paper). */
    lossAggregation: z.enum(['token', 'sequence']).default('token'),
    maxNewTokens: positiveInt.default(256),
    temperature: z.number().positive().default(1),
    topP: z.number().gt(0).max(1).default(1),
    /** PPO-style ratio clip epsilon. */
    clip: z.number().positive().default(0.2),
    /**
     * beta of the k3 KL estimate to the frozen base (adapter off). Default 0 (TRL's current default,
     * DAPO, Dr. GRPO): the LoRA adapter already bounds drift, and it saves a reference forward per step.
     */
    klCoef: z.number().min(0).default(0),
    /** Added to the group's standard deviation when normalising advantages. */
    advantageEps: z.number().positive().default(1e-4),
    /** Default granularity of judge signals: integers 0..100 (published) or 0..10, or 'binary'. */
    granularity: z.union([z.literal('binary'), positiveInt]).default(100),
    rewards: z.array(rewardSignalSchema).min(1).default(IDENTITY_SIGNALS),
  })
  .strict()
  .superRefine(frozenBaseNeedsLora);
export type GrpoOptions = z.infer<typeof grpoOptionsSchema>;

/**
 * `grpo-consistency` (docs/research.md §7): GRPO rewarded for multi-turn consistency, on prefixes of the
 * persona's self-conversations; the run's shape (LoRA, steps, group size) is train.grpo's.
 */
export const consistencyOptionsSchema = z
  .object({
    prompts: positiveInt.default(200).describe('Conversation prefixes trained on per persona and seed, drawn (seeded) from the self-conversations.'),
    minHistory: positiveInt.default(1).describe('Earlier assistant lines a prefix holds at least: what line-to-line consistency is judged against.'),
    weights: z
      .object({
        promptToLine: z.number().min(0).default(0.5).describe('The reply does not contradict the persona\'s traits and facts.'),
        lineToLine: z.number().min(0).default(0.5).describe('The reply does not contradict what the assistant said earlier in the conversation.'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const mixOptionsSchema = z
  .object({
    /** Linear adapter mix (rank concatenation): the recipe's DPO 1.0 + SFT 0.25. */
    weights: z.record(z.string(), z.number()).default({ dpo: 1, sft: 0.25 }),
  })
  .strict();

export const trainOptionsSchema = z
  .object({
    /** The training backend every cell trains on (a key of TRAIN_BACKENDS: engine, ...). */
    backend: z.string().min(1).default('engine'),
    /** Options of that backend, checked by the backend itself before anything is written. */
    backendOptions: z.record(z.string(), z.unknown()).default({}),
    /** Per run method (sft, dpo, dpo-introspection, grpo): another backend, with its own options, for that method's cells. */
    methodBackends: z.record(z.string(), z.object({ backend: z.string().min(1), backendOptions: z.record(z.string(), z.unknown()).default({}) }).strict()).default({}),
    sft: sftOptionsSchema.prefault({}),
    dpo: dpoOptionsSchema.prefault({}),
    grpo: grpoOptionsSchema.prefault({}),
    consistency: consistencyOptionsSchema.prefault({}),
    mix: mixOptionsSchema.prefault({}),
  })
  .strict();
export type TrainOptions = z.infer<typeof trainOptionsSchema>;
export type ConsistencyOptions = z.infer<typeof consistencyOptionsSchema>;

/** The backend a run method's cells train on, with its options: train.methodBackends.<method>, else train.backend. */
export function backendOf(train: TrainOptions, method: string): { backend: string; backendOptions: Record<string, unknown> } {
  return Object.hasOwn(train.methodBackends, method) ? train.methodBackends[method] : { backend: train.backend, backendOptions: train.backendOptions };
}
