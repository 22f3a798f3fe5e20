/**
 * The training methods of the matrix, by the name `run.methods` uses, in training order (a method
 * before those that build on it). Adding a method is a file beside this one and an entry here.
 */
import { dpoIntrospectionMethod } from './dpo-introspection.js';
import { dpoMethod } from './dpo.js';
import { grpoConsistencyMethod } from './grpo-consistency.js';
import { grpoMethod } from './grpo.js';
import { mixtureMethod } from './mixture.js';
import { sftMethod } from './sft.js';
import type { RunOptions } from '../config.js';
import type { TrainingMethod } from './types.js';

export type { JobCommon, MethodInput, TrainingMethod } from './types.js';

export const METHODS: Record<string, TrainingMethod> = {
  sft: sftMethod,
  dpo: dpoMethod,
  'dpo-introspection': dpoIntrospectionMethod,
  grpo: grpoMethod,
  'grpo-consistency': grpoConsistencyMethod,
  mixture: mixtureMethod,
};

/** run.methods with every method they require, in the registry's (training) order. */
export function plannedMethods(run: Pick<RunOptions, 'methods'>): string[] {
  const wanted = new Set<string>();
  const add = (name: string) => {
    if (wanted.has(name)) return;
    wanted.add(name);
    for (const required of METHODS[name].requires ?? []) add(required);
  };
  run.methods.forEach(add);
  return Object.keys(METHODS).filter((m) => wanted.has(m));
}

/** The cell's directory and journal name within a persona and seed: the method, with its format (sft-chat). */
export const cellLabel = (method: string, format: string | null): string => (format === null ? method : `${method}-${format}`);
