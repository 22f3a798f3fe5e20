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

const experiment = (schema: string) => `$schema: ${schema}/experiment.schema.json
name: juniper
constitutions: [constitution.yaml]
models:
  # "tiny" is the bundled model; point these at a real model with
  # "local:/path/to/hf-model-dir" or an endpoint such as "openai:gpt-4o-mini".
  subject: tiny
  teacher: tiny
  judge: tiny
seeds: [1]
`;

/** Writes a starter constitution and experiment; refuses to overwrite anything. */
export function initProject(dir: string): string[] {
  const files = { 'constitution.yaml': constitution, 'experiment.yaml': experiment };
  const targets = Object.keys(files).map((name) => join(dir, name));
  for (const target of targets) if (existsSync(target)) throw new InputError(target, '', 'no existing file (init never overwrites)');
  mkdirSync(dir, { recursive: true });
  const schema = relative(resolve(dir), schemaDir) || '.';
  for (const [name, make] of Object.entries(files)) writeFileSync(join(dir, name), make(schema));
  return targets;
}
