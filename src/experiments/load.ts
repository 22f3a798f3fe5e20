import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadConstitution, type Constitution } from '../constitution/index.js';
import { InputError } from '../core/errors.js';
import YAML from 'yaml';
import { readStructured, validate } from '../core/load.js';
import { experimentSchema, type Experiment } from './config.js';

export interface LoadedExperiment {
  file: string;
  experiment: Experiment;
  /** Constitutions in config order, with the absolute path each came from. */
  constitutions: { path: string; constitution: Constitution }[];
  /** The run directory (absolute): `output`, else runs/<name>, relative to the working directory. */
  runDir: string;
}

/**
 * Applies `key.path=value` overrides (the command line's --set) to a parsed experiment: the value is
 * read as YAML (numbers, booleans, [lists], {maps}); missing objects on the path are created.
 */
export function applyOverrides(file: string, raw: unknown, overrides: readonly string[]): unknown {
  const root = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  for (const override of overrides) {
    const eq = override.indexOf('=');
    const path = eq > 0 ? override.slice(0, eq).split('.') : [];
    if (path.length === 0 || path.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) {
      throw new InputError(file, '--set', `key.path=value (e.g. eval.bootstrap=200), found "${override}"`);
    }
    let at = root;
    for (const key of path.slice(0, -1)) {
      const next = at[key];
      at = (at[key] = typeof next === 'object' && next !== null && !Array.isArray(next) ? next : {}) as Record<string, unknown>;
    }
    at[path.at(-1)!] = YAML.parse(override.slice(eq + 1));
  }
  return root;
}

/**
 * `run --limit N` (smoke tests) as the overrides it stands for: generate.limit and eval.limit, which
 * the options record keeps, so results made with a limit are never taken for full ones.
 */
export function limitOverrides(limit: string | undefined): string[] {
  if (limit === undefined) return [];
  if (!/^[1-9]\d*$/.test(limit)) throw new InputError('run', '--limit', `a whole number >= 1 (got "${limit}")`);
  return [`generate.limit=${limit}`, `eval.limit=${limit}`];
}

/** Reads and validates an experiment (with --set overrides) and every constitution it names; throws InputError on bad input. */
export function loadExperiment(file: string, overrides: readonly string[] = []): LoadedExperiment {
  const experiment = validate(file, applyOverrides(file, readStructured(file), overrides), experimentSchema);
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
