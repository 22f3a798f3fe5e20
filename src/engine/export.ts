/**
 * `persona-lab export` for models: a base model with its LoRA adapters (scales included) written as
 *   gguf       one GGUF file for llama.cpp / Ollama / LM Studio, adapters merged into the weights
 *   gguf-lora  the adapters alone as a llama.cpp LoRA GGUF (several adapters mixed exactly into one)
 *   hf         a Hugging Face model directory with the adapters merged (transformers, vLLM, PEFT-free)
 * Everything is read and checked before anything is written; weights go one tensor (GGUF) or one shard
 * (safetensors) at a time, and every file lands atomically.
 */
import { copyFileSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../core/errors.js';
import type { LocalModelRef } from '../providers/index.js';
import { type FloatDtype, type LoraAdapter, loraDelta, mixLoraAdapters, openModelDir, writeGgufLora, writeGgufModel, writeSafetensors } from './io/index.js';
import { loadAdapterFor } from './lora/index.js';

export const MODEL_EXPORT_FORMATS = ['gguf', 'gguf-lora', 'hf'] as const;
export type ModelExportFormat = (typeof MODEL_EXPORT_FORMATS)[number];

export interface ModelExportOptions {
  /** GGUF: F32 or F16 (default F16, as llama.cpp's converter). hf: the stored dtype (default each tensor's own). */
  dtype?: FloatDtype;
  /** general.name in GGUF files. */
  name?: string;
  /** hf: bytes of float data per safetensors shard (default 2 GiB). */
  shardBytes?: number;
}

export interface ModelExportResult {
  format: ModelExportFormat;
  output: string;
  /** Files written (the GGUF file, or the directory's files). */
  files: string[];
  adapters: number;
}

/** Files of a model directory besides its weights that a merged copy keeps. */
const MODEL_FILES = /^(config|generation_config|tokenizer|tokenizer_config|special_tokens_map|added_tokens|vocab)\.json$|^(merges\.txt|tokenizer\.model|chat_template\.(jinja|json))$/;

/** The weight `read(name)` with every adapter's scale * alpha/r * B A added to the modules it adapts. */
function mergedReader(read: (name: string) => Float32Array, adapters: readonly { adapter: LoraAdapter; scale: number }[]): (name: string) => Float32Array {
  return (name) => {
    const base = read(name);
    const module = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : undefined;
    const parts = module ? adapters.filter((a) => a.adapter.modules.has(module)) : [];
    if (parts.length === 0) return base;
    const merged = Float32Array.from(base);
    for (const { adapter, scale } of parts) {
      const delta = loraDelta(adapter.modules.get(module!)!, adapter.config.useRslora, scale);
      for (let i = 0; i < merged.length; i++) merged[i] += delta[i];
    }
    return merged;
  };
}

function ggufDtype(dtype: FloatDtype | undefined): 'F32' | 'F16' {
  if (dtype === 'BF16') throw new InputError('(command line)', 'dtype', 'f32 or f16 for GGUF (bf16 is not written)');
  return dtype ?? 'F16';
}

export function exportModel(ref: LocalModelRef, format: ModelExportFormat, output: string, options: ModelExportOptions = {}): ModelExportResult {
  if (!MODEL_EXPORT_FORMATS.includes(format)) throw new InputError('(command line)', 'to', `one of ${MODEL_EXPORT_FORMATS.join(', ')}`);
  const model = openModelDir(ref.path);
  try {
    const adapters = ref.adapters.map((a) => ({ adapter: loadAdapterFor(a.path, model.config), scale: a.scale }));
    const name = options.name ?? basename(ref.path);
    const result = (files: string[]): ModelExportResult => ({ format, output, files, adapters: adapters.length });
    if (format === 'gguf-lora') {
      if (adapters.length === 0) throw new InputError('(command line)', 'model', 'at least one adapter ("local:<model>+<adapter>") for a LoRA GGUF');
      const dtype = ggufDtype(options.dtype);
      // One adapter at scale 1 is written as is; anything else as the exact mix (its delta is the weighted sum).
      const adapter = adapters.length === 1 && adapters[0].scale === 1 ? adapters[0].adapter : mixLoraAdapters(adapters.map((a) => ({ adapter: a.adapter, weight: a.scale })));
      mkdirSync(dirname(output), { recursive: true });
      writeGgufLora(output, adapter, model.config, { dtype, name: `${name} LoRA` });
      return result([output]);
    }
    const read = mergedReader((n) => model.weights.readFloat32(n), adapters);
    if (format === 'gguf') {
      const dtype = ggufDtype(options.dtype);
      mkdirSync(dirname(output), { recursive: true });
      try {
        writeGgufModel(output, model.config, read, model.tokenizer, { dtype, name });
      } catch (error) {
        if (/GGUF export (supports|does not support)|pre-tokenizer/.test((error as Error).message)) throw new InputError(ref.path, '', (error as Error).message);
        throw error;
      }
      return result([output]);
    }
    return result(writeMergedDir(ref.path, output, model.weights, read, options));
  } finally {
    model.close();
  }
}

/** A Hugging Face model directory: config and tokenizer files copied, merged weights in safetensors shards. */
function writeMergedDir(
  source: string,
  output: string,
  weights: { names(): string[]; info(name: string): { dtype: string; shape: number[] } },
  read: (name: string) => Float32Array,
  options: ModelExportOptions,
): string[] {
  const names = weights.names().sort();
  const dtypeOf = (n: string): FloatDtype => options.dtype ?? (['F32', 'F16', 'BF16'].includes(weights.info(n).dtype) ? (weights.info(n).dtype as FloatDtype) : 'F32');
  const bytesOf = (n: string) => weights.info(n).shape.reduce((a, b) => a * b, 1) * (dtypeOf(n) === 'F32' ? 4 : 2);
  const limit = options.shardBytes ?? 2 ** 31;
  const shards: string[][] = [[]];
  let size = 0;
  for (const n of names) {
    if (size > 0 && size + bytesOf(n) > limit) {
      shards.push([]);
      size = 0;
    }
    shards.at(-1)!.push(n);
    size += bytesOf(n);
  }
  const tmp = `${output.replace(/\/$/, '')}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const files: string[] = [];
    for (const f of readdirSync(source)) {
      if (MODEL_FILES.test(f)) {
        copyFileSync(join(source, f), join(tmp, f));
        files.push(f);
      }
    }
    const shardName = (i: number) => (shards.length === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      writeSafetensors(join(tmp, shardName(i)), shard.map((n) => ({ name: n, shape: weights.info(n).shape, data: read(n), dtype: dtypeOf(n) })), { format: 'pt' });
      for (const n of shard) weightMap[n] = shardName(i);
      files.push(shardName(i));
    });
    if (shards.length > 1) {
      const totalSize = names.reduce((a, n) => a + bytesOf(n), 0);
      writeFileSync(join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n');
      files.push('model.safetensors.index.json');
    }
    rmSync(output, { recursive: true, force: true });
    mkdirSync(dirname(output), { recursive: true });
    renameSync(tmp, output);
    return files.sort().map((f) => join(output, f));
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
}
