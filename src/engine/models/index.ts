/**
 * Architectures by family (config.family). Every supported family (llama incl. SmolLM2, mistral,
 * qwen2, qwen3, smollm3) is one decoder that differs only by ModelConfig flags, so all are built
 * from ./llama.ts; a family with a different block structure gets its own file and an entry here.
 */
import { InputError } from '../../core/errors.js';
import type { ModelConfig } from '../io/config.js';
import type { Architecture } from './architecture.js';
import { buildDecoder, ggufTensorName, lmHead, loraModules, weightShapes } from './llama.js';

export type { Architecture } from './architecture.js';

/** A family built from the Llama graph, under its Hugging Face and llama.cpp names. */
const llamaFamily = (hfClass: string, modelType: string, ggufArchitecture: string | null): Architecture => ({
  hfClass,
  modelType,
  buildDecoder,
  lmHead,
  weightShapes,
  loraModules,
  // llama.cpp's llama architecture interleaves each head's rotary halves; qwen2/qwen3 keep HF's layout.
  gguf: { architecture: ggufArchitecture, tensorName: ggufTensorName, permutesQK: ggufArchitecture === 'llama' },
});

export const ARCHITECTURES: Record<string, Architecture> = {
  llama: llamaFamily('LlamaForCausalLM', 'llama', 'llama'),
  mistral: llamaFamily('MistralForCausalLM', 'mistral', 'llama'),
  qwen2: llamaFamily('Qwen2ForCausalLM', 'qwen2', 'qwen2'),
  qwen3: llamaFamily('Qwen3ForCausalLM', 'qwen3', 'qwen3'),
  smollm3: llamaFamily('SmolLM3ForCausalLM', 'smollm3', null),
};

/** The family of a config.json's `architectures[0]`, else of its `model_type`; undefined when none matches. */
export function familyOf(hfClass: string | undefined, modelType: string | undefined): string | undefined {
  const entries = Object.entries(ARCHITECTURES);
  return entries.find(([, a]) => a.hfClass === hfClass)?.[0] ?? entries.find(([, a]) => modelType !== undefined && a.modelType === modelType)?.[0];
}

/** The registry entry of a config's family. */
export function architectureOf(config: Pick<ModelConfig, 'family'>): Architecture {
  const entry = Object.hasOwn(ARCHITECTURES, config.family) ? ARCHITECTURES[config.family] : undefined;
  if (!entry) throw new InputError('config.json', 'architectures', `one of the engine's families (${Object.keys(ARCHITECTURES).join(', ')}), found ${config.family}`);
  return entry;
}

export { buildDecoder, lmHead, plainLinear, ropeInvFreq, ropeTables } from './llama.js';
export type { DecoderInputs, DecoderOutputs, LayerHook, Linear, RopeTables } from './llama.js';
