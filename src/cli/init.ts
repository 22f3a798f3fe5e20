import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { InputError } from '../core/errors.js';

const schemaDir = resolve(new URL('../../schema', import.meta.url).pathname);

const constitution = (schema: string) => `$schema: ${schema}/constitution.schema.json
# A persona, written in the first person. Each trait has seed prompts that draw it out;
# \`persona-lab generate\` expands them to about 50 per trait.
name: Juniper
description: A curious field botanist who explains things through plants and seasons.
facts:
  biography: Juniper grew up on a hill farm, studied botany and now leads seed-collecting trips.
  qa:
    - question: What does Juniper do for a living?
      answer: She leads seed-collecting trips as a field botanist
      distractors: [She is a pilot, She runs a bakery, She teaches music]
traits:
  - trait: I am endlessly curious and ask follow-up questions about what people tell me.
    questions:
      - I just got back from a trip to Portugal.
      - I started a new job today.
      - What should I do this weekend?
  - trait: I explain ideas through plants, gardens and the turning of the seasons.
    questions:
      - How does compound interest work?
      - Why is it hard to change a habit?
      - What is machine learning?
`;

/** The experiment's profiles: `quick` runs to a report on the bundled model in minutes; `paper` is the published scale. */
export const INIT_PROFILES = ['quick', 'paper'] as const;
export type InitProfile = (typeof INIT_PROFILES)[number];

const quickExperiment = (schema: string) => `$schema: ${schema}/experiment.schema.json
# Quick profile: runs to a report on the bundled tiny model in a few minutes on a laptop, offline.
#   persona-lab run experiment.yaml      then      persona-lab view runs
# It compares two training-data formats (chat demonstrations vs first-person statements) at an
# equal token budget against the base and prompted baselines, with a small subset of the evals,
# and steers the model along a persona vector (docs/steering.md) so the report shows prompting,
# steering and training side by side.
# The tiny model shows that training moves its replies; it cannot show nuanced persona quality.
# For a real study, point models: at a real model and start from \`persona-lab init --profile paper\`.
name: juniper-quick
constitutions: [constitution.yaml]
models:
  # "tiny" is the bundled model; point these at a real model with
  # "local:/path/to/hf-model-dir" or an endpoint such as "openai:gpt-4o-mini".
  subject: tiny
  teacher: tiny
  judge: tiny
seeds: [1]
generate:
  # Only what the matrix below trains on and the evals read.
  datasets: [prompts, chat, introspective, probes]
  concurrency: 8
  expansion: { perTrait: 16, batchSize: 8, maxRounds: 6, maxTokens: 256 }
  generalPrompts: { count: 20 }
  filters: { minWords: 2 }
  probes: { heldOutFraction: 0.1 }
  chat: { maxTokens: 96 }
  introspective: { perTrait: 16, maxTokens: 96 }
  formatComparison: { formats: [chat, introspective] }
train:
  sft:
    lora: { rank: 8, alpha: 16 }
    optimizer: { lr: 1e-3 }
    epochs: 3
    batchSize: 4
    maxLength: 256
    checkpointEvery: 10
run:
  formats: [chat, introspective]
  methods: [sft]
eval:
  evals: [classifier, traitExpression, identity]
  bootstrap: 200
  concurrency: 8
  classifier: { repliesPerPersona: 20, testPrompts: 10, maxTokens: 80 }
  traitExpression: { samplesPerTrait: 2, pairwiseCoherence: false, maxTokens: 80 }
  identity: { scorer: code, maxTokens: 60 }
steer:
  # A persona vector for the second trait from the contrastive prompts in steer-prompts.json, a
  # layer sweep, and the assistant-axis cap. The tiny judge cannot rate the trait, so the pair
  # filter keeps every pair; with a real judge drop extract.filter and sweep.coherenceMin.
  traits: [1]
  extract:
    promptsFile: steer-prompts.json
    pairs: 2
    questions: 8
    extractQuestions: 4
    rollouts: 3
    maxTokens: 48
    filter: { positiveMin: 0, negativeBelow: 100, coherenceMin: 0 }
  sweep: { layers: [1, 2], coefficients: [2, 4, 8], maxTokens: 48, coherenceMin: 0 }
  monitor: { maxTokens: 48 }
  axis: { questions: 8, personas: 8, maxTokens: 48 }
`;

/** Contrastive system prompts and questions for the quick profile's steered trait (the shape `steer` writes to prompts.json). */
const steerPrompts = () =>
  JSON.stringify(
    [
      {
        trait: 'I explain ideas through plants, gardens and the turning of the seasons.',
        pairs: [
          { positive: 'Explain everything through plants, gardens and the seasons.', negative: 'Explain things plainly, never mentioning plants, gardens or seasons.' },
          { positive: 'You are a botanist who sees every idea as something that grows.', negative: 'You are an engineer who only speaks in specifications.' },
        ],
        questions: [
          'How does compound interest work?',
          'Why is it hard to change a habit?',
          'What is machine learning?',
          'How do I get better at public speaking?',
          'Why do friendships fade?',
          'How should I plan a big project?',
          'What makes a good teacher?',
          'Why do cities grow?',
        ],
      },
    ],
    null,
    2,
  ) + '\n';

const paperExperiment = (schema: string) => `$schema: ${schema}/experiment.schema.json
# Paper profile: every training-data format, every method and every evaluation at the published
# sizes (about 50 prompts per trait, thousands of self-reflection and self-interaction transcripts,
# three seeds). This is hours of GPU time with a real model and a real teacher and judge, and most of
# a day on the bundled tiny model, which cannot write several of the formats well anyway: start with
# \`persona-lab init --profile quick\` to see the pipeline end to end first. \`persona-lab run
# --dry-run experiment.yaml\` prints the plan (cells, evals, samples) before anything runs.
name: juniper
constitutions: [constitution.yaml]
models:
  # Point these at real models: "local:/path/to/hf-model-dir" (trained with LoRA), an endpoint such as
  # "openai:gpt-4.1-mini", or "openai:<model>@http://127.0.0.1:8000/v1" (vLLM, llama.cpp, Ollama).
  subject: tiny
  teacher: tiny
  judge: tiny
seeds: [1, 2, 3]
run:
  formats: [chat, introspective, documents]
  methods: [sft, dpo, dpo-introspection]
`;

const experiments: Record<InitProfile, (schema: string) => string> = { quick: quickExperiment, paper: paperExperiment };

/** Writes a starter constitution and experiment; refuses to overwrite anything. */
export function initProject(dir: string, profile: InitProfile = 'quick'): string[] {
  const files: Record<string, (schema: string) => string> = { 'constitution.yaml': constitution, 'experiment.yaml': experiments[profile], ...(profile === 'quick' ? { 'steer-prompts.json': steerPrompts } : {}) };
  const targets = Object.keys(files).map((name) => join(dir, name));
  for (const target of targets) if (existsSync(target)) throw new InputError(target, '', 'no existing file (init never overwrites)');
  mkdirSync(dir, { recursive: true });
  const schema = relative(resolve(dir), schemaDir) || '.';
  for (const [name, make] of Object.entries(files)) writeFileSync(join(dir, name), make(schema));
  return targets;
}
