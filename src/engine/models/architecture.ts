/**
 * What a model family is to the engine: how its checkpoint is recognised (config.json's
 * `architectures[0]` or `model_type`), its decoder and head as a graph, its weight names and shapes
 * (loading, shape checks, the tiny model's init), the projections LoRA adapts (training, PEFT
 * adapters) and its names in GGUF (export). Loading, training, shape checks and export all go
 * through the entry of a config's family (src/engine/models/index.ts ARCHITECTURES).
 */
import type { ModelConfig } from '../io/config.js';
import type { ExpectedTensor } from '../io/shapes.js';
import type { buildDecoder, lmHead } from './llama.js';

export interface Architecture {
  /** Hugging Face class name in config.json's `architectures`, e.g. LlamaForCausalLM. */
  hfClass: string;
  /** config.json's `model_type`, e.g. llama. */
  modelType: string;
  buildDecoder: typeof buildDecoder;
  lmHead: typeof lmHead;
  /** Every tensor of a checkpoint: Hugging Face name -> shape (optional: may be absent). */
  weightShapes(config: ModelConfig): Map<string, ExpectedTensor>;
  /** LoRA target (q, k, v, o, gate, up, down) -> module path within a layer and its sizes. */
  loraModules(config: ModelConfig): Record<string, { path: string; inFeatures: number; outFeatures: number }>;
  /** llama.cpp's name for the family (null: no GGUF export), its tensor names, and whether q/k rows are permuted for its RoPE. */
  gguf: { architecture: string | null; tensorName(hfName: string): string; permutesQK: boolean };
}
