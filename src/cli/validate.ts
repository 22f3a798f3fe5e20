import { loadConstitution } from '../constitution/index.js';
import { InputError } from '../core/errors.js';
import { readStructured } from '../core/load.js';
import { loadExperiment } from '../experiments/load.js';
import { checkExperimentInputs } from '../experiments/inputs.js';
import { checkEndpoints } from '../experiments/preflight.js';

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
    if (options.endpoints) await checkEndpoints(file, e.experiment);
    await checkExperimentInputs(e);
    return { file, kind, summary: `experiment "${e.experiment.name}", ${e.constitutions.length} constitution(s), run dir ${e.runDir}` };
  }
}
