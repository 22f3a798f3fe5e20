/** The Hugging Face tensor names and shapes a checkpoint of a given ModelConfig must contain, checked. */
import { InputError } from '../../core/errors.js';
import type { ModelConfig } from './config.js';
import { architectureOf } from '../models/index.js';

export interface ExpectedTensor {
  shape: number[];
  /** Optional tensors may be absent (a tied `lm_head.weight` some checkpoints still store). */
  optional?: boolean;
}

/** HF name -> expected shape, from the config's architecture entry. */
export function expectedTensorShapes(config: ModelConfig): Map<string, ExpectedTensor> {
  return architectureOf(config).weightShapes(config);
}

/** Buffers some exporters store that the engine recomputes. */
const IGNORED = /\.rotary_emb\.inv_freq$/;

/**
 * Checks a checkpoint's tensor names and shapes against the config: every required tensor present,
 * every shape equal, no unknown tensor. `where(name)` names the file that holds a tensor.
 */
export function checkTensorShapes(
  config: ModelConfig,
  found: Map<string, number[]>,
  where: (name: string) => string,
  configFile = 'config.json',
): void {
  const expected = expectedTensorShapes(config);
  for (const [name, { shape, optional }] of expected) {
    const actual = found.get(name);
    if (!actual) {
      if (optional) continue;
      throw new InputError(configFile, name, `tensor ${name} in the checkpoint (missing from every safetensors file)`);
    }
    if (actual.length !== shape.length || actual.some((n, i) => n !== shape[i])) {
      throw new InputError(where(name), name, `shape mismatch: file ${where(name)} tensor ${name} expected [${shape.join(',')}] found [${actual.join(',')}]`);
    }
  }
  for (const name of found.keys()) {
    if (!expected.has(name) && !IGNORED.test(name)) {
      throw new InputError(where(name), name, `a tensor of a ${config.family} model (unexpected tensor ${name})`);
    }
  }
}
