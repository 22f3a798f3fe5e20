/**
 * The engine's public surface. Load a Hugging Face model directory (optionally with PEFT LoRA
 * adapters) and generate, score, capture activations, steer, cap and embed; or use it as a ChatModel.
 * See docs/engine.md.
 */
import { Model, type LoadOptions } from './generate/model.js';

export { Model } from './generate/model.js';
export type {
  AdapterRef,
  CaptureOptions,
  Captured,
  GenerateOptions,
  Generation,
  LoadOptions,
  Score,
  ScoreOptions,
  TokenChoice,
} from './generate/model.js';
export type { SamplingOptions } from './generate/sample.js';
export type { Capping, Capture, CaptureMode, Hooks, Steering, SteerPositions } from './hooks/index.js';
export { loadAdapterFor, mergeLora } from './lora/index.js';
export type { LoraAdapter } from './lora/index.js';
export { LocalChatModel, createLocalChatModel } from './provider.js';
export { ARCHITECTURES, architectureOf, type Architecture } from './models/index.js';
export type { ModelConfig } from './io/index.js';

/** Loads `dir` (config.json, *.safetensors) with the given adapters applied unmerged (or merged). */
export function loadModel(dir: string, options: LoadOptions = {}): Model {
  return Model.load(dir, options);
}
