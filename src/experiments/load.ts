import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadConstitution, type Constitution } from '../constitution/index.js';
import { InputError } from '../core/errors.js';
import { loadFile } from '../core/load.js';
import { experimentSchema, type Experiment } from './config.js';

export interface LoadedExperiment {
  file: string;
  experiment: Experiment;
  /** Constitutions in config order, with the absolute path each came from. */
  constitutions: { path: string; constitution: Constitution }[];
  /** The run directory (absolute): `output`, else runs/<name>, relative to the working directory. */
  runDir: string;
}

/** Reads and validates an experiment and every constitution it names; throws InputError on bad input. */
export function loadExperiment(file: string): LoadedExperiment {
  const experiment = loadFile(file, experimentSchema);
  const base = dirname(resolve(file));
  const constitutions = experiment.constitutions.map((rel, i) => {
    const path = resolve(base, rel);
    if (!existsSync(path)) throw new InputError(file, `constitutions[${i}]`, `constitution file not found: ${rel} (resolved to ${path})`);
    return { path, constitution: loadConstitution(path) };
  });
  const names = constitutions.map((c) => c.constitution.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new InputError(file, 'constitutions', `distinct persona names (two constitutions are named "${dup}")`);
  return { file, experiment, constitutions, runDir: resolve(experiment.output ?? `runs/${experiment.name}`) };
}
