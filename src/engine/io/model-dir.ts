/**
 * A Hugging Face model directory opened and cross-checked in one call: config.json, the safetensors
 * weights (single file, or shards with an index), tokenizer.json with tokenizer_config.json and the chat
 * template, generation_config.json. Every mismatch is an InputError naming the file and the tensor.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../core/errors.js';
import { loadModelConfig, type ModelConfig } from './config.js';
import { type GenerationDefaults, loadGenerationConfig } from './generation-config.js';
import { type GgufModelOptions, writeGgufModel } from './gguf.js';
import { isGgufPath, openGgufModel } from './gguf-model.js';
import { SafetensorsModel } from './safetensors.js';
import { checkTensorShapes } from './shapes.js';
import { TextTokenizer } from './tokenizer.js';

export interface ModelDir {
  dir: string;
  config: ModelConfig;
  /** Lazy per-tensor reads: weights.readFloat32(hfName). Close when done. */
  weights: SafetensorsModel;
  tokenizer: TextTokenizer;
  /** Sampling defaults; eosTokenIds falls back to config.json's, then the tokenizer's eos token. */
  generation: GenerationDefaults;
  close(): void;
}

export function openModelDir(dir: string): ModelDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(dir, '', 'a model directory (config.json, *.safetensors, tokenizer.json)');
  const configFile = join(dir, 'config.json');
  const config = loadModelConfig(configFile);
  const tokenizer = TextTokenizer.load(dir);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new InputError(join(dir, 'tokenizer.json'), 'model.vocab', `at most vocab_size ${config.vocabSize} ids from config.json (found ${tokenizer.vocabSize})`);
  }
  const weights = SafetensorsModel.open(dir);
  try {
    checkTensorShapes(config, weights.shapes(), (name) => weights.fileOf(name), configFile);
  } catch (error) {
    weights.close();
    throw error;
  }
  const generation = loadGenerationConfig(dir);
  if (generation.eosTokenIds.length === 0) generation.eosTokenIds = config.eosTokenIds.length > 0 ? config.eosTokenIds : tokenizer.eos ? [tokenizer.eos.id] : [];
  return { dir, config, weights, tokenizer, generation, close: () => weights.close() };
}

/** Exports a model directory (config + safetensors + tokenizer) as one GGUF file, reading one tensor at a time. */
export function exportModelDirToGguf(dir: string, path: string, options: GgufModelOptions = {}): void {
  const model = openModelDir(dir);
  try {
    writeGgufModel(path, model.config, (name) => model.weights.readFloat32(name), model.tokenizer, options);
  } finally {
    model.close();
  }
}

/** The tokenizer (and chat template) of a model directory or a GGUF file's metadata. */
export function loadTokenizer(path: string): TextTokenizer {
  if (!isGgufPath(path)) return TextTokenizer.load(path);
  const model = openGgufModel(path);
  try {
    return model.tokenizer();
  } finally {
    model.close();
  }
}

/** Sampling defaults of a model directory (generation_config.json) or a GGUF file (its token ids; greedy). */
export function loadGenerationDefaults(path: string): GenerationDefaults {
  if (!isGgufPath(path)) return loadGenerationConfig(path);
  const model = openGgufModel(path);
  try {
    return model.generation();
  } finally {
    model.close();
  }
}
