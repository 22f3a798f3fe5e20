/**
 * LoRA adapters in PEFT's on-disk format: adapter_config.json + adapter_model.safetensors with keys
 * `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r], so Python `peft`
 * (PeftModel.from_pretrained) loads what we write and we load what it writes.
 * The delta a module adds is scale * B @ A with scale = alpha / r (alpha / sqrt(r) with rsLoRA).
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../../core/errors.js';
import { readStructured, validate } from '../../core/load.js';
import type { ModelConfig } from './config.js';
import type { FloatDtype } from './dtype.js';
import { SafetensorsFile, writeSafetensors } from './safetensors.js';
import { expectedTensorShapes } from './shapes.js';

export interface LoraConfig {
  r: number;
  loraAlpha: number;
  /** Short module names (`q_proj`) the adapter targets. */
  targetModules: string[];
  loraDropout: number;
  useRslora: boolean;
  baseModelNameOrPath: string | null;
  /** The base's Hub revision (PEFT's `revision`, which loaders pass to from_pretrained); null for a local base. */
  revision?: string | null;
  /** Per-module rank / alpha where a module differs from r / loraAlpha (PEFT's rank_pattern, alpha_pattern). */
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
}

/** One adapted linear layer: A is [r, in] and B is [out, r], row-major as PEFT stores them. */
export interface LoraModule {
  rank: number;
  inFeatures: number;
  outFeatures: number;
  alpha: number;
  A: Float32Array;
  B: Float32Array;
}

/** An adapter in memory; module keys are HF module paths, e.g. `model.layers.0.self_attn.q_proj`. */
export interface LoraAdapter {
  config: LoraConfig;
  modules: Map<string, LoraModule>;
}

export const adapterConfigSchema = z
  .object({
    peft_type: z.literal('LORA'),
    task_type: z.string().nullable().optional(),
    r: z.number().int().positive(),
    lora_alpha: z.number().positive(),
    target_modules: z.union([z.array(z.string()), z.string()]).nullable().optional(),
    lora_dropout: z.number().min(0).max(1).optional(),
    bias: z.enum(['none', 'all', 'lora_only']).optional(),
    use_rslora: z.boolean().optional(),
    use_dora: z.boolean().optional(),
    fan_in_fan_out: z.boolean().optional(),
    base_model_name_or_path: z.string().nullable().optional(),
    revision: z.string().nullable().optional(),
    rank_pattern: z.record(z.string(), z.number().int().positive()).nullable().optional(),
    alpha_pattern: z.record(z.string(), z.number().positive()).nullable().optional(),
    modules_to_save: z.array(z.string()).nullable().optional(),
  })
  .loose();

/** The multiplier of B @ A for one module. */
export function loraScale(module: Pick<LoraModule, 'alpha' | 'rank'>, useRslora: boolean): number {
  return useRslora ? module.alpha / Math.sqrt(module.rank) : module.alpha / module.rank;
}

/** PEFT matches a pattern key against a module path as `(.*\.)?key$`. */
function patternValue(pattern: Record<string, number>, module: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) {
    if (new RegExp(`^(.*\\.)?(${key})$`).test(module)) return value;
  }
  return undefined;
}

const KEY = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/;

/** Reads a PEFT LoRA adapter directory. */
export function loadLoraAdapter(dir: string): LoraAdapter {
  const configFile = join(dir, 'adapter_config.json');
  const raw = validate(configFile, readStructured(configFile), adapterConfigSchema);
  if (raw.bias && raw.bias !== 'none') throw new InputError(configFile, 'bias', `"none" (adapters with bias terms are not supported; found "${raw.bias}")`);
  if (raw.use_dora) throw new InputError(configFile, 'use_dora', 'false (DoRA adapters are not supported)');
  if (raw.fan_in_fan_out) throw new InputError(configFile, 'fan_in_fan_out', 'false (Conv1D-style GPT-2 weights are not supported)');
  if (raw.modules_to_save && raw.modules_to_save.length > 0) throw new InputError(configFile, 'modules_to_save', 'none (fully trained extra modules are not supported)');
  const weightsFile = join(dir, 'adapter_model.safetensors');
  if (!existsSync(weightsFile)) {
    const bin = existsSync(join(dir, 'adapter_model.bin'));
    throw new InputError(weightsFile, '', bin ? 'a safetensors file (found only adapter_model.bin; re-save with safe_serialization=True)' : 'file not found');
  }
  const config: LoraConfig = {
    r: raw.r,
    loraAlpha: raw.lora_alpha,
    targetModules: typeof raw.target_modules === 'string' ? [raw.target_modules] : (raw.target_modules ?? []),
    loraDropout: raw.lora_dropout ?? 0,
    useRslora: raw.use_rslora ?? false,
    baseModelNameOrPath: raw.base_model_name_or_path ?? null,
    revision: raw.revision ?? null,
    rankPattern: raw.rank_pattern ?? {},
    alphaPattern: raw.alpha_pattern ?? {},
  };

  const file = SafetensorsFile.open(weightsFile);
  try {
    const parts = new Map<string, { A?: string; B?: string }>();
    for (const name of file.names()) {
      const m = KEY.exec(name);
      if (!m) throw new InputError(weightsFile, name, 'a PEFT LoRA key base_model.model.<module>.lora_A.weight / lora_B.weight');
      const entry = parts.get(m[1]) ?? {};
      entry[m[2] as 'A' | 'B'] = name;
      parts.set(m[1], entry);
    }
    const modules = new Map<string, LoraModule>();
    for (const [module, { A, B }] of parts) {
      if (!A || !B) throw new InputError(weightsFile, `base_model.model.${module}.lora_${A ? 'B' : 'A'}.weight`, `both lora_A and lora_B for ${module}`);
      const [rank, inFeatures] = file.info(A).shape;
      const [outFeatures, rankB] = file.info(B).shape;
      const expectedRank = patternValue(config.rankPattern, module) ?? config.r;
      if (file.info(A).shape.length !== 2 || rank !== expectedRank) {
        throw new InputError(weightsFile, A, `shape [${expectedRank}, in] (r from adapter_config.json; found [${file.info(A).shape.join(',')}])`);
      }
      if (file.info(B).shape.length !== 2 || rankB !== rank) throw new InputError(weightsFile, B, `shape [out, ${rank}] (found [${file.info(B).shape.join(',')}])`);
      modules.set(module, {
        rank,
        inFeatures,
        outFeatures,
        alpha: patternValue(config.alphaPattern, module) ?? config.loraAlpha,
        A: file.readFloat32(A),
        B: file.readFloat32(B),
      });
    }
    return { config, modules };
  } finally {
    file.close();
  }
}

/** Checks every adapted module against the base model's linear shapes ([out, in]). */
export function checkAdapterShapes(adapter: LoraAdapter, model: ModelConfig, adapterDir = 'adapter'): void {
  const shapes = expectedTensorShapes(model);
  for (const [module, m] of adapter.modules) {
    const base = shapes.get(`${module}.weight`);
    if (!base || base.shape.length !== 2) throw new InputError(join(adapterDir, 'adapter_model.safetensors'), module, `a linear layer of the base ${model.family} model`);
    const [out, inp] = base.shape;
    if (m.outFeatures !== out || m.inFeatures !== inp) {
      throw new InputError(join(adapterDir, 'adapter_model.safetensors'), module, `shape mismatch: LoRA for [${out},${inp}] found B [${m.outFeatures},${m.rank}] A [${m.rank},${m.inFeatures}]`);
    }
  }
}

/** Writes a PEFT adapter directory (atomically per file: the directory is filled, then renamed into place). */
export function saveLoraAdapter(dir: string, adapter: LoraAdapter, options: { dtype?: FloatDtype } = {}): void {
  const { config, modules } = adapter;
  const tensors = [];
  const rankPattern: Record<string, number> = { ...config.rankPattern };
  const alphaPattern: Record<string, number> = { ...config.alphaPattern };
  for (const [module, m] of [...modules].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (m.A.length !== m.rank * m.inFeatures || m.B.length !== m.outFeatures * m.rank) throw new Error(`LoRA module ${module}: A/B sizes do not match rank ${m.rank}`);
    tensors.push({ name: `base_model.model.${module}.lora_A.weight`, shape: [m.rank, m.inFeatures], data: m.A, dtype: options.dtype });
    tensors.push({ name: `base_model.model.${module}.lora_B.weight`, shape: [m.outFeatures, m.rank], data: m.B, dtype: options.dtype });
    // Pattern keys are module paths without the `model.` prefix: PEFT matches a key as a suffix of the
    // module name (`.*\.{key}$` in some releases, `(.*\.)?{key}$` in others), and both match this form.
    const key = module.replace(/^model\./, '');
    if (m.rank !== (patternValue(rankPattern, module) ?? config.r)) rankPattern[key] = m.rank;
    if (m.alpha !== (patternValue(alphaPattern, module) ?? config.loraAlpha)) alphaPattern[key] = m.alpha;
  }
  const targetModules = config.targetModules.length > 0 ? config.targetModules : [...new Set([...modules.keys()].map((k) => k.split('.').at(-1)!))].sort();
  const json = {
    alpha_pattern: alphaPattern,
    auto_mapping: null,
    base_model_name_or_path: config.baseModelNameOrPath,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: config.loraAlpha,
    lora_dropout: config.loraDropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: config.r,
    rank_pattern: rankPattern,
    revision: config.revision ?? null,
    target_modules: targetModules,
    task_type: 'CAUSAL_LM',
    use_rslora: config.useRslora,
  };
  const tmp = `${dir.replace(/\/$/, '')}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    writeSafetensors(join(tmp, 'adapter_model.safetensors'), tensors, { format: 'pt' });
    writeFileSync(join(tmp, 'adapter_config.json'), JSON.stringify(json, null, 2) + '\n');
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
}

/** The dense update scale * B @ A ([out, in], row-major) one module adds to its base weight. */
export function loraDelta(module: LoraModule, useRslora: boolean, weight = 1): Float32Array {
  const { rank, inFeatures, outFeatures, A, B } = module;
  const s = weight * loraScale(module, useRslora);
  const delta = new Float32Array(outFeatures * inFeatures);
  for (let o = 0; o < outFeatures; o++) {
    for (let k = 0; k < rank; k++) {
      const b = s * B[o * rank + k];
      if (b === 0) continue;
      const row = o * inFeatures;
      const a = k * inFeatures;
      for (let i = 0; i < inFeatures; i++) delta[row + i] += b * A[a + i];
    }
  }
  return delta;
}

/**
 * Mixes adapters into one whose delta is exactly sum_i weight_i * delta_i ("cat"): per module, A is the
 * row-wise concatenation [A_1; A_2; ...] and B the column-wise concatenation
 * [c_1 B_1, c_2 B_2, ...] with c_i = weight_i * scale_i, so the new rank is r_1 + r_2 + ... and the new
 * alpha equals it (scale 1). Summing A's and B's instead is not exact: (sum B_i)(sum A_i) has cross terms.
 */
export function mixLoraAdapters(parts: { adapter: LoraAdapter; weight: number }[], baseModelNameOrPath?: string | null): LoraAdapter {
  if (parts.length === 0) throw new Error('mixLoraAdapters needs at least one adapter');
  const names = [...new Set(parts.flatMap((p) => [...p.adapter.modules.keys()]))].sort();
  const modules = new Map<string, LoraModule>();
  for (const name of names) {
    const present = parts.filter((p) => p.adapter.modules.has(name)).map((p) => ({ m: p.adapter.modules.get(name)!, c: p.weight * loraScale(p.adapter.modules.get(name)!, p.adapter.config.useRslora) }));
    const { inFeatures, outFeatures } = present[0].m;
    if (present.some(({ m }) => m.inFeatures !== inFeatures || m.outFeatures !== outFeatures)) throw new Error(`mixLoraAdapters: ${name} has different shapes across adapters`);
    const rank = present.reduce((n, { m }) => n + m.rank, 0);
    const A = new Float32Array(rank * inFeatures);
    const B = new Float32Array(outFeatures * rank);
    let offset = 0;
    for (const { m, c } of present) {
      A.set(m.A, offset * inFeatures);
      for (let o = 0; o < outFeatures; o++) {
        for (let k = 0; k < m.rank; k++) B[o * rank + offset + k] = c * m.B[o * m.rank + k];
      }
      offset += m.rank;
    }
    modules.set(name, { rank, inFeatures, outFeatures, alpha: rank, A, B });
  }
  // The most common rank becomes r; other modules go to rank_pattern / alpha_pattern when saved.
  const counts = new Map<number, number>();
  for (const m of modules.values()) counts.set(m.rank, (counts.get(m.rank) ?? 0) + 1);
  const r = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
  const first = parts[0].adapter.config;
  return {
    config: {
      r,
      loraAlpha: r,
      targetModules: [...new Set(parts.flatMap((p) => p.adapter.config.targetModules))].sort(),
      loraDropout: first.loraDropout,
      useRslora: false,
      baseModelNameOrPath: baseModelNameOrPath === undefined ? first.baseModelNameOrPath : baseModelNameOrPath,
      rankPattern: {},
      alphaPattern: {},
    },
    modules,
  };
}
