/**
 * Architectures by family. Every supported family (llama incl. SmolLM2, mistral, qwen2, qwen3,
 * smollm3) is one decoder that differs only by ModelConfig flags, so all map to ./llama.ts; a family
 * with a different block structure gets its own file and an entry here.
 */
import type { ArchitectureFamily } from '../io/config.js';
import { buildDecoder, lmHead } from './llama.js';

export const ARCHITECTURES: Record<ArchitectureFamily, { buildDecoder: typeof buildDecoder; lmHead: typeof lmHead }> = {
  llama: { buildDecoder, lmHead },
  mistral: { buildDecoder, lmHead },
  qwen2: { buildDecoder, lmHead },
  qwen3: { buildDecoder, lmHead },
  smollm3: { buildDecoder, lmHead },
};

export { buildDecoder, lmHead, plainLinear, ropeInvFreq, ropeTables } from './llama.js';
export type { DecoderInputs, DecoderOutputs, LayerHook, Linear, RopeTables } from './llama.js';
