import { z } from 'zod';
import { generateOptionsSchema } from '../data/options.js';
import { evalOptionsSchema } from '../evals/options.js';
import { modelRefSchema } from '../providers/ref.js';
import { steerOptionsSchema } from '../steer/options.js';
import { trainOptionsSchema } from '../train/options.js';

/** One YAML file describes an experiment: personas, model roles, stages and their options. */
export const experimentSchema = z
  .object({
    $schema: z.string().optional(),
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a name of letters, digits, ".", "_" or "-"'),
    description: z.string().optional(),
    /** Constitution files, relative to the experiment file. */
    constitutions: z.array(z.string().min(1)).min(1, 'expected at least one constitution file'),
    models: z
      .object({
        subject: modelRefSchema,
        teacher: modelRefSchema.optional(),
        judge: modelRefSchema.optional(),
        /** A second judge: its agreement with the first is reported (judge validity). */
        secondJudge: modelRefSchema.optional(),
        /** Plays the user in multi-turn evaluations. */
        userSimulator: modelRefSchema.optional(),
      })
      .strict(),
    seeds: z.array(z.number().int().nonnegative()).min(1).default([1]),
    /** Run directory; default runs/<name>. */
    output: z.string().optional(),
    generate: generateOptionsSchema.optional(),
    train: trainOptionsSchema.optional(),
    steer: steerOptionsSchema.optional(),
    eval: evalOptionsSchema.optional(),
  })
  .strict();

export type Experiment = z.infer<typeof experimentSchema>;
