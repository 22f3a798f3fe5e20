import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConstitution } from '../constitution/index.js';
import { InputError } from '../core/errors.js';
import { readStructured } from '../core/load.js';
import { loadExperiment } from '../experiments/load.js';
import { checkEndpoints } from '../experiments/preflight.js';
import type { ModelRef } from '../providers/ref.js';

export interface ValidationResult {
  file: string;
  kind: 'constitution' | 'experiment';
  summary: string;
}

/** An experiment names its models; a constitution has traits (or is the open recipe's array). */
function kindOf(file: string, value: unknown): 'constitution' | 'experiment' {
  if (Array.isArray(value)) return 'constitution';
  if (value && typeof value === 'object') {
    if ('models' in value || 'constitutions' in value) return 'experiment';
    if ('traits' in value || 'name' in value) return 'constitution';
  }
  throw new InputError(file, '(root)', 'a constitution (name, traits) or an experiment (name, constitutions, models)');
}

/**
 * Local model references name directories that must exist now, as `run` will need them: the model
 * directory with its config.json, and every adapter directory (relative paths against the working
 * directory, as `run` resolves them).
 */
async function checkLocalModels(file: string, models: Record<string, ModelRef | undefined>): Promise<void> {
  const isLocal = (ref: ModelRef) => (typeof ref === 'string' ? ref === 'tiny' || ref.startsWith('local:') : ref.provider === 'local');
  const local = Object.entries(models).filter((entry): entry is [string, ModelRef] => entry[1] !== undefined && isLocal(entry[1]));
  if (local.length === 0) return;
  const { parseLocalModelRef } = await import('../engine/provider.js');
  for (const [role, ref] of local) {
    const parsed = parseLocalModelRef(ref);
    if (!existsSync(join(parsed.path, 'config.json'))) throw new InputError(file, `models.${role}`, `a model directory with config.json (not found: ${parsed.path})`);
    for (const adapter of parsed.adapters) {
      if (!existsSync(join(adapter.path, 'adapter_config.json'))) throw new InputError(file, `models.${role}`, `an adapter directory with adapter_config.json (not found: ${adapter.path})`);
    }
  }
}

/** Validates every file; the first bad one throws (exit 2). */
export async function validateFiles(files: string[], options: { endpoints?: boolean } = {}): Promise<ValidationResult[]> {
  const results: ValidationResult[] = [];
  for (const file of files) results.push(await validateFile(file, options));
  return results;
}

async function validateFile(file: string, options: { endpoints?: boolean }): Promise<ValidationResult> {
  {
    const kind = kindOf(file, readStructured(file));
    if (kind === 'constitution') {
      const c = loadConstitution(file);
      const questions = c.traits.reduce((n, t) => n + t.questions.length, 0);
      return { file, kind, summary: `constitution "${c.name}", ${c.traits.length} traits, ${questions} seed questions` };
    }
    const e = loadExperiment(file);
    await checkLocalModels(file, e.experiment.models);
    if (options.endpoints) await checkEndpoints(file, e.experiment);
    return { file, kind, summary: `experiment "${e.experiment.name}", ${e.constitutions.length} constitution(s), run dir ${e.runDir}` };
  }
}
